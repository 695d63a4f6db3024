package drills

import (
	"fmt"
	"time"
)

// Page is a drill as the rules see it: who, which team, when.
type Page struct {
	Person string
	Team   string
	At     time.Time
}

// RuleError names the rule a drill would break.
type RuleError struct {
	Rule   string // opt-in, working-hours, work-day, holiday, person-interval, team-interval, monthly-cap
	Detail string
}

func (e *RuleError) Error() string { return e.Rule + ": " + e.Detail }

// Check reports whether a drill for p at t keeps every rule, given the other
// drills (done or planned). It is the one place the rules live: the planner
// asks it when planning, the runner asks it again right before paging.
func (c *Config) Check(p *Person, t time.Time, others []Page) error {
	if !p.OptedIn(t) {
		if p.optIn.IsZero() {
			return &RuleError{"opt-in", p.Name + " has not opted in"}
		}
		return &RuleError{"opt-in", fmt.Sprintf("%s's opt-in ended %s", p.Name, p.OptInUntil)}
	}
	local := t.In(p.loc)
	if !p.workdays[local.Weekday()] {
		return &RuleError{"work-day", fmt.Sprintf("%s is not a drill day for %s", local.Weekday(), p.Name)}
	}
	minute := local.Hour()*60 + local.Minute()
	if minute < p.start || minute >= p.end {
		return &RuleError{"working-hours", fmt.Sprintf("%s is outside %s's working hours %s (%s)", local.Format("15:04"), p.Name, p.WorkHours, p.Timezone)}
	}
	day := local.Format("2006-01-02")
	for _, h := range c.Rules.Holidays {
		if h == day {
			return &RuleError{"holiday", day + " is a holiday"}
		}
	}
	month := 0
	for _, o := range others {
		gap := t.Sub(o.At)
		if gap < 0 {
			gap = -gap
		}
		if o.Person == p.Name {
			if gap < time.Duration(c.Rules.MinIntervalPerson) {
				return &RuleError{"person-interval", fmt.Sprintf("%s has a drill at %s, within %v", p.Name, o.At.UTC().Format(time.RFC3339), time.Duration(c.Rules.MinIntervalPerson))}
			}
			ol := o.At.In(p.loc)
			if ol.Year() == local.Year() && ol.Month() == local.Month() {
				month++
			}
		}
		if o.Team == p.Team && o.Person != p.Name && gap < time.Duration(c.Rules.MinIntervalTeam) {
			return &RuleError{"team-interval", fmt.Sprintf("team %s has a drill at %s, within %v", p.Team, o.At.UTC().Format(time.RFC3339), time.Duration(c.Rules.MinIntervalTeam))}
		}
	}
	if month >= c.Rules.MaxPerMonth {
		return &RuleError{"monthly-cap", fmt.Sprintf("%s already has %d drills in %s", p.Name, month, local.Format("2006-01"))}
	}
	return nil
}
