package sampling

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the sampler's YAML configuration file. Every field has a
// default; Validate names the offending field in its errors.
type Config struct {
	Receivers struct {
		// GRPC and HTTP are OTLP listen addresses; "off" disables one.
		GRPC string `yaml:"grpc"`
		HTTP string `yaml:"http"`
		// MaxRequestBytes caps one OTLP request (both protocols).
		MaxRequestBytes ByteSize `yaml:"max_request_bytes"`
	} `yaml:"receivers"`
	Exporter ExporterConfig `yaml:"exporter"`
	Buffer   struct {
		MaxMemory        ByteSize      `yaml:"max_memory"`
		DecisionWait     time.Duration `yaml:"decision_wait"`
		TraceTimeout     time.Duration `yaml:"trace_timeout"`
		MaxSpansPerTrace int           `yaml:"max_spans_per_trace"`
		MaxBytesPerTrace ByteSize      `yaml:"max_bytes_per_trace"`
		KeptCache        int           `yaml:"kept_cache"`
		DroppedCache     int           `yaml:"dropped_cache"`
	} `yaml:"buffer"`
	StressRelief struct {
		// Percent is the keep percentage of stateless sampling under stress.
		Percent float64 `yaml:"percent"`
		// RecoverBelow ends stress relief when memory falls below this fraction of max_memory.
		RecoverBelow float64 `yaml:"recover_below"`
	} `yaml:"stress_relief"`
	// Metrics is the listen address of /metrics (and the status JSON).
	Metrics string `yaml:"metrics"`
	// Peers are other samplers sharing the load (see Peers).
	Peers struct {
		Self    string   `yaml:"self"`
		Members []string `yaml:"members"`
	} `yaml:"peers"`
	Policies []PolicyConfig `yaml:"policies"`
}

// ExporterConfig says where kept spans go.
type ExporterConfig struct {
	// Protocol is "grpc" or "http" (OTLP/HTTP protobuf).
	Protocol string `yaml:"protocol"`
	// Endpoint is host:port for gRPC, a URL (…/v1/traces) for HTTP. Empty
	// means kept spans are counted and discarded (for evaluation runs).
	Endpoint string            `yaml:"endpoint"`
	Headers  map[string]string `yaml:"headers"`
	Timeout  time.Duration     `yaml:"timeout"`
	// QueueSize is how many batches wait for export before new ones are dropped.
	QueueSize int `yaml:"queue_size"`
	// Workers is how many exports run at once.
	Workers int         `yaml:"workers"`
	Retry   RetryConfig `yaml:"retry"`
}

// RetryConfig is the exporter's backoff: Initial doubling up to Max, giving
// up after MaxElapsed.
type RetryConfig struct {
	Initial    time.Duration `yaml:"initial"`
	Max        time.Duration `yaml:"max"`
	MaxElapsed time.Duration `yaml:"max_elapsed"`
}

// PolicyConfig is one policy: a name and exactly one kind.
type PolicyConfig struct {
	Name          string               `yaml:"name"`
	Errors        *ErrorsConfig        `yaml:"errors"`
	Latency       *LatencyConfig       `yaml:"latency"`
	Attribute     *AttributeConfig     `yaml:"attribute"`
	Probabilistic *ProbabilisticConfig `yaml:"probabilistic"`
	RateLimit     *RateLimitConfig     `yaml:"rate_limit"`
	Dynamic       *DynamicConfig       `yaml:"dynamic"`
	And           []PolicyConfig       `yaml:"and"`
	Or            []PolicyConfig       `yaml:"or"`
	Not           *PolicyConfig        `yaml:"not"`
	Drop          *PolicyConfig        `yaml:"drop"`
}

// ErrorsConfig: which signs of an error count (all by default).
type ErrorsConfig struct {
	Status     *bool `yaml:"status"`
	HTTP5xx    *bool `yaml:"http_5xx"`
	Exceptions *bool `yaml:"exceptions"`
}

// LatencyConfig: a fixed threshold, or a learned quantile per key.
type LatencyConfig struct {
	Threshold  time.Duration `yaml:"threshold"`
	Quantile   float64       `yaml:"quantile"`
	Window     time.Duration `yaml:"window"`
	MinSamples int           `yaml:"min_samples"`
	Key        []string      `yaml:"key"`
	MaxKeys    int           `yaml:"max_keys"`
}

// AttributeConfig: a span or resource attribute condition.
type AttributeConfig struct {
	Key    string   `yaml:"key"`
	Values []string `yaml:"values"`
	Regex  string   `yaml:"regex"`
	Min    *float64 `yaml:"min"`
	Max    *float64 `yaml:"max"`
	Scope  string   `yaml:"scope"`
}

// ProbabilisticConfig: keep a percentage.
type ProbabilisticConfig struct {
	Percent float64 `yaml:"percent"`
}

// RateLimitConfig: at most so many per second (any of the three).
type RateLimitConfig struct {
	TracesPerSecond float64  `yaml:"traces_per_second"`
	SpansPerSecond  float64  `yaml:"spans_per_second"`
	BytesPerSecond  ByteSize `yaml:"bytes_per_second"`
}

// DynamicConfig: per-key adaptive rates.
type DynamicConfig struct {
	Key             []string      `yaml:"key"`
	GoalRate        float64       `yaml:"goal_rate"`
	TargetPerSecond float64       `yaml:"target_per_second"`
	Interval        time.Duration `yaml:"interval"`
	Weight          float64       `yaml:"weight"`
	MaxKeys         int           `yaml:"max_keys"`
	// MinPerInterval is the least number of traces each key keeps per
	// interval in expectation (its share of the budget is raised to it,
	// all of the key when it has fewer), so that even small keys get
	// samples large enough for near-normal estimates; 0 means 1.
	MinPerInterval float64 `yaml:"min_per_interval"`
}

// ByteSize is a size in bytes written as a number with an optional unit
// (B, KB, MB, GB, KiB, MiB, GiB).
type ByteSize int64

var sizeRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]i?B|B)?\s*$`)

// ParseByteSize reads "512MiB", "1.5GB", "4096".
func ParseByteSize(s string) (ByteSize, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB)", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
	v := f * mult
	if v > 1<<50 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return ByteSize(v), nil
}

// UnmarshalYAML accepts a number or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size such as 512MiB", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes YAML (unknown fields are errors), fills defaults and validates.
func ParseConfig(data []byte) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		// yaml lists several problems on several lines: one line, first problem.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		first, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
		return nil, fmt.Errorf("config: %s", strings.TrimSpace(first))
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) defaults() {
	if c.Receivers.GRPC == "" {
		c.Receivers.GRPC = "127.0.0.1:4317"
	}
	if c.Receivers.HTTP == "" {
		c.Receivers.HTTP = "127.0.0.1:4318"
	}
	if c.Receivers.MaxRequestBytes == 0 {
		c.Receivers.MaxRequestBytes = 16 << 20
	}
	e := &c.Exporter
	if e.Protocol == "" {
		e.Protocol = "grpc"
	}
	if e.Timeout == 0 {
		e.Timeout = 5 * time.Second
	}
	if e.QueueSize == 0 {
		e.QueueSize = 1000
	}
	if e.Workers == 0 {
		e.Workers = 4
	}
	if e.Retry.Initial == 0 {
		e.Retry.Initial = 100 * time.Millisecond
	}
	if e.Retry.Max == 0 {
		e.Retry.Max = 5 * time.Second
	}
	if e.Retry.MaxElapsed == 0 {
		e.Retry.MaxElapsed = time.Minute
	}
	if c.StressRelief.Percent == 0 {
		c.StressRelief.Percent = 1
	}
	if c.StressRelief.RecoverBelow == 0 {
		c.StressRelief.RecoverBelow = 0.5
	}
	if c.Metrics == "" {
		c.Metrics = "127.0.0.1:8889"
	}
	if len(c.Policies) == 0 {
		c.Policies = DefaultPolicies()
	}
}

// DefaultPolicies keep every error, every trace slower than its key's
// learned p99, and a dynamic per-key sample of the rest aiming at one trace
// in 20.
func DefaultPolicies() []PolicyConfig {
	return []PolicyConfig{
		{Name: "errors", Errors: &ErrorsConfig{}},
		{Name: "slow", Latency: &LatencyConfig{Quantile: 0.99}},
		{Name: "dynamic", Dynamic: &DynamicConfig{GoalRate: 20}},
	}
}

// Validate checks the whole file, naming the field of the first problem.
func (c *Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, a...))
	}
	if c.Buffer.MaxMemory < 0 || (c.Buffer.MaxMemory > 0 && c.Buffer.MaxMemory < 1<<20) {
		return bad("buffer.max_memory", "must be at least 1MiB, got %d bytes", c.Buffer.MaxMemory)
	}
	for _, d := range []struct {
		f string
		v time.Duration
	}{{"buffer.decision_wait", c.Buffer.DecisionWait}, {"buffer.trace_timeout", c.Buffer.TraceTimeout},
		{"exporter.timeout", c.Exporter.Timeout}, {"exporter.retry.initial", c.Exporter.Retry.Initial},
		{"exporter.retry.max", c.Exporter.Retry.Max}, {"exporter.retry.max_elapsed", c.Exporter.Retry.MaxElapsed}} {
		if d.v < 0 {
			return bad(d.f, "must not be negative, got %s", d.v)
		}
	}
	if c.Buffer.DecisionWait > 0 && c.Buffer.TraceTimeout > 0 && c.Buffer.TraceTimeout < c.Buffer.DecisionWait {
		return bad("buffer.trace_timeout", "(%s) must not be shorter than buffer.decision_wait (%s)", c.Buffer.TraceTimeout, c.Buffer.DecisionWait)
	}
	if c.Buffer.MaxSpansPerTrace < 0 || c.Buffer.MaxBytesPerTrace < 0 || c.Buffer.KeptCache < 0 || c.Buffer.DroppedCache < 0 {
		return bad("buffer", "limits and cache sizes must not be negative")
	}
	if c.Buffer.KeptCache > 1<<30 || c.Buffer.DroppedCache > 1<<30 {
		return bad("buffer", "kept_cache and dropped_cache must be at most %d", 1<<30)
	}
	if b := c.BufferConfig().WithDefaults(); cacheBytes(b.KeptCache, b.DroppedCache) > b.MaxMemory/2 {
		return bad("buffer", "kept_cache %d and dropped_cache %d take %d bytes, more than half of max_memory (%d bytes)",
			b.KeptCache, b.DroppedCache, cacheBytes(b.KeptCache, b.DroppedCache), b.MaxMemory)
	}
	if p := c.StressRelief.Percent; p <= 0 || p > 100 {
		return bad("stress_relief.percent", "must be in (0, 100], got %g", p)
	}
	if r := c.StressRelief.RecoverBelow; r <= 0 || r >= 1 {
		return bad("stress_relief.recover_below", "must be in (0, 1), got %g", r)
	}
	switch c.Exporter.Protocol {
	case "grpc", "http":
	default:
		return bad("exporter.protocol", "want grpc or http, got %q", c.Exporter.Protocol)
	}
	if c.Exporter.Protocol == "http" && c.Exporter.Endpoint != "" &&
		!strings.HasPrefix(c.Exporter.Endpoint, "http://") && !strings.HasPrefix(c.Exporter.Endpoint, "https://") {
		return bad("exporter.endpoint", "an HTTP exporter wants a URL such as http://collector:4318/v1/traces, got %q", c.Exporter.Endpoint)
	}
	if c.Exporter.QueueSize < 0 || c.Exporter.Workers < 0 {
		return bad("exporter", "queue_size and workers must not be negative")
	}
	if len(c.Peers.Members) > 0 {
		found := false
		for _, m := range c.Peers.Members {
			found = found || m == c.Peers.Self
		}
		if !found {
			return bad("peers.self", "%q is not one of peers.members", c.Peers.Self)
		}
	}
	names := map[string]bool{}
	for i := range c.Policies {
		p := &c.Policies[i]
		field := fmt.Sprintf("policies[%d]", i)
		if p.Name == "" {
			return bad(field+".name", "every top-level policy needs a name (it labels the metrics)")
		}
		if names[p.Name] {
			return bad(field+".name", "%q is used twice", p.Name)
		}
		names[p.Name] = true
		if _, err := buildPolicy(p, field+" ("+p.Name+")", 0); err != nil {
			return err
		}
	}
	return nil
}

// BufferConfig converts the file's buffer section.
func (c *Config) BufferConfig() BufferConfig {
	return BufferConfig{
		MaxMemory:         int64(c.Buffer.MaxMemory),
		DecisionWait:      c.Buffer.DecisionWait,
		TraceTimeout:      c.Buffer.TraceTimeout,
		MaxSpansPerTrace:  c.Buffer.MaxSpansPerTrace,
		MaxBytesPerTrace:  int64(c.Buffer.MaxBytesPerTrace),
		KeptCache:         c.Buffer.KeptCache,
		DroppedCache:      c.Buffer.DroppedCache,
		StressProbability: c.StressRelief.Percent / 100,
		StressRecover:     c.StressRelief.RecoverBelow,
	}
}

// BuildPolicies turns the validated policy list into a PolicySet (fresh
// state: learned latencies and dynamic rates start over).
func (c *Config) BuildPolicies() (*PolicySet, error) {
	var names []string
	var pols []Policy
	var drops []bool
	for i := range c.Policies {
		p := &c.Policies[i]
		pol, err := buildPolicy(p, fmt.Sprintf("policies[%d] (%s)", i, p.Name), 0)
		if err != nil {
			return nil, err
		}
		names = append(names, p.Name)
		pols = append(pols, pol)
		drops = append(drops, p.Drop != nil)
	}
	return NewPolicySet(names, pols, drops), nil
}

func buildPolicy(p *PolicyConfig, field string, depth int) (Policy, error) {
	bad := func(sub, format string, a ...any) error {
		return fmt.Errorf("config: %s%s: %s", field, sub, fmt.Sprintf(format, a...))
	}
	if depth > 8 {
		return nil, bad("", "policies nested more than 8 deep")
	}
	kinds := []string{}
	for k, set := range map[string]bool{"errors": p.Errors != nil, "latency": p.Latency != nil, "attribute": p.Attribute != nil,
		"probabilistic": p.Probabilistic != nil, "rate_limit": p.RateLimit != nil, "dynamic": p.Dynamic != nil,
		"and": p.And != nil, "or": p.Or != nil, "not": p.Not != nil, "drop": p.Drop != nil} {
		if set {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	if len(kinds) != 1 {
		return nil, bad("", "want exactly one of errors, latency, attribute, probabilistic, rate_limit, dynamic, and, or, not, drop; got %d %v", len(kinds), kinds)
	}
	if p.Drop != nil && depth > 0 {
		return nil, bad(".drop", "drop rules must be top-level policies")
	}
	sub := func(kind string, list []PolicyConfig) ([]Policy, error) {
		if len(list) == 0 {
			return nil, bad("."+kind, "needs at least one policy")
		}
		var out []Policy
		for i := range list {
			q, err := buildPolicy(&list[i], fmt.Sprintf("%s.%s[%d]", field, kind, i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, q)
		}
		return out, nil
	}
	orTrue := func(b *bool) bool { return b == nil || *b }
	switch {
	case p.Errors != nil:
		e := ErrorsPolicy{orTrue(p.Errors.Status), orTrue(p.Errors.HTTP5xx), orTrue(p.Errors.Exceptions)}
		if !e.Status && !e.HTTP5xx && !e.Exceptions {
			return nil, bad(".errors", "status, http_5xx and exceptions are all false: nothing would match")
		}
		return e, nil
	case p.Latency != nil:
		l := p.Latency
		if l.Threshold < 0 {
			return nil, bad(".latency.threshold", "must not be negative, got %s", l.Threshold)
		}
		if l.Quantile == 0 && l.Threshold == 0 {
			return nil, bad(".latency", "set threshold (fixed) or quantile (learned per key)")
		}
		if l.Quantile != 0 && (l.Quantile <= 0 || l.Quantile >= 1) {
			return nil, bad(".latency.quantile", "must be between 0 and 1 (exclusive), got %g", l.Quantile)
		}
		if l.Window < 0 || l.MinSamples < 0 || l.MaxKeys < 0 {
			return nil, bad(".latency", "window, min_samples and max_keys must not be negative")
		}
		pol := &LatencyPolicy{Threshold: l.Threshold, Quantile: l.Quantile, Window: l.Window, MinSamples: l.MinSamples, Key: l.Key, MaxKeys: l.MaxKeys}
		if pol.Window == 0 {
			pol.Window = 5 * time.Minute
		}
		if pol.MinSamples == 0 {
			pol.MinSamples = 50
		}
		if pol.MaxKeys == 0 {
			pol.MaxKeys = 5000
		}
		if len(pol.Key) == 0 {
			pol.Key = keyFields{"service", "operation"}
		}
		for i, f := range pol.Key {
			if !validKeyField(f) {
				return nil, bad(fmt.Sprintf(".latency.key[%d]", i), "unknown field %q: want service, operation, status, kind, root.ATTR or resource.ATTR", f)
			}
		}
		return pol, nil
	case p.Attribute != nil:
		a := p.Attribute
		if a.Key == "" {
			return nil, bad(".attribute.key", "is required")
		}
		pol := &AttributePolicy{Key: a.Key, Values: a.Values, Min: a.Min, Max: a.Max, Scope: a.Scope}
		if a.Regex != "" {
			re, err := regexp.Compile(a.Regex)
			if err != nil {
				return nil, bad(".attribute.regex", "%v", err)
			}
			pol.Regex = re
		}
		if (a.Min != nil || a.Max != nil) && (len(a.Values) > 0 || a.Regex != "") {
			return nil, bad(".attribute", "use either min/max or values/regex, not both")
		}
		if a.Min != nil && a.Max != nil && *a.Min > *a.Max {
			return nil, bad(".attribute.min", "(%g) is above max (%g)", *a.Min, *a.Max)
		}
		switch a.Scope {
		case "", "span", "resource":
		default:
			return nil, bad(".attribute.scope", "want span or resource (or leave it out for both), got %q", a.Scope)
		}
		return pol, nil
	case p.Probabilistic != nil:
		pc := p.Probabilistic.Percent
		if !(pc > 0 && pc <= 100) {
			return nil, bad(".probabilistic.percent", "must be in (0, 100], got %g", pc)
		}
		return ProbabilisticPolicy{ProbabilityThreshold(pc / 100)}, nil
	case p.RateLimit != nil:
		r := p.RateLimit
		if r.TracesPerSecond < 0 || r.SpansPerSecond < 0 || r.BytesPerSecond < 0 {
			return nil, bad(".rate_limit", "limits must not be negative")
		}
		if r.TracesPerSecond == 0 && r.SpansPerSecond == 0 && r.BytesPerSecond == 0 {
			return nil, bad(".rate_limit", "set traces_per_second, spans_per_second or bytes_per_second")
		}
		return &RateLimitPolicy{TracesPerSec: r.TracesPerSecond, SpansPerSec: r.SpansPerSecond, BytesPerSec: float64(r.BytesPerSecond)}, nil
	case p.Dynamic != nil:
		d := p.Dynamic
		if d.GoalRate != 0 && d.TargetPerSecond != 0 {
			return nil, bad(".dynamic", "set goal_rate or target_per_second, not both")
		}
		if d.GoalRate == 0 && d.TargetPerSecond == 0 {
			return nil, bad(".dynamic", "set goal_rate (keep 1 trace in N) or target_per_second")
		}
		if d.GoalRate != 0 && d.GoalRate < 1 {
			return nil, bad(".dynamic.goal_rate", "must be at least 1, got %g", d.GoalRate)
		}
		if d.TargetPerSecond < 0 {
			return nil, bad(".dynamic.target_per_second", "must be positive, got %g", d.TargetPerSecond)
		}
		if d.Weight < 0 || d.Weight > 1 {
			return nil, bad(".dynamic.weight", "must be in (0, 1], got %g", d.Weight)
		}
		if d.Interval < 0 || d.MaxKeys < 0 || d.MinPerInterval < 0 {
			return nil, bad(".dynamic", "interval, max_keys and min_per_interval must not be negative")
		}
		pol := &DynamicPolicy{Key: d.Key, GoalRate: d.GoalRate, TargetPerSec: d.TargetPerSecond, Interval: d.Interval, Weight: d.Weight, MaxKeys: d.MaxKeys, MinPerInterval: d.MinPerInterval}
		if pol.Interval == 0 {
			pol.Interval = 15 * time.Second
		}
		if pol.Weight == 0 {
			pol.Weight = 0.5
		}
		if pol.MaxKeys == 0 {
			pol.MaxKeys = 10000
		}
		if len(pol.Key) == 0 {
			pol.Key = keyFields{"service", "operation", "status"}
		}
		for i, f := range pol.Key {
			if !validKeyField(f) {
				return nil, bad(fmt.Sprintf(".dynamic.key[%d]", i), "unknown field %q: want service, operation, status, kind, root.ATTR or resource.ATTR", f)
			}
		}
		return pol, nil
	case p.And != nil:
		ps, err := sub("and", p.And)
		return AndPolicy(ps), err
	case p.Or != nil:
		ps, err := sub("or", p.Or)
		return OrPolicy(ps), err
	case p.Not != nil:
		q, err := buildPolicy(p.Not, field+".not", depth+1)
		return NotPolicy{q}, err
	default: // drop
		return buildPolicy(p.Drop, field+".drop", depth+1)
	}
}
