package drills

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Planned is a drill decided ahead: who, when and which drill.
type Planned struct {
	Page
	DrillID string
}

// Plan decides the drills in [from, to) ahead of time, around the drills in
// history (done or already planned), keeping every rule. It is deterministic:
// the same configuration, seed, window and history give the same plan, and
// each person-month is drawn from its own seeded stream, so re-planning a
// window after a restart yields the same drills.
//
// Each opted-in person gets target_per_month drills a month (the fraction
// drawn at random), on random working days at random minutes of their
// working hours, in their own timezone; a slot that would break a rule is
// redrawn a bounded number of times and then given up, never forced.
func (c *Config) Plan(from, to time.Time, history []Planned) []Planned {
	taken := make([]Page, 0, len(history))
	for _, h := range history {
		taken = append(taken, h.Page)
	}
	ran := map[string][]string{} // person -> drill ids, oldest first
	for _, h := range sortedByTime(history) {
		ran[h.Person] = append(ran[h.Person], h.DrillID)
	}
	var out []Planned
	// Walk month by month, people in a per-month shuffled order so that
	// nobody always loses a contested slot. Month M is each person's own
	// local calendar month M; a day either side covers the zones.
	start := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	for m := start; m.Before(to.AddDate(0, 0, 2)); m = m.AddDate(0, 1, 0) {
		order := make([]int, len(c.People))
		for i := range order {
			order[i] = i
		}
		rng := c.stream("order", m.Format("2006-01"))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			p := &c.People[i]
			if p.optIn.IsZero() {
				continue
			}
			for _, pl := range c.planPersonMonth(p, m, from, to, taken, ran[p.Name]) {
				out = append(out, pl)
				taken = append(taken, pl.Page)
				ran[p.Name] = append(ran[p.Name], pl.DrillID)
			}
		}
	}
	return sortedByTime(out)
}

// planPersonMonth plans one person's drills in their local calendar month
// with the year and month of m.
func (c *Config) planPersonMonth(p *Person, m, from, to time.Time, taken []Page, ran []string) []Planned {
	monthStart := time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, p.loc)
	if !monthStart.AddDate(0, 1, 0).After(from) || !monthStart.Before(to) {
		return nil
	}
	monthEnd := monthStart.AddDate(0, 1, 0)
	key := p.Name + "|" + monthStart.Format("2006-01")
	rng := c.stream("person", key)
	// Drill choice has its own stream, so the slot draws stay the same
	// whether or not a slot turns out to be stored already.
	pick := c.stream("choice", key)
	// How many drills this month: the whole part of the target, plus one
	// more with the chance of its fraction. Drawn first, so the count does
	// not depend on the window.
	target := c.Rules.TargetPerMonth
	n := int(math.Floor(target))
	if rng.Float64() < target-math.Floor(target) {
		n++
	}
	// The days of the month a drill may fall on.
	var days []time.Time
	for d := monthStart; d.Before(monthEnd); d = d.AddDate(0, 0, 1) {
		if p.workdays[d.Weekday()] {
			days = append(days, d)
		}
	}
	if len(days) == 0 {
		return nil
	}
	// The drills of this person-month already stored count against n, and
	// the slots are drawn for the whole month whatever the window, so that
	// planning again (a moving window, a restart) finds the same slots and
	// never adds more than n drills to a month.
	var existing []time.Time
	for _, o := range taken {
		if o.Person == p.Name && !o.At.Before(monthStart) && o.At.Before(monthEnd) {
			existing = append(existing, o.At)
		}
	}
	budget := n - len(existing)
	var out []Planned
	for k := 0; k < n && budget > 0; k++ {
		for attempt := 0; attempt < 40; attempt++ {
			d := days[rng.IntN(len(days))]
			// Leave 15 minutes before the end of the day so a drill is not
			// sent as someone leaves.
			span := max(p.end-p.start-15, 1)
			minute := p.start + rng.IntN(span)
			at := time.Date(d.Year(), d.Month(), d.Day(), minute/60, minute%60, 0, 0, p.loc)
			if containsTime(existing, at) {
				break // this slot is already stored
			}
			if at.Before(from) {
				continue // the past cannot be planned: draw again
			}
			if !at.Before(to) {
				break // beyond the window: a later planning round takes it
			}
			if c.Check(p, at, taken) != nil {
				continue // breaks a rule: draw again
			}
			drill := c.choose(p, ran, pick)
			pl := Planned{Page: Page{Person: p.Name, Team: p.Team, At: at.UTC()}, DrillID: drill}
			out = append(out, pl)
			taken = append(taken, pl.Page)
			ran = append(ran, drill)
			budget--
			break
		}
	}
	return out
}

func containsTime(ts []time.Time, t time.Time) bool {
	for _, x := range ts {
		if x.Equal(t) {
			return true
		}
	}
	return false
}

// choose picks a drill for p at random by weight among the drills for p's
// team that p has not run since last running them all.
func (c *Config) choose(p *Person, ran []string, rng *rand.Rand) string {
	var pool []*Drill
	for i := range c.Catalogue {
		if d := &c.Catalogue[i]; d.Team == "" || d.Team == p.Team {
			pool = append(pool, d)
		}
	}
	// Count back through p's history until every drill in the pool has
	// appeared: the drills seen in that stretch are the current cycle.
	inPool := map[string]bool{}
	for _, d := range pool {
		inPool[d.ID] = true
	}
	seen := map[string]bool{}
	for i := len(ran) - 1; i >= 0; i-- {
		if !inPool[ran[i]] {
			continue
		}
		seen[ran[i]] = true
		if len(seen) == len(pool) {
			// a full cycle ended here: only the drills after it count
			seen = map[string]bool{}
			for _, id := range ran[i+1:] {
				if inPool[id] {
					seen[id] = true
				}
			}
			break
		}
	}
	var fresh []*Drill
	total := 0.0
	for _, d := range pool {
		if !seen[d.ID] {
			fresh = append(fresh, d)
			total += d.Weight
		}
	}
	if len(fresh) == 0 {
		fresh, total = pool, 0
		for _, d := range pool {
			total += d.Weight
		}
	}
	x := rng.Float64() * total
	for _, d := range fresh {
		if x < d.Weight {
			return d.ID
		}
		x -= d.Weight
	}
	return fresh[len(fresh)-1].ID
}

// stream returns a random stream derived from the seed and a key, so each
// part of a plan has its own reproducible randomness.
func (c *Config) stream(kind, key string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return rand.New(rand.NewPCG(uint64(c.Seed), h.Sum64()))
}

func sortedByTime(ps []Planned) []Planned {
	out := append([]Planned(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Person < out[j].Person
	})
	return out
}
