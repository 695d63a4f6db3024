package drills

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/srekit/srekit/store"
)

// Stats summarises the drills of one person or team.
type Stats struct {
	Name   string `json:"name"`
	Team   string `json:"team,omitempty"`
	Drills int    `json:"drills"` // paged (or recorded in dry run)
	Acked  int    `json:"acked"`
	// AckP50 and AckP90 are times to acknowledge, in seconds; -1 when none.
	AckP50 float64 `json:"ack_p50_seconds"`
	AckP90 float64 `json:"ack_p90_seconds"`
	// MitigateP50 is the median time to mitigate, in seconds; -1 when none.
	MitigateP50 float64 `json:"mitigate_p50_seconds"`
	// Trend is the median acknowledgement time per month ("2027-03"), oldest first.
	Trend []MonthValue `json:"trend"`
	// LastPage is the last page of any kind (drill or real); DaysSince counts
	// the days from it to the report time, -1 when never paged. A large
	// number is underload: on-call atrophy in the making.
	LastPage  *time.Time `json:"last_page,omitempty"`
	DaysSince int        `json:"days_since_last_page"`
}

// MonthValue is one point of a monthly trend.
type MonthValue struct {
	Month string  `json:"month"`
	Value float64 `json:"value"`
	Count int     `json:"count"`
}

// Report is drills statistics per person and per team, and findings by tag.
type Report struct {
	At          time.Time      `json:"at"`
	People      []Stats        `json:"people"`
	Teams       []Stats        `json:"teams"`
	FindingTags map[string]int `json:"finding_tags"`
	Findings    int            `json:"findings"`
}

// BuildReport computes the report from the store at time now.
func BuildReport(ctx context.Context, st *store.Store, c *Config, now time.Time) (*Report, error) {
	recs, err := Records(ctx, st, time.Time{}, time.Time{}, StatusPaged, StatusDryRun)
	if err != nil {
		return nil, err
	}
	real, err := realPages(ctx, st)
	if err != nil {
		return nil, err
	}
	findings, err := Findings(ctx, st)
	if err != nil {
		return nil, err
	}
	rep := &Report{At: now, FindingTags: map[string]int{}, Findings: len(findings)}
	for _, f := range findings {
		for _, t := range f.Tags {
			rep.FindingTags[t]++
		}
	}
	byPerson := map[string][]Record{}
	byTeam := map[string][]Record{}
	for _, r := range recs {
		byPerson[r.Person] = append(byPerson[r.Person], r)
		byTeam[r.Team] = append(byTeam[r.Team], r)
	}
	teams := map[string]bool{}
	for _, p := range c.People {
		teams[p.Team] = true
		last := lastPage(byPerson[p.Name], real[p.Name])
		rep.People = append(rep.People, stats(p.Name, p.Team, byPerson[p.Name], last, now))
	}
	var teamNames []string
	for t := range teams {
		teamNames = append(teamNames, t)
	}
	sort.Strings(teamNames)
	for _, t := range teamNames {
		var last *time.Time
		for _, p := range c.People {
			if p.Team != t {
				continue
			}
			if l := lastPage(byPerson[p.Name], real[p.Name]); l != nil && (last == nil || l.After(*last)) {
				last = l
			}
		}
		rep.Teams = append(rep.Teams, stats(t, "", byTeam[t], last, now))
	}
	return rep, nil
}

func realPages(ctx context.Context, st *store.Store) (map[string][]time.Time, error) {
	rows, err := st.Query(ctx, "SELECT person, at_ms FROM drills_real_pages")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]time.Time{}
	for rows.Next() {
		var p string
		var at int64
		if err := rows.Scan(&p, &at); err != nil {
			return nil, err
		}
		out[p] = append(out[p], time.UnixMilli(at).UTC())
	}
	return out, rows.Err()
}

func lastPage(drills []Record, real []time.Time) *time.Time {
	var last *time.Time
	for _, r := range drills {
		at := r.At
		if r.PagedAt != nil {
			at = *r.PagedAt
		}
		if last == nil || at.After(*last) {
			last = &at
		}
	}
	for _, t := range real {
		if last == nil || t.After(*last) {
			t := t
			last = &t
		}
	}
	return last
}

func stats(name, team string, recs []Record, last *time.Time, now time.Time) Stats {
	s := Stats{Name: name, Team: team, Drills: len(recs), AckP50: -1, AckP90: -1, MitigateP50: -1, DaysSince: -1, LastPage: last}
	if last != nil {
		s.DaysSince = int(now.Sub(*last).Hours() / 24)
	}
	var acks, mits []float64
	monthly := map[string][]float64{}
	for _, r := range recs {
		start := r.At
		if r.PagedAt != nil {
			start = *r.PagedAt
		}
		if r.AckedAt != nil {
			d := r.AckedAt.Sub(start).Seconds()
			acks = append(acks, d)
			m := start.Format("2006-01")
			monthly[m] = append(monthly[m], d)
		}
		if r.MitigatedAt != nil {
			mits = append(mits, r.MitigatedAt.Sub(start).Seconds())
		}
	}
	s.Acked = len(acks)
	if len(acks) > 0 {
		s.AckP50, s.AckP90 = Quantile(acks, 0.5), Quantile(acks, 0.9)
	}
	if len(mits) > 0 {
		s.MitigateP50 = Quantile(mits, 0.5)
	}
	var months []string
	for m := range monthly {
		months = append(months, m)
	}
	sort.Strings(months)
	for _, m := range months {
		s.Trend = append(s.Trend, MonthValue{Month: m, Value: Quantile(monthly[m], 0.5), Count: len(monthly[m])})
	}
	return s
}

// Quantile returns the q-quantile of xs by linear interpolation between
// closest ranks (the method of numpy's default and Prometheus' histogram-free
// summaries). xs is not modified.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}
