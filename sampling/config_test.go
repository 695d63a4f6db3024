package sampling

import (
	"strings"
	"testing"
	"time"
)

func TestLoadExampleConfig(t *testing.T) {
	c, err := LoadConfig("testdata/sampler.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Buffer.MaxMemory != 512<<20 || c.Buffer.DecisionWait != 2*time.Second || len(c.Policies) != 7 {
		t.Fatalf("parsed %+v", c.Buffer)
	}
	ps, err := c.BuildPolicies()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Counts()) != 9 {
		t.Fatalf("%d policy rows", len(ps.Counts()))
	}
}

func TestEmptyConfigGetsDefaults(t *testing.T) {
	c, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Receivers.GRPC != "127.0.0.1:4317" || len(c.Policies) != 3 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"buffer: {max_memory: 10}", "buffer.max_memory"},
		{"buffer: {max_memory: lots}", "size \"lots\""},
		{"buffer: {decision_wait: 5s, trace_timeout: 1s}", "buffer.trace_timeout"},
		{"buffer: {decision_wait: soon}", "line 1"},
		{"bufer: {}", "field bufer not found"},
		{"exporter: {protocol: udp}", "exporter.protocol"},
		{"exporter: {protocol: http, endpoint: host:4318}", "exporter.endpoint"},
		{"stress_relief: {percent: 200}", "stress_relief.percent"},
		{"buffer: {max_memory: 8MiB, dropped_cache: 1000000}", "more than half of max_memory"},
		{"buffer: {kept_cache: 9223372036854775807}", "at most"},
		{"policies: [{errors: {}}]", "policies[0].name"},
		{"policies: [{name: a, errors: {}}, {name: a, errors: {}}]", "policies[1].name: \"a\" is used twice"},
		{"policies: [{name: a}]", "policies[0] (a): want exactly one"},
		{"policies: [{name: a, errors: {}, latency: {threshold: 1s}}]", "got 2 [errors latency]"},
		{"policies: [{name: s, latency: {quantile: 1.5}}]", "policies[0] (s).latency.quantile"},
		{"policies: [{name: s, latency: {}}]", "policies[0] (s).latency: set threshold"},
		{"policies: [{name: s, latency: {quantile: 0.9, key: [svc]}}]", "latency.key[0]"},
		{"policies: [{name: p, probabilistic: {percent: 0}}]", "probabilistic.percent"},
		{"policies: [{name: r, attribute: {key: k, regex: '('}}]", "attribute.regex"},
		{"policies: [{name: r, attribute: {values: [x]}}]", "attribute.key: is required"},
		{"policies: [{name: d, dynamic: {}}]", "dynamic: set goal_rate"},
		{"policies: [{name: d, dynamic: {goal_rate: 0.5}}]", "dynamic.goal_rate"},
		{"policies: [{name: d, dynamic: {goal_rate: 20, min_per_interval: -1}}]", "min_per_interval"},
		{"policies: [{name: l, rate_limit: {}}]", "rate_limit: set"},
		{"policies: [{name: a, and: []}]", "and: needs at least one"},
		{"policies: [{name: a, and: [{probabilistic: {percent: 101}}]}]", "policies[0] (a).and[0].probabilistic.percent"},
		{"policies: [{name: a, or: [{drop: {errors: {}}}]}]", "drop rules must be top-level"},
		{"policies: [{name: e, errors: {status: false, http_5xx: false, exceptions: false}}]", "nothing would match"},
		{"peers: {self: a:1, members: [b:1]}", "peers.self"},
	} {
		_, err := ParseConfig([]byte(tc.yaml))
		if err == nil {
			t.Errorf("%s: accepted", tc.yaml)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n  error %q\n  does not mention %q", tc.yaml, err, tc.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", tc.yaml, err)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for s, want := range map[string]ByteSize{"4096": 4096, "1KiB": 1024, "1.5MB": 1500000, "2GiB": 2 << 30} {
		if got, err := ParseByteSize(s); err != nil || got != want {
			t.Errorf("%s: %d %v", s, got, err)
		}
	}
	for _, s := range []string{"", "-1", "1TB", "1e99", "99999999999999999GiB"} {
		if _, err := ParseByteSize(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("policies: [{name: a, errors: {}}]"))
	f.Add([]byte("buffer: {max_memory: 1GiB, decision_wait: 1s}\npolicies: [{name: x, and: [{not: {latency: {threshold: 1s}}}, {dynamic: {goal_rate: 5}}]}]"))
	f.Add([]byte("exporter: {protocol: http, endpoint: 'http://x/v1/traces'}"))
	f.Add([]byte("policies: [{name: a, attribute: {key: k, min: 1, max: 0}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if _, err := c.BuildPolicies(); err != nil {
			t.Fatalf("validated config fails to build: %v", err)
		}
	})
}
