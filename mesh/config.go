package mesh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a mesh configuration file: where to listen, which requests go to
// which cluster, and how each cluster balances, checks and retries.
// Only requests matching a route are forwarded: there is no default upstream,
// so the mesh is never an open proxy.
type Config struct {
	// Region is where this front door runs; the locality preference sends
	// requests to endpoints of this region first. Empty disables it.
	Region string `yaml:"region"`
	// Admin is the address of the admin listener (metrics, timings, reload);
	// 127.0.0.1:9901 when empty, "off" to disable.
	Admin     string     `yaml:"admin"`
	AccessLog string     `yaml:"access_log"` // "", "stderr", "stdout" or a file path
	Listeners []Listener `yaml:"listeners"`
	Routes    []Route    `yaml:"routes"`
	Clusters  []Cluster  `yaml:"clusters"`
	// TimingsInterval is the width of one point of the per-region timings
	// series (10s when zero); 360 points are kept.
	TimingsInterval Duration `yaml:"timings_interval"`

	file string         // the file name, for errors
	root *yaml.Node     // the parsed document, to find lines for errors
	byID map[string]int // cluster name -> index
}

// Listener is one address the mesh accepts requests on.
type Listener struct {
	Name string `yaml:"name"`
	Addr string `yaml:"addr"`
	// Cert and Key are PEM files; with them the listener speaks TLS and
	// negotiates HTTP/2 by ALPN.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// H2C accepts HTTP/2 without TLS (prior knowledge), beside HTTP/1.1.
	H2C bool `yaml:"h2c"`
	// MaxHeaderBytes caps request headers (64 KiB when zero); bigger gets 431.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes caps request bodies (0: no cap); bigger gets 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds slow clients (10s when zero).
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// TrustForwarded keeps X-Forwarded-For from the client and appends to it;
	// otherwise the mesh is the first hop and replaces it.
	TrustForwarded bool `yaml:"trust_forwarded"`
	// DisableFastPath serves every request of a plain-HTTP listener with
	// net/http, as TLS and h2c listeners are (see docs/mesh.md, "fast path").
	DisableFastPath bool `yaml:"disable_fast_path"`
	// EventLoops is how many epoll event loops serve the fast path (Linux):
	// 0 means one per CPU the Go scheduler uses (GOMAXPROCS); below zero,
	// none: a goroutine per connection, as on other systems.
	EventLoops int `yaml:"event_loops"`
	// BusyPoll keeps each event loop polling its sockets, without parking,
	// for this long after it last had work (Linux; 0, the default: park at
	// once). Like HAProxy's busy-polling, it trades a CPU kept busy for
	// answers that do not wait for a wake-up (see docs/mesh.md).
	BusyPoll Duration `yaml:"busy_poll"`
}

// Route sends requests whose host and path match to a cluster. An empty Host
// matches every host; the longest matching PathPrefix wins, then a specific
// host over the empty one.
type Route struct {
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
	Cluster    string `yaml:"cluster"`
	// StripPrefix removes PathPrefix before forwarding.
	StripPrefix bool `yaml:"strip_prefix"`
}

// Cluster is a set of endpoints serving the same thing, with its policies.
type Cluster struct {
	Name      string           `yaml:"name"`
	Endpoints []EndpointConfig `yaml:"endpoints"`
	DNS       []DNSConfig      `yaml:"dns"`
	// Balancer is p2c_ewma (default), least_request or round_robin.
	Balancer string `yaml:"balancer"`
	// Protocol to the backends: http1 (default), h2 (HTTP/2 over TLS when
	// TLS is set, else h2c), or auto (HTTP/2 by ALPN over TLS, else HTTP/1.1).
	Protocol string     `yaml:"protocol"`
	TLS      *ClientTLS `yaml:"tls"`
	// Locality is the preference for the front door's region: on (default)
	// or off. LocalitySlack: the local region is used while its best
	// latency is within this factor of the best elsewhere (1.5 when zero).
	// LocalityMargin is added to that allowance, so that noise between
	// equally near regions does not flip traffic away (2ms when zero).
	Locality       string   `yaml:"locality"`
	LocalitySlack  float64  `yaml:"locality_slack"`
	LocalityMargin Duration `yaml:"locality_margin"`
	// ConnectTimeout bounds dialing (1s when zero).
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// Timeout bounds the whole request including retries (30s when zero).
	Timeout Duration `yaml:"timeout"`
	// MaxIdlePerEndpoint is the warm pool size per endpoint (256 when zero).
	MaxIdlePerEndpoint int `yaml:"max_idle_per_endpoint"`
	// MaxConcurrentPerEndpoint is the circuit breaker: an endpoint with this
	// many requests in flight gets no more (0: 1024).
	MaxConcurrentPerEndpoint int `yaml:"max_concurrent_per_endpoint"`
	// DefaultRTT is the latency assumed for an endpoint not measured yet (5ms when zero).
	DefaultRTT Duration `yaml:"default_rtt"`
	// DecayTime is the peak-EWMA time constant (10s when zero).
	DecayTime Duration `yaml:"decay_time"`
	// FailurePenalty is the latency recorded for a failed attempt, so that an
	// endpoint that fails fast does not look fast (1s when zero).
	FailurePenalty Duration       `yaml:"failure_penalty"`
	HealthCheck    *HealthConfig  `yaml:"health_check"`
	Outlier        *OutlierConfig `yaml:"outlier"`
	Retry          *RetryConfig   `yaml:"retry"`
	// PanicThreshold: when fewer than this share of endpoints are healthy,
	// health is ignored and all endpoints are used (0.5 when zero; negative disables).
	PanicThreshold float64 `yaml:"panic_threshold"`
}

// EndpointConfig is one static endpoint.
type EndpointConfig struct {
	Address string `yaml:"address"` // host:port
	Region  string `yaml:"region"`
	Zone    string `yaml:"zone"`
}

// DNSConfig discovers endpoints by name, re-resolving every Refresh.
type DNSConfig struct {
	Name string `yaml:"name"`
	// Type is A (A and AAAA), AAAA (AAAA only) or SRV.
	Type    string   `yaml:"type"`
	Port    int      `yaml:"port"` // for A/AAAA
	Refresh Duration `yaml:"refresh"`
	// Server is a DNS server host:port to ask instead of the system resolver.
	Server string `yaml:"server"`
	Region string `yaml:"region"`
	Zone   string `yaml:"zone"`
}

// ClientTLS configures TLS to the backends.
type ClientTLS struct {
	CA                 string `yaml:"ca"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// HealthConfig is an active HTTP health check.
type HealthConfig struct {
	Path               string   `yaml:"path"`
	Interval           Duration `yaml:"interval"`
	Timeout            Duration `yaml:"timeout"`
	HealthyThreshold   int      `yaml:"healthy_threshold"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold"`
	// ExpectStatus is the first digit of an acceptable status (2 when zero).
	ExpectStatus int `yaml:"expect_status"`
}

// OutlierConfig is passive outlier ejection from live traffic.
type OutlierConfig struct {
	Consecutive5xx           int      `yaml:"consecutive_5xx"`
	ConsecutiveConnectErrors int      `yaml:"consecutive_connect_errors"`
	BaseEjection             Duration `yaml:"base_ejection"`
	MaxEjection              Duration `yaml:"max_ejection"`
	MaxEjectedPercent        int      `yaml:"max_ejected_percent"`
}

// RetryConfig bounds retries and hedges of idempotent requests.
type RetryConfig struct {
	Attempts   int      `yaml:"attempts"` // total tries per request (2 when zero)
	PerTry     Duration `yaml:"per_try_timeout"`
	Budget     float64  `yaml:"budget"`         // retries as a share of requests (0.2 when zero)
	MinPerSec  float64  `yaml:"min_per_second"` // retries always allowed per second (10 when zero)
	On         []int    `yaml:"on_status"`      // statuses retried (502, 503, 504 when empty)
	HedgeAfter Duration `yaml:"hedge_after"`    // send a second GET after this long (0: no hedging)
}

// Duration is a time.Duration written as "250ms" or "10s" in YAML.
type Duration time.Duration

// UnmarshalYAML accepts Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 250ms", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 250ms", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %s is negative", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration, or def when d is zero.
func (d Duration) D(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, b)
}

// ParseConfig parses and validates YAML; name is used in errors, which say
// "name line N: field: problem".
func ParseConfig(name string, data []byte) (*Config, error) {
	c := &Config{file: name}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty config", name)
		}
		return nil, fmt.Errorf("%s: %s", name, cleanYAMLError(err))
	}
	c.root = &root
	d2 := yaml.NewDecoder(bytes.NewReader(data))
	d2.KnownFields(true)
	if err := d2.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %s", name, cleanYAMLError(err))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.ReplaceAll(s, "unmarshal errors:\n  ", "")
	s = strings.ReplaceAll(s, "\n  ", "; ")
	return strings.ReplaceAll(s, "\n", `\n`) // one line, whatever the input held
}

// fieldError is a validation error at a path such as clusters[1].endpoints[0].address.
func (c *Config) fieldError(path string, format string, args ...any) error {
	line := c.lineOf(path)
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		return fmt.Errorf("%s line %d: %s: %s", c.file, line, path, msg)
	}
	return fmt.Errorf("%s: %s: %s", c.file, path, msg)
}

// lineOf finds the line of the node at path, or of its nearest existing parent.
func (c *Config) lineOf(path string) int {
	n := c.root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, seg := range strings.Split(path, ".") {
		key, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i >= 0 && strings.HasSuffix(seg, "]") {
			key = seg[:i]
			idx, _ = strconv.Atoi(seg[i+1 : len(seg)-1])
		}
		next := (*yaml.Node)(nil)
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
					line = n.Content[i].Line
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

var validBalancers = map[string]bool{"": true, "p2c_ewma": true, "least_request": true, "round_robin": true}

func (c *Config) validate() error {
	if len(c.Listeners) == 0 {
		return c.fieldError("listeners", "at least one listener is needed")
	}
	if c.Admin != "" && c.Admin != "off" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			return c.fieldError("admin", "%q is not host:port", c.Admin)
		}
	}
	names := map[string]bool{}
	addrs := map[string]bool{}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			return c.fieldError(p+".addr", "%q is not host:port", l.Addr)
		}
		if addrs[l.Addr] && !strings.HasSuffix(l.Addr, ":0") {
			return c.fieldError(p+".addr", "%s is used by two listeners", l.Addr)
		}
		addrs[l.Addr] = true
		if l.Name != "" && names[l.Name] {
			return c.fieldError(p+".name", "duplicate listener name %q", l.Name)
		}
		names[l.Name] = true
		if (l.Cert == "") != (l.Key == "") {
			return c.fieldError(p+".cert", "cert and key go together")
		}
		if l.MaxHeaderBytes < 0 || l.MaxBodyBytes < 0 {
			return c.fieldError(p+".max_header_bytes", "limits cannot be negative")
		}
		if l.BusyPoll > 0 && (l.EventLoops < 0 || l.DisableFastPath || l.Cert != "" || l.H2C) {
			return c.fieldError(p+".busy_poll", "busy polling is done by the event loops, which serve plain HTTP/1.1 listeners with the fast path and event_loops >= 0")
		}
		if time.Duration(l.BusyPoll) > time.Second {
			return c.fieldError(p+".busy_poll", "%s is over the 1s maximum (a few hundred microseconds covers the gaps between requests under load)", time.Duration(l.BusyPoll))
		}
	}
	c.byID = map[string]int{}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		p := fmt.Sprintf("clusters[%d]", i)
		if cl.Name == "" {
			return c.fieldError(p+".name", "a cluster needs a name")
		}
		if _, dup := c.byID[cl.Name]; dup {
			return c.fieldError(p+".name", "duplicate cluster %q", cl.Name)
		}
		c.byID[cl.Name] = i
		if !validBalancers[cl.Balancer] {
			return c.fieldError(p+".balancer", "%q: want p2c_ewma, least_request or round_robin", cl.Balancer)
		}
		switch cl.Protocol {
		case "", "http1", "h2", "auto":
		default:
			return c.fieldError(p+".protocol", "%q: want http1, h2 or auto", cl.Protocol)
		}
		switch cl.Locality {
		case "", "on", "off":
		default:
			return c.fieldError(p+".locality", "%q: want on or off", cl.Locality)
		}
		if cl.LocalitySlack < 0 || cl.LocalitySlack != cl.LocalitySlack {
			return c.fieldError(p+".locality_slack", "must be a positive factor")
		}
		if cl.PanicThreshold > 1 || cl.PanicThreshold != cl.PanicThreshold {
			return c.fieldError(p+".panic_threshold", "must be a share at most 1")
		}
		if cl.MaxIdlePerEndpoint < 0 || cl.MaxConcurrentPerEndpoint < 0 {
			return c.fieldError(p+".max_idle_per_endpoint", "limits cannot be negative")
		}
		if len(cl.Endpoints) == 0 && len(cl.DNS) == 0 {
			return c.fieldError(p+".endpoints", "cluster %q has no endpoints and no dns", cl.Name)
		}
		seen := map[string]bool{}
		for j, e := range cl.Endpoints {
			ep := fmt.Sprintf("%s.endpoints[%d].address", p, j)
			host, port, err := net.SplitHostPort(e.Address)
			if err != nil || host == "" {
				return c.fieldError(ep, "%q is not host:port", e.Address)
			}
			if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
				return c.fieldError(ep, "port %q is not 1-65535", port)
			}
			if seen[e.Address] {
				return c.fieldError(ep, "%s is listed twice", e.Address)
			}
			seen[e.Address] = true
		}
		for j, d := range cl.DNS {
			dp := fmt.Sprintf("%s.dns[%d]", p, j)
			if d.Name == "" {
				return c.fieldError(dp+".name", "a DNS name is needed")
			}
			switch strings.ToUpper(d.Type) {
			case "", "A", "AAAA":
				if d.Port <= 0 || d.Port > 65535 {
					return c.fieldError(dp+".port", "A/AAAA discovery needs a port 1-65535")
				}
			case "SRV":
			default:
				return c.fieldError(dp+".type", "%q: want A, AAAA or SRV", d.Type)
			}
			if d.Server != "" {
				if _, _, err := net.SplitHostPort(d.Server); err != nil {
					return c.fieldError(dp+".server", "%q is not host:port", d.Server)
				}
			}
		}
		if h := cl.HealthCheck; h != nil {
			if !strings.HasPrefix(h.Path, "/") {
				return c.fieldError(p+".health_check.path", "%q must start with /", h.Path)
			}
			if h.HealthyThreshold < 0 || h.UnhealthyThreshold < 0 || h.ExpectStatus < 0 || h.ExpectStatus > 5 {
				return c.fieldError(p+".health_check", "thresholds must be positive and expect_status 1-5")
			}
		}
		if o := cl.Outlier; o != nil {
			if o.MaxEjectedPercent < 0 || o.MaxEjectedPercent > 100 {
				return c.fieldError(p+".outlier.max_ejected_percent", "must be 0-100")
			}
			if o.Consecutive5xx < 0 || o.ConsecutiveConnectErrors < 0 {
				return c.fieldError(p+".outlier", "counts cannot be negative")
			}
		}
		if r := cl.Retry; r != nil {
			if r.Attempts < 0 || r.Attempts > 10 {
				return c.fieldError(p+".retry.attempts", "must be 1-10")
			}
			if r.Budget < 0 || r.Budget > 1 || r.Budget != r.Budget {
				return c.fieldError(p+".retry.budget", "must be a share between 0 and 1")
			}
			if r.MinPerSec < 0 || r.MinPerSec != r.MinPerSec {
				return c.fieldError(p+".retry.min_per_second", "cannot be negative")
			}
			for k, s := range r.On {
				if s < 500 || s > 599 {
					return c.fieldError(fmt.Sprintf("%s.retry.on_status[%d]", p, k), "%d: only 5xx statuses are retried", s)
				}
			}
		}
	}
	if len(c.Routes) == 0 {
		return c.fieldError("routes", "at least one route is needed: the mesh forwards only configured routes")
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if _, ok := c.byID[r.Cluster]; !ok {
			return c.fieldError(p+".cluster", "no cluster named %q", r.Cluster)
		}
		if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
			return c.fieldError(p+".path_prefix", "%q must start with /", r.PathPrefix)
		}
		if strings.ContainsAny(r.Host, "/ ") {
			return c.fieldError(p+".host", "%q is not a host name", r.Host)
		}
	}
	return nil
}
