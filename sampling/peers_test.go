package sampling

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestRendezvousMovesOnlyTheNewMembersShare(t *testing.T) {
	three := []string{"a:1", "b:1", "c:1"}
	four := append(three[:3:3], "d:1")
	moved, toD := 0, 0
	for i := 0; i < 10000; i++ {
		id := tid(uint64(i), uint64(i)*0x9E3779B97F4A7C15)
		before, after := rendezvous(id, three), rendezvous(id, four)
		if before != after {
			moved++
			if after == "d:1" {
				toD++
			}
		}
	}
	if moved != toD || moved < 2000 || moved > 3000 {
		t.Fatalf("adding a 4th member moved %d traces (%d to it); want about a quarter, all to it", moved, toD)
	}
}

func TestPeersGraceKeepsPreviousOwner(t *testing.T) {
	p := NewPeers("a:1", []string{"a:1", "b:1", "c:1"}, time.Minute, nil)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p.now = clk.now
	owners := map[int]string{}
	for i := 0; i < 500; i++ {
		owners[i] = p.Owner(tid(uint64(i), uint64(i)*77777))
	}
	p.SetMembers([]string{"a:1", "b:1", "c:1", "d:1"})
	for i := 0; i < 500; i++ {
		if got := p.Owner(tid(uint64(i), uint64(i)*77777)); got != owners[i] {
			t.Fatalf("trace %d moved from %s to %s during the grace period", i, owners[i], got)
		}
	}
	clk.advance(2 * time.Minute)
	moved := 0
	for i := 0; i < 500; i++ {
		if p.Owner(tid(uint64(i), uint64(i)*77777)) != owners[i] {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no trace moved to the new member after the grace period")
	}
	// A member that leaves loses its traces at once.
	p.SetMembers([]string{"a:1", "b:1"})
	for i := 0; i < 500; i++ {
		if o := p.Owner(tid(uint64(i), uint64(i)*77777)); o != "a:1" && o != "b:1" {
			t.Fatalf("trace routed to departed member %s", o)
		}
	}
}

// TestPeersForwardToOwner runs two samplers that share traces by trace ID:
// each trace's spans are sent half to one, half to the other, and every
// trace must be decided exactly once, by its owner, and exported whole.
func TestPeersForwardToOwner(t *testing.T) {
	down := startCapture(t, 0)
	var addrs [2]string
	var lns [2]net.Listener
	for i := range lns {
		lns[i], _ = net.Listen("tcp", "127.0.0.1:0")
		addrs[i] = lns[i].Addr().String()
	}
	var samplers [2]*Sampler
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 4)
	for i := range samplers {
		cfg, err := ParseConfig([]byte(fmt.Sprintf(`
exporter: {endpoint: %s}
buffer: {decision_wait: 100ms, trace_timeout: 500ms}
peers: {self: %s, members: [%s, %s]}
policies: [{name: errors, errors: {}}]
`, down.addr, addrs[i], addrs[0], addrs[1])))
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.EnablePeers(NewPeers(addrs[i], cfg.Peers.Members, time.Minute, nil))
		samplers[i] = s
		go func() { s.Serve(ctx, lns[i], nil); done <- struct{}{} }()
		go func() { s.Run(ctx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for i := 0; i < 4; i++ {
			<-done
		}
	}()
	var clients [2]ptraceotlp.GRPCClient
	for i := range clients {
		conn, err := grpc.NewClient(addrs[i], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		clients[i] = ptraceotlp.NewGRPCClient(conn)
	}
	const n = 200
	for i := 0; i < n; i++ {
		id := tid(uint64(i+1), uint64(i+1)*0x9E3779B97F4A7C15>>8)
		a := traces(spanSpec{service: "api", name: "GET", trace: id, id: 1, err: true})
		b := traces(spanSpec{service: "db", name: "q", trace: id, id: 2, parent: 1}, spanSpec{service: "db", name: "q2", trace: id, id: 3, parent: 1})
		if _, err := clients[i%2].Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(a)); err != nil {
			t.Fatal(err)
		}
		if _, err := clients[(i+1)%2].Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(b)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all spans exported", func() bool { return down.count() == 3*n })
	decided := samplers[0].Status().TracesKept + samplers[1].Status().TracesKept
	if decided != n {
		t.Fatalf("%d decisions for %d traces: some were decided by both samplers", decided, n)
	}
	if samplers[0].Status().TracesKept == 0 || samplers[1].Status().TracesKept == 0 {
		t.Fatal("one sampler owns every trace")
	}
}
