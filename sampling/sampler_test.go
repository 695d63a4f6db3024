package sampling

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestReloadSwapsPoliciesAndMetrics(t *testing.T) {
	cfg, err := ParseConfig([]byte("policies: [{name: errors, errors: {}}]"))
	if err != nil {
		t.Fatal(err)
	}
	k := newSink()
	s, err := New(cfg, k.emit, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := tid(1, 1)
	s.Consume(traces(spanSpec{service: "a", name: "x", trace: ok, id: 1}))
	s.Buffer().Flush()
	if k.count(ok) != 0 {
		t.Fatal("an ok trace was kept by the errors policy")
	}
	bad, _ := ParseConfig([]byte("policies: [{name: all, probabilistic: {percent: 100}}]"))
	bad.Policies[0].Probabilistic.Percent = 200 // invalid after validation: Reload must refuse it
	if err := s.Reload(bad); err == nil {
		t.Fatal("reload accepted an invalid policy")
	}
	all, _ := ParseConfig([]byte("policies: [{name: all, probabilistic: {percent: 100}}]"))
	if err := s.Reload(all); err != nil {
		t.Fatal(err)
	}
	ok2 := tid(2, 2)
	s.Consume(traces(spanSpec{service: "a", name: "x", trace: ok2, id: 1}))
	s.Buffer().Flush()
	if k.count(ok2) != 1 {
		t.Fatal("the reloaded policy did not keep the trace")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"srekit_sampler_config_reloads_total,result=ok":              1,
		"srekit_sampler_config_reloads_total,result=error":           1,
		"srekit_sampler_traces_total,outcome=kept":                   1,
		"srekit_sampler_traces_total,outcome=dropped":                1,
		"srekit_sampler_policy_traces_total,outcome=kept,policy=all": 1,
		"srekit_sampler_spans_total,outcome=received":                2,
		"srekit_sampler_max_memory_bytes":                            256 << 20,
	} {
		if got[name] != want {
			t.Errorf("%s = %g, want %g", name, got[name], want)
		}
	}
	if len(got) < 30 {
		t.Fatalf("only %d metric series", len(got))
	}
}
