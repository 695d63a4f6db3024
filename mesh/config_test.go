package mesh

import (
	"strings"
	"testing"
)

func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"", "empty config"},
		{"listeners: [", "cfg.yaml: "},
		{"listeners:\n  - addr: nope\n", "cfg.yaml line 2: listeners[0].addr: \"nope\" is not host:port"},
		{"listeners:\n  - addr: 127.0.0.1:1\n", "routes: at least one route"},
		{"listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x}]\n", "cfg.yaml line 2: routes[0].cluster: no cluster named \"x\""},
		{"listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x}]\nclusters:\n  - name: x\n    endpoints:\n      - address: a:99999\n", "cfg.yaml line 6: clusters[0].endpoints[0].address: port \"99999\" is not 1-65535"},
		{"listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x}]\nclusters:\n  - name: x\n    balancer: random\n    endpoints: [{address: a:1}]\n", "line 5: clusters[0].balancer: \"random\""},
		{"listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x}]\nclusters:\n  - name: x\n    endpoints: [{address: a:1}]\n    retry:\n      budget: 3\n", "line 7: clusters[0].retry.budget"},
		{"listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x}]\nclusters:\n  - name: x\n    endpoints: [{address: a:1}]\n    timeout: soon\n", "line 6: \"soon\" is not a duration"},
		{"listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x}]\nclusters:\n  - name: x\n    endpoints: [{address: a:1}]\n    colour: blue\n", "line 6: field colour not found"},
		{"listeners:\n  - {addr: 127.0.0.1:1, event_loops: -1, busy_poll: 200us}\nroutes: [{cluster: x}]\nclusters: [{name: x, endpoints: [{address: a:1}]}]\n", "cfg.yaml line 2: listeners[0].busy_poll: busy polling is done by the event loops"},
		{"listeners:\n  - {addr: 127.0.0.1:1, busy_poll: 2s}\nroutes: [{cluster: x}]\nclusters: [{name: x, endpoints: [{address: a:1}]}]\n", "cfg.yaml line 2: listeners[0].busy_poll: 2s is over the 1s maximum"},
		{"listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x, path_prefix: api}]\nclusters: [{name: x, endpoints: [{address: a:1}]}]\n", "routes[0].path_prefix: \"api\" must start with /"},
		{"listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x}]\nclusters: [{name: x, dns: [{name: api.example}]}]\n", "clusters[0].dns[0].port: A/AAAA discovery needs a port"},
		{"listeners: [{addr: 127.0.0.1:1, cert: c.pem}]\nroutes: [{cluster: x}]\nclusters: [{name: x, endpoints: [{address: a:1}]}]\n", "listeners[0].cert: cert and key go together"},
	}
	for _, tc := range cases {
		_, err := ParseConfig("cfg.yaml", []byte(tc.yaml))
		if err == nil {
			t.Errorf("%q: no error, want %q", tc.yaml, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.yaml, err, tc.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
	}
}

func TestExampleConfigParses(t *testing.T) {
	cfg, err := LoadConfig("testdata/mesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clusters) != 1 || len(cfg.Clusters[0].Endpoints) != 3 || cfg.Region != "eu" {
		t.Errorf("example config: %+v", cfg)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("listeners: [{addr: 127.0.0.1:1}]\nroutes: [{cluster: x}]\nclusters: [{name: x, endpoints: [{address: a:1}]}]\n"))
	f.Add([]byte("listeners:\n  - addr: nope\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("clusters: [{name: x, retry: {budget: .nan}, timeout: -1s}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
			return
		}
		if len(cfg.Listeners) == 0 || len(cfg.Routes) == 0 {
			t.Errorf("accepted a config with no listeners or routes")
		}
		for _, r := range cfg.Routes {
			if _, ok := cfg.byID[r.Cluster]; !ok {
				t.Errorf("accepted a route to an unknown cluster %q", r.Cluster)
			}
		}
	})
}
