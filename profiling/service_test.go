package profiling

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/srekit/srekit/internal/sharedtest"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

func testService(t *testing.T, st *store.Store, now *time.Time) *Service {
	svc := NewService(st)
	svc.Now = func() time.Time { return *now }
	ctx := context.Background()
	if err := svc.Register(ctx, Agent{Name: "web-1", Host: "web-1.example", Labels: Labels{"env": "prod"},
		Targets: []AgentTarget{{Name: "api", Kinds: []string{"cpu", "heap"}, PrerollSeconds: 300}, {Name: PerfTarget, Kinds: []string{"perf"}}}}); err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestCaptureQueue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := t0
		svc := testService(t, st, &now)
		for _, bad := range []Capture{
			{Agent: "web-1", Target: "api", Kind: "perf"},     // kind not offered by the target
			{Agent: "web-1", Target: "api", Kind: "rm -rf /"}, // not a kind at all
			{Agent: "web-2", Target: "api", Kind: "cpu"},      // no such agent
			{Agent: "web-1", Target: "db", Kind: "cpu"},       // no such target
			{Agent: "web-1", Target: "api", Kind: "cpu", Seconds: 9999},
		} {
			if _, err := svc.Request(ctx, bad); err == nil {
				t.Errorf("Request(%+v) accepted", bad)
			}
		}
		c, err := svc.Request(ctx, Capture{Agent: "web-1", Target: "api", Kind: "cpu", Seconds: 5, Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := svc.Next(ctx, "web-1", 0)
		if err != nil || got == nil || got.ID != c.ID || got.Status != StatusRunning {
			t.Fatalf("Next = %+v, %v", got, err)
		}
		if again, _ := svc.Next(ctx, "web-1", 0); again != nil {
			t.Fatalf("a claimed capture was handed out twice: %+v", again)
		}
		if _, err := svc.Next(ctx, "nobody", 0); !errors.Is(err, ErrUnknownAgent) {
			t.Fatalf("Next for an unknown agent: %v", err)
		}
		done, err := svc.Complete(ctx, c.ID, CaptureResult{Format: FormatFolded, Data: []byte("main;work 7\n"), Start: now.Add(-5 * time.Second), End: now})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := svc.DB.Get(ctx, done.SnapshotID)
		if err != nil {
			t.Fatal(err)
		}
		want := Labels{"host": "web-1.example", "agent": "web-1", "env": "prod", "service": "api", "capture": "1"}
		if done.Status != StatusDone || snap.Labels.String() != want.String() || snap.Total != 7 {
			t.Fatalf("completed %+v, snapshot %+v", done, snap)
		}
		// A retried upload is stored once.
		again, err := svc.Complete(ctx, c.ID, CaptureResult{Format: FormatFolded, Data: []byte("main;work 7\n"), Start: now.Add(-5 * time.Second), End: now})
		if err != nil || again.SnapshotID != done.SnapshotID {
			t.Fatalf("retried upload: %+v %v", again, err)
		}
		// A capture nobody picks up expires.
		stale, _ := svc.Request(ctx, Capture{Agent: "web-1", Target: "api", Kind: "heap"})
		now = now.Add(11 * time.Minute)
		if n, err := svc.ExpireStale(ctx, 10*time.Minute); err != nil || n != 1 {
			t.Fatalf("ExpireStale = %d, %v", n, err)
		}
		if c, _ := svc.Capture(ctx, stale.ID); c.Status != StatusFailed {
			t.Fatalf("stale capture: %+v", c)
		}
	})
}

func TestSchedulesAndAlerts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := t0
		svc := testService(t, st, &now)
		if _, err := svc.SaveSchedule(ctx, Schedule{Agent: "web-1", Target: "api", Kind: "cpu", Seconds: 30, Every: 20}); err == nil {
			t.Fatal("a schedule overlapping itself was accepted")
		}
		sc, err := svc.SaveSchedule(ctx, Schedule{Agent: "web-1", Target: "api", Kind: "cpu", Seconds: 10, Every: 60, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		// A second server over the same database (what a restart, or scale-out, looks like).
		other := NewService(st)
		other.Now = svc.Now
		ids, err := svc.RunDue(ctx)
		if err != nil || len(ids) != 1 {
			t.Fatalf("RunDue = %v, %v", ids, err)
		}
		if ids, _ := other.RunDue(ctx); len(ids) != 0 {
			t.Fatalf("the other server fired the same run: %v", ids)
		}
		now = now.Add(61 * time.Second)
		if ids, _ := other.RunDue(ctx); len(ids) != 1 {
			t.Fatalf("next run: %v", ids)
		}
		scs, _ := other.Schedules(ctx)
		if len(scs) != 1 || scs[0].ID != sc.ID || !scs[0].Next.Equal(t0.Add(120*time.Second)) {
			t.Fatalf("schedules: %+v", scs)
		}
		// Down for an hour: one catch-up run, not sixty.
		now = now.Add(time.Hour)
		if ids, _ := svc.RunDue(ctx); len(ids) != 1 {
			t.Fatalf("after an hour down: %v", ids)
		}

		if _, err := svc.SaveAlertRule(ctx, AlertRule{Name: "slow", Matchers: Labels{"alertname": "HighLatency", "team": "shop"}, AgentLabel: "instance", Target: "api", Kind: "cpu", Seconds: 20, Preroll: true}); err != nil {
			t.Fatal(err)
		}
		payload, err := ParseAlertmanager([]byte(`{"version":"4","status":"firing","receiver":"srekit","groupLabels":{},"commonLabels":{},
			"commonAnnotations":{},"externalURL":"http://am:9093","truncatedAlerts":0,"groupKey":"{}",
			"alerts":[
			 {"status":"firing","labels":{"alertname":"HighLatency","team":"shop","instance":"web-1.example:8080"},"annotations":{},"startsAt":"2026-11-25T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"f1"},
			 {"status":"resolved","labels":{"alertname":"HighLatency","team":"shop","instance":"web-1.example:8080"},"fingerprint":"f2"},
			 {"status":"firing","labels":{"alertname":"HighLatency","team":"shop","instance":"db-9:8080"},"fingerprint":"f3"},
			 {"status":"firing","labels":{"alertname":"HighLatency","team":"search","instance":"web-1.example:8080"},"fingerprint":"f4"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		out, err := svc.HandleAlerts(ctx, payload)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 || out[0].CaptureID == 0 || out[1].CaptureID != 0 || !strings.Contains(out[1].Skipped, "db-9") {
			t.Fatalf("outcomes: %+v", out)
		}
		c, _ := svc.Capture(ctx, out[0].CaptureID)
		if c.Agent != "web-1" || !c.Preroll || c.Seconds != 20 || c.Labels["alertname"] != "HighLatency" || c.Labels["alert_fingerprint"] != "f1" {
			t.Fatalf("alert capture: %+v", c)
		}
		out, _ = svc.HandleAlerts(ctx, payload)
		if out[0].CaptureID != 0 {
			t.Fatalf("re-sent alert captured again: %+v", out)
		}
		if _, err := ParseAlertmanager([]byte(`{"version":"3"}`)); err == nil {
			t.Fatal("accepted webhook version 3")
		}
	})
}

func TestRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		db := &DB{S: st}
		base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		for i := 0; i < 12; i++ { // one per 10 minutes over two hours, two capture ids each
			start := base.Add(time.Duration(i) * 10 * time.Minute)
			for _, host := range []string{"a", "b"} {
				_, _, err := db.Save(ctx, &Snapshot{Kind: "cpu", Unit: "samples", Labels: Labels{"service": "s", "host": host, "capture": start.Format("1504")},
					Start: start, End: start.Add(10 * time.Second), Profile: folded(t, "main;f 1\nmain;g 2\n")})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		before, _ := db.Merge(ctx, Query{Kind: "cpu"})
		res, err := db.Compact(ctx, Retention{Raw: 24 * time.Hour, Hourly: 7 * 24 * time.Hour, Daily: 30 * 24 * time.Hour}, base.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if res.Merged != 24 || res.Created != 4 { // 2 hosts x 2 hours
			t.Fatalf("compact: %+v", res)
		}
		after, _ := db.Merge(ctx, Query{Kind: "cpu"})
		if foldedText(t, before.Profile) != foldedText(t, after.Profile) || after.Snapshots != 4 {
			t.Fatalf("aggregates changed the data: before %+v after %+v", before, after)
		}
		// Eight days on: hourly become daily; forty days on: gone.
		res, _ = db.Compact(ctx, Retention{Raw: 24 * time.Hour, Hourly: 7 * 24 * time.Hour, Daily: 30 * 24 * time.Hour}, base.Add(8*24*time.Hour))
		ss, _ := db.List(ctx, Query{})
		if res.Created != 2 || len(ss) != 2 || ss[0].Resolution != ResDay {
			t.Fatalf("daily: %+v %+v", res, ss)
		}
		res, _ = db.Compact(ctx, Retention{Raw: 24 * time.Hour, Hourly: 7 * 24 * time.Hour, Daily: 30 * 24 * time.Hour}, base.Add(40*24*time.Hour))
		stats, _ := db.Stats(ctx)
		if res.Deleted != 2 || stats.Snapshots != 0 || stats.Blobs != 0 {
			t.Fatalf("expired: %+v %+v", res, stats)
		}
	})
}

func TestDecodeGoProfiles(t *testing.T) {
	var cpu bytes.Buffer
	if err := pprof.StartCPUProfile(&cpu); err != nil {
		t.Skipf("SKIPPED: CPU profiling busy in this process: %v", err)
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	pprof.StopCPUProfile()
	ds, err := Decode(cpu.Bytes(), FormatPprof, "", "", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Kind != "cpu" || ds[0].Unit != "nanoseconds" {
		t.Fatalf("cpu profile decoded as %+v", ds)
	}
	var g bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&g, 0)
	ds, err = Decode(g.Bytes(), FormatPprof, "", "", Limits{})
	if err != nil || len(ds) != 1 || ds[0].Kind != "goroutine" || ds[0].Profile.Total() == 0 {
		t.Fatalf("goroutine profile: %+v %v", ds, err)
	}
	if _, err := Decode(g.Bytes(), FormatPprof, "cpu", "", Limits{}); err == nil || !strings.Contains(err.Error(), "goroutine") {
		t.Fatalf("asking a goroutine profile for cpu: %v", err)
	}
	perf := sharedtest.Read(t, "perf decode test", "flamegraph", "perf-funcab-cmd-01.txt")
	ds, err = Decode(perf, FormatPerf, "", "", Limits{})
	if err != nil || ds[0].Profile.Total() == 0 {
		t.Fatalf("perf script: %+v %v", ds, err)
	}
	if _, err := Decode(bytes.Repeat([]byte("a;b 1\n"), 10), FormatFolded, "", "", Limits{MaxDecompressed: 20}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over MaxDecompressed: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	var g bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&g, 0)
	f.Add(g.Bytes(), "pprof")
	f.Add([]byte("main;a;b 3\nmain;c 1\n"), "folded")
	f.Add([]byte("main;a;b\nmain;a;b\n"), "lines")
	f.Add([]byte("java 123 1.0: cycles:\n\t4005d4 main (/bin/x)\n\t4005e0 start (/bin/x)\n\n"), "perf")
	f.Add([]byte{0x1f, 0x8b, 0, 0}, "folded")
	f.Add([]byte("# c\nx 1 [000] 5.000001: 10 cpu-clock:\n\t1 f (/b)\n\nx 1 [001] 5.02: 10 cpu-clock:\n\t1 g (/b)\n\n"+
		"y 2 4.9: 3 instructions:\n\t2 h (/b)\n\nx 1 [000] 6.5: cpu-clock:\n\n"), "perf")
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		ds, err := Decode(data, format, "", "", Limits{MaxDecompressed: 1 << 20, MaxStacks: 10000})
		if err != nil {
			return
		}
		for _, d := range ds {
			if d.Kind == "" || d.Profile == nil {
				t.Fatalf("decoded without kind or profile: %+v", d)
			}
			// Whatever decodes must store and load back with the same total.
			enc, _, _, total, err := encodeProfile(d.Profile)
			if err != nil {
				t.Fatal(err)
			}
			m := stackMap{}
			if err := decodeInto(m, enc); err != nil {
				t.Fatalf("stored form does not read back: %v", err)
			}
			if m.total() != total {
				t.Fatalf("total %d read back as %d", total, m.total())
			}
			// A perf timeline adds up to the profile and survives the store.
			if tl := d.Timeline; tl != nil {
				sums := make([]int64, tl.Stacks)
				tl.Range(0, tl.Span()+1, sums)
				var sum int64
				for _, v := range sums {
					sum += v
				}
				if sum != total {
					t.Fatalf("timeline total %d, profile %d", sum, total)
				}
				b, err := tl.Encode()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := DecodeTimeline(b); err != nil {
					t.Fatalf("timeline does not read back: %v", err)
				}
			}
		}
	})
}

func FuzzParseAlertmanager(f *testing.F) {
	f.Add([]byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X","instance":"h:1"},"fingerprint":"f"}]}`))
	f.Add([]byte(`{"alerts":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseAlertmanager(b)
		if err != nil {
			return
		}
		for _, a := range p.Alerts {
			_ = matchesAll(a.Labels, Labels{"alertname": "X"})
		}
	})
}
