package profiling

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Labels describe what a snapshot is a profile of: service, host, env,
// version and any free-form key. The label "service" is the application
// name of Pyroscope's name{labels} syntax.
type Labels map[string]string

// String renders labels as {k="v", ...} in key order.
func (l Labels) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, l[k])
	}
	b.WriteByte('}')
	return b.String()
}

// canonical is the stored form: JSON with sorted keys (encoding/json sorts
// map keys), so equal label sets are equal strings.
func (l Labels) canonical() string {
	if len(l) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(map[string]string(l))
	return string(b)
}

func parseLabelsJSON(s string) (Labels, error) {
	l := Labels{}
	if s == "" {
		return l, nil
	}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return l, nil
}

// Clone returns a copy that can be changed freely.
func (l Labels) Clone() Labels {
	c := make(Labels, len(l))
	for k, v := range l {
		c[k] = v
	}
	return c
}

var labelName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]*$`)

// Validate reports a label name or value srekit will not store.
func (l Labels) Validate() error {
	if len(l) > 64 {
		return fmt.Errorf("%d labels: at most 64", len(l))
	}
	for k, v := range l {
		if !labelName.MatchString(k) {
			return fmt.Errorf("label name %q: want letters, digits, '_', '.', '-'", k)
		}
		if len(v) > 1024 {
			return fmt.Errorf("label %s: value longer than 1024 bytes", k)
		}
	}
	return nil
}

// MatchOp is a label matcher's comparison.
type MatchOp string

const (
	OpEqual    MatchOp = "="
	OpNotEqual MatchOp = "!="
	OpRegex    MatchOp = "=~"
	OpNotRegex MatchOp = "!~"
)

// Matcher is one condition of a Selector, as in PromQL and Pyroscope.
type Matcher struct {
	Name  string
	Op    MatchOp
	Value string
	re    *regexp.Regexp
}

// Matches reports whether labels satisfy the matcher. A missing label is the
// empty string, as in Prometheus.
func (m Matcher) Matches(l Labels) bool {
	v := l[m.Name]
	switch m.Op {
	case OpEqual:
		return v == m.Value
	case OpNotEqual:
		return v != m.Value
	case OpRegex:
		return m.re.MatchString(v)
	case OpNotRegex:
		return !m.re.MatchString(v)
	}
	return false
}

// Selector picks snapshots by labels: `checkout{env="prod", host=~"web-.*"}`.
// The leading name, when present, is the same as service="name".
type Selector []Matcher

// Matches reports whether labels satisfy every matcher.
func (s Selector) Matches(l Labels) bool {
	for _, m := range s {
		if !m.Matches(l) {
			return false
		}
	}
	return true
}

// String renders the selector back in the syntax ParseSelector reads.
func (s Selector) String() string {
	parts := make([]string, len(s))
	for i, m := range s {
		q, _ := json.Marshal(m.Value)
		parts[i] = m.Name + string(m.Op) + string(q)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// ParseSelector reads name{k="v", k!="v", k=~"re", k!~"re"}. Both the name
// and the braces are optional; values may be quoted or bare. The empty
// string selects everything.
func ParseSelector(s string) (Selector, error) {
	name, labels, err := splitName(s)
	if err != nil {
		return nil, err
	}
	var sel Selector
	if name != "" {
		sel = append(sel, Matcher{Name: "service", Op: OpEqual, Value: name})
	}
	ms, err := parseMatchers(labels)
	if err != nil {
		return nil, err
	}
	return append(sel, ms...), nil
}

// ParseName reads Pyroscope's application name syntax, app{k=v,...}, into
// labels (the app name becomes the "service" label). Only equality is allowed.
func ParseName(s string) (Labels, error) {
	sel, err := ParseSelector(s)
	if err != nil {
		return nil, err
	}
	l := Labels{}
	for _, m := range sel {
		if m.Op != OpEqual {
			return nil, fmt.Errorf("name %q: only k=v labels are allowed, not %s", s, m.Op)
		}
		l[m.Name] = m.Value
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("name %q: %w", s, err)
	}
	return l, nil
}

func splitName(s string) (name, labels string, err error) {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, '{')
	if i < 0 {
		if strings.ContainsAny(s, "}=\"") {
			return "", "", fmt.Errorf("selector %q: labels must be inside {...}", s)
		}
		return s, "", nil
	}
	if !strings.HasSuffix(s, "}") {
		return "", "", fmt.Errorf("selector %q: missing closing '}'", s)
	}
	name = strings.TrimSpace(s[:i])
	if strings.ContainsAny(name, "{}=\"") {
		return "", "", fmt.Errorf("selector %q: bad name before '{'", s)
	}
	return name, s[i+1 : len(s)-1], nil
}

func parseMatchers(s string) (Selector, error) {
	var sel Selector
	rest := strings.TrimSpace(s)
	for rest != "" {
		// name
		j := 0
		for j < len(rest) && (rest[j] == '_' || rest[j] == '.' || rest[j] == '-' || rest[j] >= 'a' && rest[j] <= 'z' || rest[j] >= 'A' && rest[j] <= 'Z' || rest[j] >= '0' && rest[j] <= '9') {
			j++
		}
		name := rest[:j]
		if name == "" {
			return nil, fmt.Errorf("labels %q: expected a label name at %q", s, rest)
		}
		rest = strings.TrimLeft(rest[j:], " ")
		var op MatchOp
		switch {
		case strings.HasPrefix(rest, "=~"):
			op = OpRegex
		case strings.HasPrefix(rest, "!~"):
			op = OpNotRegex
		case strings.HasPrefix(rest, "!="):
			op = OpNotEqual
		case strings.HasPrefix(rest, "="):
			op = OpEqual
		default:
			return nil, fmt.Errorf("labels %q: expected =, !=, =~ or !~ after %s", s, name)
		}
		rest = strings.TrimLeft(rest[len(op):], " ")
		var value string
		if strings.HasPrefix(rest, `"`) {
			k := 1
			for k < len(rest) && rest[k] != '"' {
				if rest[k] == '\\' {
					k++
				}
				k++
			}
			if k >= len(rest) {
				return nil, fmt.Errorf("labels %q: unterminated quoted value for %s", s, name)
			}
			var err error
			value, err = unquote(rest[:k+1])
			if err != nil {
				return nil, fmt.Errorf("labels %q: value of %s: %w", s, name, err)
			}
			rest = rest[k+1:]
		} else {
			k := strings.IndexByte(rest, ',')
			if k < 0 {
				k = len(rest)
			}
			value = strings.TrimSpace(rest[:k])
			rest = rest[k:]
		}
		m := Matcher{Name: name, Op: op, Value: value}
		if op == OpRegex || op == OpNotRegex {
			if _, err := regexp.Compile(value); err != nil {
				return nil, fmt.Errorf("labels %q: regex for %s: %w", s, name, err)
			}
			re, err := regexp.Compile("^(?:" + value + ")$")
			if err != nil {
				return nil, fmt.Errorf("labels %q: regex for %s: %w", s, name, err)
			}
			m.re = re
		}
		sel = append(sel, m)
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("labels %q: expected ',' at %q", s, rest)
		}
		rest = strings.TrimLeft(rest[1:], " ")
	}
	return sel, nil
}

func unquote(q string) (string, error) {
	var v string
	if err := json.Unmarshal([]byte(q), &v); err != nil {
		return "", fmt.Errorf("bad quoted string %s", q)
	}
	return v, nil
}
