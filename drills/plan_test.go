package drills

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var zones = []string{"Europe/Dublin", "America/New_York", "America/Los_Angeles", "Asia/Kolkata", "Australia/Sydney",
	"Asia/Tokyo", "Europe/Berlin", "America/Sao_Paulo", "Pacific/Auckland", "Africa/Nairobi"}

// simulatedRoster builds 50 people in 5 teams across 10 timezones with varied
// hours and days; every seventh person has not opted in, every eleventh
// person's opt-in ends mid-year.
func simulatedRoster(t *testing.T) *Config {
	t.Helper()
	var b strings.Builder
	b.WriteString(`dry_run: true
seed: 42
rules:
  min_interval_person: 7d
  min_interval_team: 20h
  max_per_month: 2
  target_per_month: 1
  excluded_weekdays: [saturday]
  holidays: ["2027-01-01", "2027-12-24", "2027-12-25", "2027-04-05"]
catalogue:
  - {id: dns, title: DNS resolution fails, weight: 2}
  - {id: disk, title: Disk full on a database primary}
  - {id: ipv6, title: IPv6 path broken, tags: [ipv6, firewall]}
  - {id: cert, title: Certificate expires in 1 hour, severity: critical}
  - {id: db-only, title: Replica lag, team: team-0}
people:
`)
	hours := []string{"09:00-17:00", "08:00-16:30", "10:00-18:00", "07:30-15:30", "12:00-20:00"}
	for i := 0; i < 50; i++ {
		optIn := "2028-01-31"
		switch {
		case i%7 == 3:
			optIn = ""
		case i%11 == 5:
			optIn = "2027-06-30"
		}
		days := ""
		if i%5 == 2 {
			days = "work_days: [sunday, monday, tuesday, wednesday, thursday]\n    "
		}
		fmt.Fprintf(&b, "  - name: person-%02d\n    team: team-%d\n    timezone: %s\n    work_hours: %q\n    %sopt_in_until: %q\n    pager: {kind: webhook, url: http://127.0.0.1:1/hook, secret: s}\n",
			i, i%5, zones[i%len(zones)], hours[i%len(hours)], days, optIn)
	}
	c, err := ParseConfig("roster.yaml", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSimulatedYearKeepsEveryRule plans a year for 50 people and checks, as
// a property over every planned drill, that no rule is broken, that nobody
// without a current opt-in is paged, and that the load is fair.
func TestSimulatedYearKeepsEveryRule(t *testing.T) {
	c := simulatedRoster(t)
	from := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	plan := c.Plan(from, to, nil)
	if len(plan) < 400 {
		t.Fatalf("only %d drills planned for a year of ~40 opted-in people", len(plan))
	}
	pages := make([]Page, len(plan))
	for i, p := range plan {
		pages[i] = p.Page
	}
	perPerson := map[string]int{}
	for i, pl := range plan {
		p, ok := c.Person(pl.Person)
		if !ok {
			t.Fatalf("plan names unknown person %s", pl.Person)
		}
		others := append(append([]Page{}, pages[:i]...), pages[i+1:]...)
		if err := c.Check(p, pl.At, others); err != nil {
			t.Fatalf("planned drill %s at %s breaks a rule: %v", pl.Person, pl.At, err)
		}
		if pl.At.Before(from) || !pl.At.Before(to) {
			t.Fatalf("drill outside the window: %v", pl.At)
		}
		if d, ok := c.Drill(pl.DrillID); !ok || (d.Team != "" && d.Team != p.Team) {
			t.Fatalf("drill %q given to %s of %s", pl.DrillID, p.Name, p.Team)
		}
		perPerson[pl.Person]++
	}
	// Fairness among people opted in all year: each gets close to 12.
	min, max := 1<<30, 0
	for i, p := range c.People {
		n := perPerson[p.Name]
		switch {
		case i%7 == 3:
			if n != 0 {
				t.Fatalf("%s never opted in but has %d drills", p.Name, n)
			}
		case i%11 == 5:
			if n < 4 || n > 7 {
				t.Errorf("%s opted in for half a year and has %d drills", p.Name, n)
			}
		default:
			min, max = mini(min, n), maxi(max, n)
		}
	}
	if min < 10 || max > 14 || max-min > 3 {
		t.Fatalf("unfair load over a year: between %d and %d drills per person (target 12)", min, max)
	}
	// Drills are spread over the catalogue: no drill repeats for a person
	// before the others for their team have run.
	seq := map[string][]string{}
	for _, pl := range plan {
		seq[pl.Person] = append(seq[pl.Person], pl.DrillID)
	}
	for name, ids := range seq {
		p, _ := c.Person(name)
		pool := 4
		if p.Team == "team-0" {
			pool = 5
		}
		for start := 0; start+pool <= len(ids); start += pool {
			seen := map[string]bool{}
			for _, id := range ids[start : start+pool] {
				if seen[id] {
					t.Fatalf("%s repeats drill %s within a cycle: %v", name, id, ids)
				}
				seen[id] = true
			}
		}
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	c := simulatedRoster(t)
	from := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	a := c.Plan(from, from.AddDate(0, 2, 0), nil)
	b := c.Plan(from, from.AddDate(0, 2, 0), nil)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different plans")
	}
	c.Seed = 43
	if fmt.Sprint(a) == fmt.Sprint(c.Plan(from, from.AddDate(0, 2, 0), nil)) {
		t.Fatal("another seed gave the same plan")
	}
}

func TestCheckNamesTheRule(t *testing.T) {
	c := simulatedRoster(t)
	p, _ := c.Person("person-00") // Europe/Dublin 09:00-17:00, team-0
	dublin := p.Location()
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, dublin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		t      time.Time
		others []Page
		rule   string
	}{
		{at("2027-03-03 10:00"), nil, ""},
		{at("2027-03-03 08:59"), nil, "working-hours"},
		{at("2027-03-03 17:00"), nil, "working-hours"},
		{at("2027-03-06 10:00"), nil, "work-day"}, // a Saturday
		{at("2027-03-07 10:00"), nil, "work-day"}, // a Sunday (not a work day for person-00)
		{at("2027-04-05 10:00"), nil, "holiday"},
		{at("2027-03-03 10:00"), []Page{{"person-00", "team-0", at("2027-03-08 10:00")}}, "person-interval"},
		{at("2027-03-03 10:00"), []Page{{"person-05", "team-0", at("2027-03-03 11:00")}}, "team-interval"},
		{at("2027-03-30 10:00"), []Page{{"person-00", "team-0", at("2027-03-01 10:00")}, {"person-00", "team-0", at("2027-03-15 10:00")}}, "monthly-cap"},
		{at("2028-02-01 10:00"), nil, "opt-in"},
	} {
		err := c.Check(p, tc.t, tc.others)
		got := ""
		if re, ok := err.(*RuleError); ok {
			got = re.Rule
		} else if err != nil {
			t.Fatalf("non-rule error %v", err)
		}
		if got != tc.rule {
			t.Errorf("Check at %s = %v, want rule %q", tc.t, err, tc.rule)
		}
	}
}

func mini(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func maxi(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
