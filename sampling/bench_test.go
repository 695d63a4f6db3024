package sampling

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// BenchmarkPipeline validates and splits OTLP requests of 500 spans (50
// traces of 10) and runs them through the buffer, the default policies and
// the export encoding of kept traces: the sampler's hot path without the
// network.
func BenchmarkPipeline(b *testing.B) {
	cfg, _ := ParseConfig(nil)
	ps, _ := cfg.BuildPolicies()
	// Tiny decision caches: the 1000 trace IDs repeat every 20 requests, and
	// must come back as new traces, not as late spans of decided ones.
	buf := NewBuffer(BufferConfig{DecisionWait: time.Millisecond, KeptCache: 16, DroppedCache: 16}, func(t *Trace, _ Trigger) Decision { return ps.Decide(t, time.Now()) }, func([]byte, int) {})
	var reqs [][]byte
	for r := 0; r < 20; r++ {
		var specs []spanSpec
		for t := 0; t < 50; t++ {
			id := tid(uint64(r*50+t+1), uint64(r*50+t+1)*0x9E3779B97F4A7C15>>8)
			for s := 0; s < 10; s++ {
				parent := uint64(1)
				if s == 0 {
					parent = 0
				}
				specs = append(specs, spanSpec{service: []string{"api", "db", "cache"}[s%3], name: "op", trace: id, id: uint64(s + 1), parent: parent,
					dur: time.Duration(s+1) * time.Millisecond, attrs: map[string]any{"http.route": "/x", "k": int64(s)}})
			}
		}
		body, _ := ptraceotlp.NewExportRequestFromTraces(traces(specs...)).MarshalProto()
		reqs = append(reqs, body)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := buf.AddRequest(reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		if i%10 == 9 {
			time.Sleep(2 * time.Millisecond)
			buf.Tick()
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "spans/s")
}
