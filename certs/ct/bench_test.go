package ct_test

import (
	"context"
	"testing"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/store/storetest"
)

// BenchmarkMonitor measures entries per second through the whole monitor
// (HTTP from a loopback test log, parsing, matching, Merkle tree, SQLite commits).
func BenchmarkMonitor(b *testing.B) {
	for _, static := range []bool{false, true} {
		name := "rfc6962"
		if static {
			name = "static"
		}
		b.Run(name, func(b *testing.B) {
			tl := newTestLog(b, static, 20000, 50, 2000)
			tl.log.MaxBatch = 1000
			b.ResetTimer()
			for range b.N {
				st := storetest.SQLite(b)
				m := &ct.Monitor{Store: st, Logs: tl.list.Logs, Rules: scenarioRules(b), Once: true, Batch: 1000}
				if err := m.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkParseCertificate is the per-entry parsing cost.
func BenchmarkParseCertificate(b *testing.B) {
	tl := newTestLog(b, false, 10, 0, 0)
	_ = tl
	der := tl.sc.Good.DER
	for range b.N {
		if _, err := ct.ParseCertificate(der); err != nil {
			b.Fatal(err)
		}
	}
}
