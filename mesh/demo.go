package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"
)

// DemoRegion is one simulated region of the demo: a backend on its own
// loopback address whose answers are delayed by about Delay (the network
// distance the talk's front door saves), with some jitter.
type DemoRegion struct {
	Name  string
	IP    string
	Delay time.Duration
}

// DefaultDemoRegions are three regions on 127.0.0.2-4 (loopback on Linux).
var DefaultDemoRegions = []DemoRegion{
	{"eu", "127.0.0.2", 8 * time.Millisecond},
	{"us", "127.0.0.3", 35 * time.Millisecond},
	{"ap", "127.0.0.4", 70 * time.Millisecond},
}

// Demo is a running demo: backends, a mesh in front and a steady load.
type Demo struct {
	Mesh    *Mesh
	URL     string // the mesh listener
	Admin   string // the admin URL, for `srekit serve` (SREKIT_MESH_ADMIN)
	servers []*http.Server
	cancel  context.CancelFunc
	done    chan struct{}
}

// StartDemo starts the regions' backends, a mesh with the given balancer in
// front of them (admin on adminAddr, timings every interval) and a client
// sending rate requests per second, until Close.
func StartDemo(regions []DemoRegion, balancer, adminAddr string, interval time.Duration, rate float64, log *slog.Logger) (*Demo, error) {
	if log == nil {
		log = slog.Default()
	}
	d := &Demo{done: make(chan struct{})}
	var eps strings.Builder
	for _, r := range regions {
		ln, err := net.Listen("tcp", r.IP+":0")
		if err != nil {
			d.closeServers()
			return nil, fmt.Errorf("demo region %s: %w (127.0.0.x loopback addresses work on Linux)", r.Name, err)
		}
		delay := r.Delay
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			j := time.Duration(rand.Int64N(int64(delay)/5 + 1))
			time.Sleep(delay + j)
			w.Header().Set("X-Region", r.Name)
			fmt.Fprintf(w, "hello from %s\n", r.Name)
		})}
		d.servers = append(d.servers, srv)
		go srv.Serve(ln)
		fmt.Fprintf(&eps, "      - {address: %q, region: %s}\n", ln.Addr().String(), r.Name)
	}
	y := fmt.Sprintf(`admin: %q
timings_interval: %s
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters:
  - name: api
    balancer: %s
    endpoints:
%s    health_check: {path: /healthz, interval: 1s}
    outlier: {consecutive_5xx: 5, base_ejection: 5s}
    retry: {attempts: 2, budget: 0.2}
`, adminAddr, interval, balancer, eps.String())
	cfg, err := ParseConfig("demo.yaml", []byte(y))
	if err != nil {
		d.closeServers()
		return nil, err
	}
	m, err := New(cfg, "", log)
	if err != nil {
		d.closeServers()
		return nil, err
	}
	if err := m.Start(); err != nil {
		d.closeServers()
		return nil, err
	}
	d.Mesh = m
	d.URL = "http://" + m.Addrs()[0].String()
	if a := m.AdminAddr(); a != nil {
		d.Admin = "http://" + a.String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.load(ctx, rate)
	return d, nil
}

func (d *Demo) load(ctx context.Context, rate float64) {
	defer close(d.done)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			go func() {
				req, _ := http.NewRequestWithContext(ctx, "GET", d.URL+"/", nil)
				if res, err := client.Do(req); err == nil {
					res.Body.Close()
				}
			}()
		}
	}
}

// Close stops the load, the mesh and the backends.
func (d *Demo) Close() {
	d.cancel()
	<-d.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Mesh.Close(ctx)
	d.closeServers()
}

func (d *Demo) closeServers() {
	for _, s := range d.servers {
		s.Close()
	}
}
