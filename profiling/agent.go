package profiling

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// PprofTarget is a local service whose net/http/pprof endpoints an agent may
// read. Its URL never leaves the agent: the server only knows the name.
type PprofTarget struct {
	Name   string
	URL    string // base URL, e.g. http://127.0.0.1:6060 (the agent adds /debug/pprof/...)
	Labels Labels
}

// AgentConfig configures `srekit agent`.
type AgentConfig struct {
	Server string // base URL of a srekit server
	Token  string // agent token (SREKIT_AGENT_TOKEN on the server) or write token
	Name   string // agent name; the host name when empty
	Host   string // host name reported; os.Hostname() when empty
	Labels Labels // added to every snapshot (env, region, ...)

	Pprof []PprofTarget
	// Perf offers perf record -g captures of the host (or one PID) as the target "perf".
	Perf          bool
	PerfFrequency int    // samples per second per CPU; 99 when zero
	PerfPath      string // the perf binary; "perf" on PATH when empty
	// Allow lists the capture kinds this agent runs; everything else is
	// refused. Empty means cpu, heap, allocs, goroutine, mutex, block (and
	// perf when Perf is set).
	Allow []string

	// Preroll keeps a ring buffer of CPU profiles of every pprof target for
	// this long, captured back to back in PrerollChunk pieces (10s when
	// zero); a capture with preroll set uploads the minutes before it too.
	Preroll      time.Duration
	PrerollChunk time.Duration

	// MaxBuffered is how many results wait for an absent server (100 when
	// zero); the oldest is dropped beyond it.
	MaxBuffered int
	// BufferDir, when set, keeps waiting results on disk too, so that they
	// survive a restart of the agent; they are sent when it starts again.
	BufferDir string
	// CACert is a PEM file of the CA that signed the server's certificate.
	CACert string
	// AllowHTTP permits a plain-HTTP server that is not on loopback (the
	// token would cross the network in clear).
	AllowHTTP bool

	Client  *http.Client // overrides the HTTP client (tests)
	Log     *slog.Logger
	Version string
	// PollWait is the long-poll duration asked of the server (25s when zero).
	PollWait time.Duration
}

// agent is a running agent.
type agent struct {
	cfg     AgentConfig
	base    *url.URL
	client  *http.Client
	log     *slog.Logger
	allowed map[string]bool
	targets map[string]PprofTarget
	rings   map[string]*ring

	mu     sync.Mutex
	outbox []upload
	kick   chan struct{}
}

type upload struct {
	CaptureID int64     `json:"capture_id"`
	Format    string    `json:"format"`
	Data      []byte    `json:"data"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Preroll   bool      `json:"preroll"`
	Failure   string    `json:"failure"` // when set, report a failed capture instead
	file      string    // where it is kept on disk, with BufferDir
}

// spool writes u to the buffer directory (write then rename, so a crash
// leaves no half file behind).
func (a *agent) spool(u *upload) {
	if a.cfg.BufferDir == "" {
		return
	}
	b, err := json.Marshal(u)
	if err != nil {
		return
	}
	name := fmt.Sprintf("%020d-%d-%t-%d.json", time.Now().UnixNano(), u.CaptureID, u.Preroll, len(b))
	tmp := filepath.Join(a.cfg.BufferDir, "."+name)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		a.log.Warn("agent: cannot keep the result on disk", "err", err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(a.cfg.BufferDir, name)); err != nil {
		a.log.Warn("agent: cannot keep the result on disk", "err", err)
		return
	}
	u.file = filepath.Join(a.cfg.BufferDir, name)
}

func (a *agent) unspool(u upload) {
	if u.file != "" {
		os.Remove(u.file)
	}
}

// loadSpool queues the results a previous run of the agent left on disk.
func (a *agent) loadSpool() error {
	if a.cfg.BufferDir == "" {
		return nil
	}
	if err := os.MkdirAll(a.cfg.BufferDir, 0o700); err != nil {
		return fmt.Errorf("agent: --buffer-dir: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(a.cfg.BufferDir, "*.json"))
	if err != nil {
		return err
	}
	sort.Strings(names) // oldest first: names start with the time
	for _, n := range names {
		b, err := os.ReadFile(n)
		var u upload
		if err == nil {
			err = json.Unmarshal(b, &u)
		}
		if err != nil || u.CaptureID == 0 {
			a.log.Warn("agent: dropping an unreadable buffered result", "file", n, "err", err)
			os.Remove(n)
			continue
		}
		u.file = n
		a.outbox = append(a.outbox, u)
	}
	if len(a.outbox) > 0 {
		a.log.Info("agent: results from an earlier run to deliver", "count", len(a.outbox))
	}
	return nil
}

func (c *AgentConfig) validate() (*url.URL, error) {
	if c.Server == "" {
		return nil, errors.New("agent: --server is required")
	}
	u, err := url.Parse(c.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("agent: server %q: want http(s)://host:port", c.Server)
	}
	if u.Scheme == "http" && !c.AllowHTTP && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("agent: server %s is plain HTTP beyond this host: use https:// (or --allow-http to send the token in clear)", c.Server)
	}
	if c.Token == "" {
		return nil, errors.New("agent: --token is required (the server's agent token)")
	}
	if len(c.Pprof) == 0 && !c.Perf {
		return nil, errors.New("agent: nothing to capture: give --pprof name=URL and/or --perf")
	}
	seen := map[string]bool{}
	for _, t := range c.Pprof {
		if t.Name == "" || t.Name == PerfTarget || seen[t.Name] {
			return nil, fmt.Errorf("agent: pprof target name %q: want a unique name other than %q", t.Name, PerfTarget)
		}
		seen[t.Name] = true
		tu, err := url.Parse(t.URL)
		if err != nil || (tu.Scheme != "http" && tu.Scheme != "https") || tu.Host == "" {
			return nil, fmt.Errorf("agent: pprof target %s: URL %q: want http://host:port", t.Name, t.URL)
		}
	}
	for _, k := range c.Allow {
		if _, ok := CaptureKinds[k]; !ok {
			return nil, fmt.Errorf("agent: --allow %q: want some of %s", k, strings.Join(kindNames(), ", "))
		}
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RunAgent registers with the server and runs captures until ctx ends. It
// survives the server going away: it re-registers, keeps polling with
// backoff, and keeps results until they are delivered.
func RunAgent(ctx context.Context, cfg AgentConfig) error {
	base, err := cfg.validate()
	if err != nil {
		return err
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Host
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PerfFrequency <= 0 {
		cfg.PerfFrequency = 99
	}
	if cfg.PrerollChunk <= 0 {
		cfg.PrerollChunk = 10 * time.Second
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 100
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = 25 * time.Second
	}
	a := &agent{cfg: cfg, base: base, log: cfg.Log, allowed: map[string]bool{}, targets: map[string]PprofTarget{},
		rings: map[string]*ring{}, kick: make(chan struct{}, 1)}
	a.client = cfg.Client
	if a.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.CACert != "" {
			pem, err := os.ReadFile(cfg.CACert)
			if err != nil {
				return fmt.Errorf("agent: CA certificate: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("agent: %s has no PEM certificate", cfg.CACert)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		a.client = &http.Client{Transport: tr}
	}
	allow := cfg.Allow
	if len(allow) == 0 {
		allow = []string{"cpu", "heap", "allocs", "goroutine", "mutex", "block"}
		if cfg.Perf {
			allow = append(allow, "perf")
		}
	}
	for _, k := range allow {
		a.allowed[k] = true
	}
	for _, t := range cfg.Pprof {
		a.targets[t.Name] = t
	}
	if cfg.Perf && a.allowed["perf"] {
		if _, err := exec.LookPath(a.perfPath()); err != nil {
			return fmt.Errorf("agent: --perf: %s not found: install linux-perf (Debian) or drop --perf", a.perfPath())
		}
	}

	if err := a.loadSpool(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Preroll > 0 && a.allowed["cpu"] {
		for _, t := range cfg.Pprof {
			r := newRing(cfg.Preroll + MaxCaptureSeconds*time.Second + cfg.PrerollChunk)
			a.rings[t.Name] = r
			wg.Add(1)
			go func() { defer wg.Done(); a.fillRing(ctx, t, r) }()
		}
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.deliver(ctx) }()

	sem := make(chan struct{}, 4)
	backoff := newBackoff()
	registered := false
	for ctx.Err() == nil {
		if !registered {
			if err := a.register(ctx); err != nil {
				a.log.Warn("agent: register failed; retrying", "server", cfg.Server, "err", err)
				backoff.wait(ctx)
				continue
			}
			a.log.Info("agent: registered", "server", cfg.Server, "name", cfg.Name)
			registered = true
			backoff.reset()
		}
		c, err := a.poll(ctx)
		if errors.Is(err, ErrUnknownAgent) {
			registered = false
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("agent: poll failed; retrying", "err", err)
			backoff.wait(ctx)
			continue
		}
		backoff.reset()
		if c == nil {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a.run(ctx, c)
		}()
	}
	return nil
}

func (a *agent) perfPath() string {
	if a.cfg.PerfPath != "" {
		return a.cfg.PerfPath
	}
	return "perf"
}

func (a *agent) endpoint(path string, q url.Values) string {
	u := *a.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	return u.String()
}

func (a *agent) do(ctx context.Context, method, path string, q url.Values, body []byte, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.endpoint(path, q), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return a.client.Do(req)
}

func readErr(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return fmt.Errorf("server said %d: %s", resp.StatusCode, e.Error)
	}
	return fmt.Errorf("server said %s", resp.Status)
}

func (a *agent) register(ctx context.Context) error {
	info := Agent{Name: a.cfg.Name, Host: a.cfg.Host, Labels: a.cfg.Labels, Version: a.cfg.Version}
	if info.Labels == nil {
		info.Labels = Labels{}
	}
	var pprofKinds []string
	for _, k := range []string{"cpu", "heap", "allocs", "goroutine", "mutex", "block"} {
		if a.allowed[k] {
			pprofKinds = append(pprofKinds, k)
		}
	}
	for _, t := range a.cfg.Pprof {
		at := AgentTarget{Name: t.Name, Kinds: pprofKinds, Labels: t.Labels}
		if a.rings[t.Name] != nil {
			at.PrerollSeconds = int(a.cfg.Preroll / time.Second)
		}
		info.Targets = append(info.Targets, at)
	}
	if a.cfg.Perf && a.allowed["perf"] {
		info.Targets = append(info.Targets, AgentTarget{Name: PerfTarget, Kinds: []string{"perf"}})
	}
	body, _ := json.Marshal(info)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := a.do(rctx, "POST", "/api/v1/profiling/agents", nil, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readErr(resp)
	}
	return nil
}

func (a *agent) poll(ctx context.Context) (*Capture, error) {
	wait := int(a.cfg.PollWait / time.Second)
	pctx, cancel := context.WithTimeout(ctx, a.cfg.PollWait+15*time.Second)
	defer cancel()
	resp, err := a.do(pctx, "GET", "/api/v1/profiling/agents/"+url.PathEscape(a.cfg.Name)+"/next",
		url.Values{"wait": {strconv.Itoa(wait)}}, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusNotFound:
		return nil, ErrUnknownAgent
	case http.StatusOK:
		var c Capture
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			return nil, fmt.Errorf("capture request: %w", err)
		}
		return &c, nil
	}
	return nil, readErr(resp)
}

// run executes one capture request and queues its result for delivery.
func (a *agent) run(ctx context.Context, c *Capture) {
	a.log.Info("agent: capture", "id", c.ID, "target", c.Target, "kind", c.Kind, "seconds", c.Seconds)
	results, err := a.capture(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("agent: capture failed", "id", c.ID, "err", err)
		a.queue(upload{CaptureID: c.ID, Failure: err.Error()})
		return
	}
	// The pre-roll goes first: the live result marks the capture done.
	for i := len(results) - 1; i >= 0; i-- {
		a.queue(results[i])
	}
}

// capture runs the allowed capture a request names; it refuses anything else.
func (a *agent) capture(ctx context.Context, c *Capture) ([]upload, error) {
	if !a.allowed[c.Kind] {
		return nil, fmt.Errorf("this agent does not allow %s captures", c.Kind)
	}
	if c.Seconds <= 0 || c.Seconds > MaxCaptureSeconds {
		return nil, fmt.Errorf("capture of %d seconds: want 1 to %d", c.Seconds, MaxCaptureSeconds)
	}
	if c.Kind == "perf" {
		if c.Target != PerfTarget || !a.cfg.Perf {
			return nil, errors.New("perf captures are not enabled on this agent")
		}
		return a.capturePerf(ctx, c)
	}
	t, ok := a.targets[c.Target]
	if !ok {
		return nil, fmt.Errorf("no pprof target %q on this agent", c.Target)
	}
	if c.Kind == "cpu" && a.rings[t.Name] != nil {
		return a.captureFromRing(ctx, c, a.rings[t.Name])
	}
	start := time.Now()
	data, err := a.fetchPprof(ctx, t, c.Kind, c.Seconds)
	if err != nil {
		return nil, err
	}
	return []upload{{CaptureID: c.ID, Format: FormatPprof, Data: data, Start: start, End: time.Now()}}, nil
}

// pprofPaths maps capture kinds to net/http/pprof paths. Kinds that are
// cumulative since the process started (allocs, mutex, block) are asked for
// as a delta over the capture's seconds.
func pprofPath(kind string, seconds int) (string, url.Values) {
	s := strconv.Itoa(seconds)
	switch kind {
	case "cpu":
		return "/debug/pprof/profile", url.Values{"seconds": {s}}
	case "allocs", "mutex", "block":
		return "/debug/pprof/" + kind, url.Values{"seconds": {s}}
	}
	return "/debug/pprof/" + kind, nil
}

func (a *agent) fetchPprof(ctx context.Context, t PprofTarget, kind string, seconds int) ([]byte, error) {
	path, q := pprofPath(kind, seconds)
	u, _ := url.Parse(t.URL)
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	fctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, "GET", u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, profilingUploadMax+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", t.Name, path, resp.Status, strings.TrimSpace(string(data[:min(len(data), 200)])))
	}
	if len(data) > profilingUploadMax {
		return nil, fmt.Errorf("%s: profile over %d bytes", t.Name, profilingUploadMax)
	}
	return data, nil
}

// profilingUploadMax is the largest profile an agent reads or sends.
const profilingUploadMax = 64 << 20

func (a *agent) capturePerf(ctx context.Context, c *Capture) ([]upload, error) {
	dir, err := os.MkdirTemp("", "srekit-perf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "perf.data")
	// The request's fields; an older server sent them as labels.
	freq, pid := c.Frequency, c.PID
	if f := c.Labels["frequency"]; f != "" && freq == 0 {
		if freq, err = strconv.Atoi(f); err != nil {
			return nil, fmt.Errorf("frequency %q: want 1 to %d Hz", f, MaxPerfFrequency)
		}
	}
	if p := c.Labels["pid"]; p != "" && pid == 0 {
		if pid, err = strconv.Atoi(p); err != nil || pid <= 0 {
			return nil, fmt.Errorf("pid %q: want a process id", p)
		}
	}
	if freq == 0 {
		freq = a.cfg.PerfFrequency
	}
	if freq < 1 || freq > MaxPerfFrequency || pid < 0 {
		return nil, fmt.Errorf("perf capture: frequency %d (want 1 to %d Hz), pid %d", freq, MaxPerfFrequency, pid)
	}
	args := []string{"record", "-F", strconv.Itoa(freq), "-g", "-o", out}
	if pid > 0 {
		args = append(args, "-p", strconv.Itoa(pid))
	} else {
		args = append(args, "-a")
	}
	args = append(args, "--", "sleep", strconv.Itoa(c.Seconds))
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, time.Duration(c.Seconds)*time.Second+60*time.Second)
	defer cancel()
	if b, err := exec.CommandContext(cctx, a.perfPath(), args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("perf record: %v: %s", err, lastLine(b))
	}
	end := time.Now()
	script, err := exec.CommandContext(cctx, a.perfPath(), "script", "-i", out).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("perf script: %v: %s", err, lastLine(ee.Stderr))
		}
		return nil, fmt.Errorf("perf script: %w", err)
	}
	p, err := collapsePerf(script)
	if err != nil {
		return nil, err
	}
	// Send the perf script itself (gzip'ed) so that the server keeps each
	// sample's time for the sub-second heat map; fall back to the folded
	// stacks when it would be over the server's limits.
	if len(script) <= perfScriptMaxRaw {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		if _, err := zw.Write(script); err == nil && zw.Close() == nil && z.Len() <= profilingUploadMax {
			return []upload{{CaptureID: c.ID, Format: FormatPerf, Data: z.Bytes(), Start: start, End: end}}, nil
		}
	}
	var b bytes.Buffer
	if err := p.WriteFolded(&b); err != nil {
		return nil, err
	}
	return []upload{{CaptureID: c.ID, Format: FormatFolded, Data: b.Bytes(), Start: start, End: end}}, nil
}

// perfScriptMaxRaw is the largest perf script an agent uploads as is; the
// server inflates at most 256 MiB by default.
const perfScriptMaxRaw = 200 << 20

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// queue adds a result to the outbox, dropping the oldest beyond MaxBuffered.
func (a *agent) queue(u upload) {
	a.spool(&u)
	a.mu.Lock()
	a.outbox = append(a.outbox, u)
	if len(a.outbox) > a.cfg.MaxBuffered {
		a.log.Warn("agent: result buffer full; dropping the oldest", "capture", a.outbox[0].CaptureID)
		a.unspool(a.outbox[0])
		a.outbox = a.outbox[1:]
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Buffered reports how many results wait for delivery (for tests and metrics).
func (a *agent) buffered() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.outbox)
}

// deliver sends outbox results in order, retrying with backoff while the
// server is away. A result the server rejects as bad (4xx) is dropped with a
// log line; retrying it would never succeed.
func (a *agent) deliver(ctx context.Context) {
	backoff := newBackoff()
	for {
		a.mu.Lock()
		var u *upload
		if len(a.outbox) > 0 {
			u = &a.outbox[0]
		}
		a.mu.Unlock()
		if u == nil {
			select {
			case <-ctx.Done():
				return
			case <-a.kick:
				continue
			}
		}
		err := a.send(ctx, *u)
		var perm permanentError
		if err != nil && !errors.As(err, &perm) {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("agent: upload failed; keeping the result and retrying", "capture", u.CaptureID, "err", err, "buffered", a.buffered())
			backoff.wait(ctx)
			continue
		}
		if err != nil {
			a.log.Error("agent: server refused the result", "capture", u.CaptureID, "err", err)
		}
		backoff.reset()
		a.unspool(*u)
		a.mu.Lock()
		a.outbox = a.outbox[1:]
		a.mu.Unlock()
	}
}

type permanentError struct{ error }

func (a *agent) send(ctx context.Context, u upload) error {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var resp *http.Response
	var err error
	path := fmt.Sprintf("/api/v1/profiling/captures/%d/", u.CaptureID)
	if u.Failure != "" {
		body, _ := json.Marshal(map[string]string{"error": u.Failure})
		resp, err = a.do(sctx, "POST", path+"fail", nil, body, "application/json")
	} else {
		q := url.Values{"format": {u.Format}, "start": {strconv.FormatInt(u.Start.UnixMilli(), 10)}, "end": {strconv.FormatInt(u.End.UnixMilli(), 10)}}
		if u.Preroll {
			q.Set("preroll", "true")
		}
		resp, err = a.do(sctx, "POST", path+"result", q, u.Data, "application/octet-stream")
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	err = readErr(resp)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests {
		return permanentError{err}
	}
	return err
}

// backoff doubles a wait from 500ms to 30s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 500 * time.Millisecond} }
func (b *backoff) reset()  { b.d = 500 * time.Millisecond }
func (b *backoff) wait(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b.d = min(b.d*2, 30*time.Second)
}

// ring is the pre-roll buffer: CPU profiles of one target, back to back.
type ring struct {
	keep time.Duration

	mu     sync.Mutex
	chunks []chunk
	added  chan struct{} // closed and replaced when a chunk arrives
}

type chunk struct {
	start, end time.Time
	p          *profile.Profile
}

func newRing(keep time.Duration) *ring { return &ring{keep: keep, added: make(chan struct{})} }

func (r *ring) add(c chunk) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chunks = append(r.chunks, c)
	cut := 0
	for cut < len(r.chunks) && r.chunks[cut].end.Before(c.end.Add(-r.keep)) {
		cut++
	}
	r.chunks = r.chunks[cut:]
	close(r.added)
	r.added = make(chan struct{})
}

// between returns the chunks that end after from and at or before until
// (+ slack), and whether a chunk ending at or after until exists yet.
func (r *ring) between(from, until time.Time) ([]*profile.Profile, time.Time, time.Time, bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ps []*profile.Profile
	var lo, hi time.Time
	complete := false
	for _, c := range r.chunks {
		if !c.end.After(from) || c.start.After(until) || c.start.Equal(until) {
			if !c.end.Before(until) {
				complete = true
			}
			continue
		}
		ps = append(ps, c.p)
		if lo.IsZero() || c.start.Before(lo) {
			lo = c.start
		}
		if c.end.After(hi) {
			hi = c.end
		}
		if !c.end.Before(until) {
			complete = true
		}
	}
	return ps, lo, hi, complete, r.added
}

// fillRing captures CPU profiles of t back to back into r until ctx ends.
func (a *agent) fillRing(ctx context.Context, t PprofTarget, r *ring) {
	secs := max(int(a.cfg.PrerollChunk/time.Second), 1)
	bo := newBackoff()
	for ctx.Err() == nil {
		start := time.Now()
		data, err := a.fetchPprof(ctx, t, "cpu", secs)
		if err == nil {
			var p *profile.Profile
			p, err = profile.ParseData(data)
			if err == nil {
				r.add(chunk{start: start, end: time.Now(), p: p})
				bo.reset()
				continue
			}
		}
		if ctx.Err() == nil {
			a.log.Warn("agent: pre-roll capture failed", "target", t.Name, "err", err)
			bo.wait(ctx)
		}
	}
}

// captureFromRing answers a CPU capture of a target that has a pre-roll
// ring: the ring already profiles it continuously (Go allows one CPU profile
// at a time per process), so the live part is the chunks of the next
// Seconds, and the pre-roll the chunks of the Preroll before the request.
func (a *agent) captureFromRing(ctx context.Context, c *Capture, r *ring) ([]upload, error) {
	reqStart := time.Now()
	until := reqStart.Add(time.Duration(c.Seconds) * time.Second)
	var out []upload
	for {
		ps, lo, hi, complete, added := r.between(reqStart, until)
		if complete && len(ps) > 0 {
			data, err := mergePprof(ps)
			if err != nil {
				return nil, err
			}
			out = append(out, upload{CaptureID: c.ID, Format: FormatPprof, Data: data, Start: lo, End: hi})
			break
		}
		timeout := time.NewTimer(time.Until(until) + a.cfg.PrerollChunk + 60*time.Second)
		select {
		case <-ctx.Done():
			timeout.Stop()
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, errors.New("pre-roll ring: no CPU profile arrived in time (see the agent's log)")
		case <-added:
			timeout.Stop()
		}
	}
	if c.Preroll {
		// Chunks that straddle the request start belong to the live part.
		var before []*profile.Profile
		var lo, hi time.Time
		r.mu.Lock()
		for _, ch := range r.chunks {
			if !ch.end.After(reqStart) && ch.end.After(reqStart.Add(-a.cfg.Preroll)) {
				before = append(before, ch.p)
				if lo.IsZero() || ch.start.Before(lo) {
					lo = ch.start
				}
				hi = ch.end
			}
		}
		r.mu.Unlock()
		if len(before) > 0 {
			data, err := mergePprof(before)
			if err != nil {
				return nil, err
			}
			out = append(out, upload{CaptureID: c.ID, Format: FormatPprof, Data: data, Start: lo, End: hi, Preroll: true})
		}
	}
	return out, nil
}

func mergePprof(ps []*profile.Profile) ([]byte, error) {
	m, err := profile.Merge(ps)
	if err != nil {
		return nil, fmt.Errorf("merge pre-roll profiles: %w", err)
	}
	var b bytes.Buffer
	if err := m.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
