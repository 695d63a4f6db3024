// Package drills runs opt-in random on-call paging drills under strict
// rules, after the talk "Managing On-Call Atrophy": teams paged so rarely that
// on-call skills fade get real pages, marked as drills, at random times that
// respect every rule (opt-in, working hours, intervals, monthly caps, open
// incidents, a global pause), with a catalogue of drills, acknowledgement
// timing, findings and reports that make underload visible.
//
// The Config (roster, rules, catalogue) is read from YAML and validated so
// that a rule that can never be satisfied, an unknown timezone or a person
// with no way to be paged is an error before anything is planned or paged.
// Plan decides drills ahead, deterministically under a seed; Check is the one
// place the rules are evaluated, used both when planning and again right
// before a page is sent.
package drills

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a drills configuration file.
type Config struct {
	// DryRun plans and records drills without paging anyone. New
	// configurations start in dry run: it is on unless the file sets it to false.
	DryRun *bool `yaml:"dry_run"`
	// Seed makes plans reproducible; 0 means a seed from the clock.
	Seed      int64     `yaml:"seed"`
	Rules     Rules     `yaml:"rules"`
	People    []Person  `yaml:"people"`
	Catalogue []Drill   `yaml:"catalogue"`
	Incidents Incidents `yaml:"incidents"`
	// PagerDutyWebhookSecret verifies PagerDuty v3 webhooks (X-PagerDuty-Signature)
	// that acknowledge drills.
	PagerDutyWebhookSecret string `yaml:"pagerduty_webhook_secret"`
}

// IsDryRun reports whether pages are only recorded, not sent.
func (c *Config) IsDryRun() bool { return c.DryRun == nil || *c.DryRun }

// Rules are the strict rules of the talk: nobody is paged outside them.
type Rules struct {
	// MinIntervalPerson is the least time between two drills of one person.
	MinIntervalPerson Duration `yaml:"min_interval_person"`
	// MinIntervalTeam is the least time between two drills of one team.
	MinIntervalTeam Duration `yaml:"min_interval_team"`
	// MaxPerMonth caps drills per person per calendar month (in their zone).
	MaxPerMonth int `yaml:"max_per_month"`
	// TargetPerMonth is how many drills a person should get a month; the
	// planner aims for it within the caps. 1 when zero.
	TargetPerMonth float64 `yaml:"target_per_month"`
	// ExcludedWeekdays are never drill days (e.g. [Saturday, Sunday]).
	ExcludedWeekdays []string `yaml:"excluded_weekdays"`
	// Holidays are dates (YYYY-MM-DD) with no drills, in each person's zone.
	Holidays []string `yaml:"holidays"`
	// Paused stops all paging (the global pause switch; also settable in the UI).
	Paused bool `yaml:"paused"`
}

// Person is one member of the roster.
type Person struct {
	Name     string `yaml:"name"`
	Team     string `yaml:"team"`
	Timezone string `yaml:"timezone"` // IANA name, e.g. Europe/Dublin
	// WorkHours is "09:00-17:00" in the person's timezone.
	WorkHours string `yaml:"work_hours"`
	// WorkDays lists the weekdays worked; Monday to Friday when empty.
	WorkDays []string `yaml:"work_days"`
	// OptInUntil is the date (YYYY-MM-DD) the opt-in expires; empty means
	// not opted in. Nobody is paged without a current opt-in.
	OptInUntil string `yaml:"opt_in_until"`
	Pager      Pager  `yaml:"pager"`

	loc        *time.Location
	start, end int // minutes after midnight
	workdays   [7]bool
	optIn      time.Time // end of the opt-in day, in the person's zone
}

// Pager says how to page a person.
type Pager struct {
	Kind string `yaml:"kind"` // pagerduty, alertmanager or webhook
	// RoutingKey is the PagerDuty Events API v2 integration key.
	RoutingKey string `yaml:"routing_key"`
	// URL is the PagerDuty events endpoint (default https://events.pagerduty.com/v2/enqueue),
	// the Alertmanager base URL, or the webhook URL.
	URL string `yaml:"url"`
	// Secret signs webhook bodies (HMAC-SHA256).
	Secret string `yaml:"secret"`
	// Receiver is an extra label for Alertmanager routing.
	Receiver string `yaml:"receiver"`
}

// Drill is one entry of the catalogue.
type Drill struct {
	ID              string   `yaml:"id"`
	Title           string   `yaml:"title"`
	Scenario        string   `yaml:"scenario"`
	Runbook         string   `yaml:"runbook"`
	Severity        string   `yaml:"severity"` // critical, error, warning, info (PagerDuty's)
	ExpectedActions []string `yaml:"expected_actions"`
	Difficulty      int      `yaml:"difficulty"` // 1 (easy) to 5
	Tags            []string `yaml:"tags"`
	Weight          float64  `yaml:"weight"` // relative chance; 1 when zero
	Team            string   `yaml:"team"`   // only for this team when set
}

// Incidents says where to ask whether a real incident is open before paging.
type Incidents struct {
	// AlertmanagerURL: any active, unsilenced alert without drill="true" blocks drills.
	AlertmanagerURL string `yaml:"alertmanager_url"`
	// Matchers narrow which alerts count as incidents (Alertmanager filter syntax, e.g. severity="page").
	Matchers []string `yaml:"matchers"`
	// WebhookURL: a GET that answers {"open": true|false}.
	WebhookURL string `yaml:"webhook_url"`
}

// Duration is a time.Duration written as "72h" or "3d" in YAML.
type Duration time.Duration

// UnmarshalYAML reads "36h", "90m" or "3d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if strings.HasSuffix(s, "d") {
		var days float64
		if _, err := fmt.Sscanf(strings.TrimSuffix(s, "d"), "%g", &days); err != nil || days < 0 {
			return fmt.Errorf("line %d: %q is not a duration (e.g. 3d, 36h, 90m)", n.Line, s)
		}
		*d = Duration(time.Duration(days * float64(24*time.Hour)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 3d, 36h, 90m)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseConfig reads and validates a drills configuration.
func ParseConfig(name string, r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 4<<20+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > 4<<20 {
		return nil, fmt.Errorf("%s: larger than 4 MiB", name)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty configuration", name)
		}
		return nil, oneLine(fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	if err := c.Validate(); err != nil {
		return nil, oneLine(fmt.Errorf("%s: %w", name, err))
	}
	return &c, nil
}

func oneLine(err error) error {
	return errors.New(strings.ReplaceAll(strings.ReplaceAll(err.Error(), "unmarshal errors:\n  ", ""), "\n", " "))
}

// Validate checks the configuration and prepares it for use. It rejects any
// rule that can never be satisfied, so a configuration that validates can page.
func (c *Config) Validate() error {
	r := &c.Rules
	if r.MaxPerMonth < 0 {
		return errors.New("rules.max_per_month: must be zero or more")
	}
	if r.MaxPerMonth == 0 {
		r.MaxPerMonth = 2
	}
	if r.TargetPerMonth < 0 {
		return errors.New("rules.target_per_month: must be zero or more")
	}
	if r.TargetPerMonth == 0 {
		r.TargetPerMonth = 1
	}
	if r.TargetPerMonth > float64(r.MaxPerMonth) {
		return fmt.Errorf("rules.target_per_month %.3g is above rules.max_per_month %d: can never be met", r.TargetPerMonth, r.MaxPerMonth)
	}
	if time.Duration(r.MinIntervalPerson) > 366*24*time.Hour {
		return errors.New("rules.min_interval_person: more than a year: no drill could ever follow another")
	}
	excluded := map[time.Weekday]bool{}
	for _, d := range r.ExcludedWeekdays {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return fmt.Errorf("rules.excluded_weekdays: %q is not a weekday", d)
		}
		excluded[wd] = true
	}
	for _, h := range r.Holidays {
		if _, err := time.Parse("2006-01-02", h); err != nil {
			return fmt.Errorf("rules.holidays: %q is not a date (YYYY-MM-DD)", h)
		}
	}
	if len(c.Catalogue) == 0 {
		return errors.New("catalogue: no drills: add at least one")
	}
	ids := map[string]bool{}
	for i := range c.Catalogue {
		d := &c.Catalogue[i]
		if d.ID == "" || d.Title == "" {
			return fmt.Errorf("catalogue[%d]: a drill needs an id and a title", i)
		}
		if ids[d.ID] {
			return fmt.Errorf("catalogue[%d]: duplicate id %q", i, d.ID)
		}
		ids[d.ID] = true
		if d.Weight < 0 {
			return fmt.Errorf("catalogue[%d] (%s): weight must be zero or more", i, d.ID)
		}
		if d.Weight == 0 {
			d.Weight = 1
		}
		switch d.Severity {
		case "":
			d.Severity = "warning"
		case "critical", "error", "warning", "info":
		default:
			return fmt.Errorf("catalogue[%d] (%s): severity %q: want critical, error, warning or info", i, d.ID, d.Severity)
		}
		if d.Difficulty < 0 || d.Difficulty > 5 {
			return fmt.Errorf("catalogue[%d] (%s): difficulty must be 1 to 5", i, d.ID)
		}
	}
	names := map[string]bool{}
	for i := range c.People {
		p := &c.People[i]
		if err := p.prepare(excluded); err != nil {
			return fmt.Errorf("people[%d] (%s): %w", i, p.Name, err)
		}
		if names[p.Name] {
			return fmt.Errorf("people[%d]: duplicate name %q", i, p.Name)
		}
		names[p.Name] = true
		found := false
		for _, d := range c.Catalogue {
			if d.Team == "" || d.Team == p.Team {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("people[%d] (%s): no drill in the catalogue is for team %q", i, p.Name, p.Team)
		}
	}
	if c.Incidents.AlertmanagerURL != "" && !strings.HasPrefix(c.Incidents.AlertmanagerURL, "http") {
		return fmt.Errorf("incidents.alertmanager_url: %q is not an http(s) URL", c.Incidents.AlertmanagerURL)
	}
	return nil
}

func (p *Person) prepare(excluded map[time.Weekday]bool) error {
	if strings.TrimSpace(p.Name) == "" {
		return errors.New("a person needs a name")
	}
	if p.Team == "" {
		return errors.New("team: missing")
	}
	if p.Timezone == "" {
		return errors.New("timezone: missing (an IANA name such as Europe/Dublin)")
	}
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil {
		return fmt.Errorf("timezone %q: unknown (want an IANA name such as Europe/Dublin)", p.Timezone)
	}
	p.loc = loc
	if p.WorkHours == "" {
		p.WorkHours = "09:00-17:00"
	}
	var h1, m1, h2, m2 int
	if n, err := fmt.Sscanf(p.WorkHours, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); n != 4 || err != nil ||
		h1 < 0 || h1 > 24 || h2 < 0 || h2 > 24 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59 {
		return fmt.Errorf("work_hours %q: want HH:MM-HH:MM", p.WorkHours)
	}
	p.start, p.end = h1*60+m1, h2*60+m2
	if p.end-p.start < 30 {
		return fmt.Errorf("work_hours %q: less than 30 minutes a day: no drill could ever be scheduled", p.WorkHours)
	}
	days := p.WorkDays
	if len(days) == 0 {
		days = []string{"monday", "tuesday", "wednesday", "thursday", "friday"}
	}
	p.workdays = [7]bool{}
	any := false
	for _, d := range days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return fmt.Errorf("work_days: %q is not a weekday", d)
		}
		if !excluded[wd] {
			p.workdays[wd] = true
			any = true
		}
	}
	if !any {
		return errors.New("work_days: every working day is excluded by rules.excluded_weekdays: no drill could ever be scheduled")
	}
	if p.OptInUntil != "" {
		d, err := time.ParseInLocation("2006-01-02", p.OptInUntil, loc)
		if err != nil {
			return fmt.Errorf("opt_in_until %q: want a date YYYY-MM-DD", p.OptInUntil)
		}
		p.optIn = d.Add(24 * time.Hour)
	}
	switch p.Pager.Kind {
	case "pagerduty":
		if p.Pager.RoutingKey == "" {
			return errors.New("pager: pagerduty needs a routing_key")
		}
	case "alertmanager":
		if p.Pager.URL == "" {
			return errors.New("pager: alertmanager needs a url")
		}
	case "webhook":
		if p.Pager.URL == "" || p.Pager.Secret == "" {
			return errors.New("pager: webhook needs a url and a secret (bodies are HMAC-signed)")
		}
	case "":
		return errors.New("pager: no way to page this person (kind pagerduty, alertmanager or webhook)")
	default:
		return fmt.Errorf("pager: kind %q: want pagerduty, alertmanager or webhook", p.Pager.Kind)
	}
	return nil
}

// OptedIn reports whether the person's opt-in covers time t.
func (p *Person) OptedIn(t time.Time) bool {
	return !p.optIn.IsZero() && t.Before(p.optIn)
}

// Location is the person's timezone.
func (p *Person) Location() *time.Location { return p.loc }

// Person returns the roster entry with the given name.
func (c *Config) Person(name string) (*Person, bool) {
	for i := range c.People {
		if c.People[i].Name == name {
			return &c.People[i], true
		}
	}
	return nil, false
}

// Drill returns the catalogue entry with the given id.
func (c *Config) Drill(id string) (*Drill, bool) {
	for i := range c.Catalogue {
		if c.Catalogue[i].ID == id {
			return &c.Catalogue[i], true
		}
	}
	return nil, false
}
