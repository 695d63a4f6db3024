package cost

import (
	"fmt"
	"math"
	"sort"
)

// Step is the state of the business after one measure.
type Step struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	Note        string `json:"note,omitempty"`
	Alternative bool   `json:"alternative,omitempty"`

	CapitalPerMonth float64 `json:"capital_per_month"`
	MonthlyPerMonth float64 `json:"monthly_per_month"`
	StaffPerMonth   float64 `json:"staff_per_month"`
	FixedPerMonth   float64 `json:"fixed_per_month"`
	VariablePerUnit float64 `json:"variable_per_unit"`
	Units           float64 `json:"units_per_month"`
	Price           float64 `json:"price"`
	// BreakEven is the price per unit at which the business makes no profit:
	// fixed per month / units + variable per unit.
	BreakEven float64 `json:"break_even"`
	// Profit is per month at the sale price; negative is a loss.
	Profit float64 `json:"profit_per_month"`
	// CostPerUnit is what this step adds to the break-even price over the
	// step it builds on.
	CostPerUnit float64 `json:"cost_per_unit_added"`

	// Availability is the product of the components' availabilities; nil
	// when the scenario gives no failure data up to this step.
	Availability *float64 `json:"availability,omitempty"`
	Nines        float64  `json:"nines,omitempty"`
	AddedNines   float64  `json:"added_nines,omitempty"`
	// CostPerExtraNine is CostPerUnit divided by AddedNines (per unit sold).
	CostPerExtraNine float64 `json:"cost_per_extra_nine,omitempty"`
	// LostRevenue is the expected revenue lost to downtime per month;
	// LostRevenueBefore is the same without this measure.
	LostRevenue       float64 `json:"lost_revenue_per_month,omitempty"`
	LostRevenueBefore float64 `json:"lost_revenue_before_per_month,omitempty"`
	// PaysForItself is set when the step changes availability: true when the
	// revenue it saves from downtime is more than what it costs per month.
	PaysForItself *bool `json:"pays_for_itself,omitempty"`

	Lines       []Line      `json:"lines"`
	Components  []Component `json:"components,omitempty"`
	Assumptions []string    `json:"assumptions,omitempty"`
}

// Line is one item of a step's cost breakdown.
type Line struct {
	Kind     string  `json:"kind"` // capital, monthly, staff, ingredient
	Name     string  `json:"name"`
	Count    int     `json:"count,omitempty"`
	PerMonth float64 `json:"per_month,omitempty"`
	PerUnit  float64 `json:"per_unit,omitempty"`
	Assumed  bool    `json:"assumed,omitempty"`
}

// Result is a scenario run.
type Result struct {
	Scenario string `json:"scenario"`
	Currency string `json:"currency"`
	Steps    []Step `json:"steps"`
}

// state is what the measures have built so far.
type state struct {
	capital     []CapitalItem
	monthly     []MonthlyItem
	staff       []StaffItem
	ingredients []Ingredient
	components  []Component
	units       float64
	price       float64
}

func (st state) clone() state {
	c := st
	c.capital = append([]CapitalItem(nil), st.capital...)
	c.monthly = append([]MonthlyItem(nil), st.monthly...)
	c.staff = append([]StaffItem(nil), st.staff...)
	c.ingredients = append([]Ingredient(nil), st.ingredients...)
	c.components = append([]Component(nil), st.components...)
	return c
}

// Run evaluates the scenario measure by measure.
func Run(s *Scenario) (*Result, error) {
	st := state{units: s.UnitsPerMonth, price: s.Price, ingredients: append([]Ingredient(nil), s.Ingredients...)}
	res := &Result{Scenario: s.Name, Currency: s.Currency}
	var prev *Step
	for i, m := range s.Measures {
		next := st.clone()
		if err := next.apply(m); err != nil {
			return nil, fmt.Errorf("measure %d (%s): %w", i+1, m.Name, err)
		}
		step := next.evaluate(s, m, i)
		if prev != nil {
			compare(&step, prev, s)
		}
		res.Steps = append(res.Steps, step)
		if !m.Alternative {
			st = next
			prev = &res.Steps[len(res.Steps)-1]
		}
	}
	return res, nil
}

func (st *state) apply(m Measure) error {
	for _, name := range m.Remove {
		if !st.remove(name) {
			return fmt.Errorf("remove %q: no such item", name)
		}
	}
	for _, c := range m.Capital {
		st.capital = upsert(st.capital, c, func(x CapitalItem) string { return x.Name })
	}
	for _, c := range m.Monthly {
		st.monthly = upsert(st.monthly, c, func(x MonthlyItem) string { return x.Name })
	}
	for _, c := range m.Staff {
		st.staff = upsert(st.staff, c, func(x StaffItem) string { return x.Name })
	}
	for _, c := range m.Components {
		st.components = upsert(st.components, c, func(x Component) string { return x.Name })
	}
	for _, in := range m.Ingredients {
		found := false
		for j := range st.ingredients {
			if st.ingredients[j].Name != in.Name {
				continue
			}
			found = true
			old := st.ingredients[j]
			// A measure states only what changes; the rest of the recipe line stays.
			if in.Price != 0 {
				old.Price = in.Price
				old.CostPerUnit = nil // recompute from the new price
			}
			if in.PerBatch != 0 {
				old.PerBatch, old.PerUnit, old.CostPerUnit = in.PerBatch, 0, nil
			}
			if in.PerUnit != 0 {
				old.PerUnit, old.PerBatch, old.CostPerUnit = in.PerUnit, 0, nil
			}
			if in.CostPerUnit != nil {
				old.CostPerUnit = in.CostPerUnit
			}
			if in.Per != "" {
				old.Per = in.Per
			}
			st.ingredients[j] = old
		}
		if !found {
			st.ingredients = append(st.ingredients, in)
		}
	}
	// Counts apply in name order so that the result does not depend on map order.
	names := make([]string, 0, len(m.Counts))
	for n := range m.Counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if !st.setCount(name, m.Counts[name]) {
			return fmt.Errorf("counts: no item named %q", name)
		}
	}
	if m.UnitsPerMonth > 0 {
		st.units = m.UnitsPerMonth
	}
	if m.Price > 0 {
		st.price = m.Price
	}
	return nil
}

func upsert[T any](list []T, item T, name func(T) string) []T {
	for i := range list {
		if name(list[i]) == name(item) {
			list[i] = item
			return list
		}
	}
	return append(list, item)
}

func removeNamed[T any](list []T, name string, key func(T) string) ([]T, bool) {
	for i := range list {
		if key(list[i]) == name {
			return append(list[:i], list[i+1:]...), true
		}
	}
	return list, false
}

func (st *state) remove(name string) bool {
	var ok, any bool
	st.capital, ok = removeNamed(st.capital, name, func(x CapitalItem) string { return x.Name })
	any = any || ok
	st.monthly, ok = removeNamed(st.monthly, name, func(x MonthlyItem) string { return x.Name })
	any = any || ok
	st.staff, ok = removeNamed(st.staff, name, func(x StaffItem) string { return x.Name })
	any = any || ok
	st.ingredients, ok = removeNamed(st.ingredients, name, func(x Ingredient) string { return x.Name })
	any = any || ok
	st.components, ok = removeNamed(st.components, name, func(x Component) string { return x.Name })
	return any || ok
}

func (st *state) setCount(name string, n int) bool {
	found := false
	for i := range st.capital {
		if st.capital[i].Name == name {
			st.capital[i].Count, found = n, true
		}
	}
	for i := range st.monthly {
		if st.monthly[i].Name == name {
			st.monthly[i].Count, found = n, true
		}
	}
	for i := range st.staff {
		if st.staff[i].Name == name {
			st.staff[i].Count, found = n, true
		}
	}
	for i := range st.components {
		if st.components[i].Name == name {
			st.components[i].Count, found = n, true
		}
	}
	return found
}

func count(n int) int {
	if n == 0 {
		return 1
	}
	return n
}

// CostPerUnit is the ingredient's cost per unit sold (see Ingredient).
func (in Ingredient) CostPer(p Product) float64 {
	switch {
	case in.CostPerUnit != nil:
		return *in.CostPerUnit
	case in.PerUnit > 0:
		return in.Price * in.PerUnit
	case in.PerBatch > 0 && p.BatchSize > 0:
		return in.Price * in.PerBatch * p.UnitSize / p.BatchSize
	}
	return 0
}

func (st state) evaluate(s *Scenario, m Measure, i int) Step {
	step := Step{Index: i + 1, Name: m.Name, Note: m.Note, Alternative: m.Alternative, Units: st.units, Price: st.price}
	step.Assumptions = append(step.Assumptions, m.Assumptions...)
	for _, c := range st.capital {
		per := c.Price * float64(count(c.Count)) / c.LifetimeMonths
		step.CapitalPerMonth += per
		step.Lines = append(step.Lines, Line{Kind: "capital", Name: c.Name, Count: count(c.Count), PerMonth: per, Assumed: c.Assumed})
	}
	for _, c := range st.monthly {
		per := c.Cost * float64(count(c.Count))
		step.MonthlyPerMonth += per
		step.Lines = append(step.Lines, Line{Kind: "monthly", Name: c.Name, Count: count(c.Count), PerMonth: per, Assumed: c.Assumed})
	}
	for _, c := range st.staff {
		per := c.HoursPerDay * c.Rate * s.DaysPerMonth * float64(count(c.Count))
		step.StaffPerMonth += per
		step.Lines = append(step.Lines, Line{Kind: "staff", Name: c.Name, Count: count(c.Count), PerMonth: per, Assumed: c.Assumed})
	}
	for _, in := range st.ingredients {
		per := in.CostPer(s.Product)
		step.VariablePerUnit += per
		step.Lines = append(step.Lines, Line{Kind: "ingredient", Name: in.Name, PerUnit: per})
	}
	step.FixedPerMonth = step.CapitalPerMonth + step.MonthlyPerMonth + step.StaffPerMonth
	step.BreakEven = step.FixedPerMonth/step.Units + step.VariablePerUnit
	step.Profit = (step.Price-step.VariablePerUnit)*step.Units - step.FixedPerMonth
	if len(st.components) > 0 {
		a := 1.0
		for _, c := range st.components {
			a *= c.Value()
		}
		step.Availability = &a
		step.Nines = Nines(a)
		step.Components = append([]Component(nil), st.components...)
		step.LostRevenue = (1 - a) * hoursPerMonth(s) * revenuePerHour(s, st)
	}
	return step
}

func hoursPerMonth(s *Scenario) float64 { return s.DaysPerMonth * 24 }

func revenuePerHour(s *Scenario, st state) float64 {
	if s.RevenuePerHour > 0 {
		return s.RevenuePerHour
	}
	return st.price * st.units / hoursPerMonth(s)
}

// compare fills in what the step adds over the step it builds on.
func compare(step, prev *Step, s *Scenario) {
	step.CostPerUnit = step.BreakEven - prev.BreakEven
	if step.Availability == nil {
		return
	}
	before := 0.0
	if prev.Availability != nil {
		before = *prev.Availability
		step.LostRevenueBefore = prev.LostRevenue
	} else {
		return // nothing to compare against yet
	}
	if *step.Availability == before {
		return
	}
	step.AddedNines = step.Nines - prev.Nines
	if step.AddedNines > 0 && !math.IsInf(step.AddedNines, 0) {
		step.CostPerExtraNine = step.CostPerUnit / step.AddedNines
	}
	extraCost := step.CostPerUnit * step.Units
	saved := step.LostRevenueBefore - step.LostRevenue
	pays := saved > extraCost
	step.PaysForItself = &pays
}
