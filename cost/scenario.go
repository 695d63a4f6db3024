// Package cost models the cost of availability, as in the "Lemonade as a
// Service" talk: a business sells units at a price; every reliability measure
// adds fixed or variable cost; the break-even price per unit shows what each
// measure really costs, and availability math shows what it buys.
//
// A Scenario is read from YAML (ParseScenario), run step by step (Run), and
// each Step reports fixed cost per month, variable cost per unit, units,
// break-even price, profit at the sale price and, where the scenario gives
// failure data, availability and the revenue it protects.
package cost

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Scenario is a business and the ordered measures taken to keep it available.
type Scenario struct {
	Name     string `yaml:"name"`
	Currency string `yaml:"currency"`
	// DaysPerMonth turns daily staff hours into monthly cost; 30 by default,
	// as in the seed's "24h * €10 per day = €240 (€7200 per month)".
	DaysPerMonth  float64 `yaml:"days_per_month"`
	Price         float64 `yaml:"price"`           // sale price per unit
	UnitsPerMonth float64 `yaml:"units_per_month"` // units sold per month
	Product       Product `yaml:"product"`
	// Ingredients make up the variable cost of one unit.
	Ingredients []Ingredient `yaml:"ingredients"`
	// RevenuePerHour is the revenue earned per hour of uptime, for the
	// expected revenue lost to downtime. When zero it is derived as
	// price x units per month / hours per month.
	RevenuePerHour float64   `yaml:"revenue_per_hour"`
	Measures       []Measure `yaml:"measures"`
	// Source says where the figures come from.
	Source string `yaml:"source"`
}

// Product describes one unit sold and the batch it is made in.
type Product struct {
	Name      string  `yaml:"name"`
	UnitSize  float64 `yaml:"unit_size"`  // e.g. 400 (ml per cup)
	BatchSize float64 `yaml:"batch_size"` // e.g. 2500 (ml per batch of the recipe)
	SizeUnit  string  `yaml:"size_unit"`  // e.g. "ml"
}

// Ingredient is one line of the recipe. Its cost per unit sold is, in order of
// precedence: CostPerUnit when given (the seed's table states per-serving costs
// rounded to the cent, and computes with those), else Price x PerUnit, else
// Price x PerBatch x UnitSize / BatchSize.
type Ingredient struct {
	Name        string   `yaml:"name"`
	Price       float64  `yaml:"price"`         // per purchase unit (kg, l, piece)
	Per         string   `yaml:"per"`           // the purchase unit, for display
	PerBatch    float64  `yaml:"per_batch"`     // quantity per batch
	PerUnit     float64  `yaml:"per_unit"`      // quantity per unit sold (cups: 1)
	CostPerUnit *float64 `yaml:"cost_per_unit"` // stated cost per unit sold
}

// Measure is one step of the story: what was added, changed or removed.
type Measure struct {
	Name string `yaml:"name"`
	Note string `yaml:"note"`
	// Alternative steps are evaluated and shown but not carried forward:
	// the next measure starts from the step before (an option not taken).
	Alternative bool `yaml:"alternative"`
	// Remove drops earlier cost items, ingredients or components by name.
	Remove  []string      `yaml:"remove"`
	Capital []CapitalItem `yaml:"capital"`
	Monthly []MonthlyItem `yaml:"monthly"`
	Staff   []StaffItem   `yaml:"staff"`
	// Counts sets how many of earlier named items there are (3 stands, 3 HALs).
	Counts map[string]int `yaml:"counts"`
	// Ingredients change (or add) recipe lines by name. A changed price
	// without a cost_per_unit recomputes the cost from the recipe.
	Ingredients   []Ingredient `yaml:"ingredients"`
	UnitsPerMonth float64      `yaml:"units_per_month"`
	Price         float64      `yaml:"price"`
	// Components are the things the business needs working, for availability.
	Components []Component `yaml:"components"`
	// Assumptions are stated where the source omits an input; they are shown
	// with the step's results.
	Assumptions []string `yaml:"assumptions"`
}

// CapitalItem is bought once and written off over its lifetime.
type CapitalItem struct {
	Name           string  `yaml:"name"`
	Price          float64 `yaml:"price"`
	LifetimeMonths float64 `yaml:"lifetime_months"`
	Count          int     `yaml:"count"` // 1 when zero
	Assumed        bool    `yaml:"assumed"`
}

// MonthlyItem is a running cost per month.
type MonthlyItem struct {
	Name    string  `yaml:"name"`
	Cost    float64 `yaml:"cost"`
	Count   int     `yaml:"count"`
	Assumed bool    `yaml:"assumed"`
}

// StaffItem is paid by the hour for some hours each day.
type StaffItem struct {
	Name        string  `yaml:"name"`
	HoursPerDay float64 `yaml:"hours_per_day"`
	Rate        float64 `yaml:"rate"`
	Count       int     `yaml:"count"`
	Assumed     bool    `yaml:"assumed"`
}

// Component is something the business needs working. Its availability comes
// from MTBF and MTTR (hours) or is given directly; with Count > 1 units and
// Need of them required, it is k-of-n redundant. All components are in series.
type Component struct {
	Name         string  `yaml:"name"`
	Availability float64 `yaml:"availability"`
	MTBFHours    float64 `yaml:"mtbf_hours"`
	MTTRHours    float64 `yaml:"mttr_hours"`
	Count        int     `yaml:"count"` // units installed; 1 when zero
	Need         int     `yaml:"need"`  // units that must work; 1 when zero
	Assumed      bool    `yaml:"assumed"`
}

// ParseScenario reads a scenario from YAML. name is used in error messages,
// which name the line and the field: "laas.yaml:12: measures[2].capital[0].lifetime_months: must be positive".
func ParseScenario(name string, r io.Reader) (*Scenario, error) {
	s, err := parseScenario(name, r)
	if err != nil {
		// One line per error, whatever the input held.
		return nil, errors.New(strings.ReplaceAll(err.Error(), "\n", `\n`))
	}
	return s, nil
}

func parseScenario(name string, r io.Reader) (*Scenario, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxScenarioBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxScenarioBytes {
		return nil, fmt.Errorf("%s: scenario larger than %d bytes", name, maxScenarioBytes)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", name, cleanYAMLError(err))
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty scenario", name)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %s", name, cleanYAMLError(err))
	}
	if err := s.validate(); err != nil {
		var ve *validationError
		if errors.As(err, &ve) {
			if line := lineOf(root.Content[0], ve.path); line > 0 {
				return nil, fmt.Errorf("%s:%d: %s: %s", name, line, ve.pathString(), ve.msg)
			}
			return nil, fmt.Errorf("%s: %s: %s", name, ve.pathString(), ve.msg)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &s, nil
}

const maxScenarioBytes = 1 << 20

// cleanYAMLError turns "yaml: line 3: field foo not found in type cost.Measure"
// into "line 3: unknown field foo".
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	if i := strings.Index(msg, " not found in type "); i >= 0 {
		// "line 3: field foo not found in type cost.Measure"
		j := strings.Index(msg, "field ")
		if j >= 0 && j < i {
			typ := msg[i+len(" not found in type "):]
			if k := strings.IndexAny(typ, ";"); k >= 0 {
				typ = typ[:k]
			}
			msg = msg[:j] + "unknown field " + msg[j+len("field "):i] + " (in " + strings.TrimPrefix(typ, "cost.") + ")"
		}
	}
	return msg
}

// validationError is a bad value at a path in the document.
type validationError struct {
	path []any // field names (string) and list indexes (int)
	msg  string
}

func (e *validationError) Error() string { return e.pathString() + ": " + e.msg }

func (e *validationError) pathString() string {
	var b strings.Builder
	for _, p := range e.path {
		switch v := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		}
	}
	return b.String()
}

func bad(msg string, path ...any) error { return &validationError{path: path, msg: msg} }

// lineOf finds the line of the node at path, or of the closest ancestor found.
func lineOf(n *yaml.Node, path []any) int {
	line := n.Line
	for _, p := range path {
		switch v := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == v {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || v >= len(n.Content) {
				return line
			}
			n = n.Content[v]
			line = n.Line
		}
	}
	return line
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func (s *Scenario) validate() error {
	if s.DaysPerMonth == 0 {
		s.DaysPerMonth = 30
	}
	if !finite(s.DaysPerMonth) || s.DaysPerMonth < 1 || s.DaysPerMonth > 31 {
		return bad("must be between 1 and 31", "days_per_month")
	}
	if !finite(s.Price) || s.Price < 0 {
		return bad("must be zero or more", "price")
	}
	if !finite(s.UnitsPerMonth) || s.UnitsPerMonth <= 0 {
		return bad("must be positive (the break-even price divides fixed cost by units)", "units_per_month")
	}
	if !finite(s.RevenuePerHour) || s.RevenuePerHour < 0 {
		return bad("must be zero or more", "revenue_per_hour")
	}
	if s.Product.UnitSize < 0 || s.Product.BatchSize < 0 || !finite(s.Product.UnitSize) || !finite(s.Product.BatchSize) {
		return bad("sizes must be zero or more", "product")
	}
	for i := range s.Ingredients {
		if err := s.Ingredients[i].validate(s.Product, "ingredients", i); err != nil {
			return err
		}
	}
	if len(s.Measures) == 0 {
		return bad("a scenario needs at least one measure", "measures")
	}
	for i, m := range s.Measures {
		if err := m.validate(s.Product, i); err != nil {
			return err
		}
	}
	return nil
}

func (in *Ingredient) validate(p Product, list string, i int, prefix ...any) error {
	at := func(field string) []any { return append(append([]any{}, prefix...), list, i, field) }
	if strings.TrimSpace(in.Name) == "" {
		return bad("an ingredient needs a name", at("name")...)
	}
	for field, v := range map[string]float64{"price": in.Price, "per_batch": in.PerBatch, "per_unit": in.PerUnit} {
		if !finite(v) || v < 0 {
			return bad("must be zero or more", at(field)...)
		}
	}
	if in.CostPerUnit != nil && (!finite(*in.CostPerUnit) || *in.CostPerUnit < 0) {
		return bad("must be zero or more", at("cost_per_unit")...)
	}
	if in.PerBatch > 0 && in.PerUnit > 0 {
		return bad("give per_batch or per_unit, not both", at("per_unit")...)
	}
	if in.PerBatch > 0 && (p.UnitSize <= 0 || p.BatchSize <= 0) {
		return bad("per_batch needs product.unit_size and product.batch_size", at("per_batch")...)
	}
	return nil
}

func (m *Measure) validate(p Product, i int) error {
	at := func(rest ...any) []any { return append([]any{"measures", i}, rest...) }
	if strings.TrimSpace(m.Name) == "" {
		return bad("a measure needs a name", at("name")...)
	}
	for j, c := range m.Capital {
		if strings.TrimSpace(c.Name) == "" {
			return bad("needs a name", at("capital", j, "name")...)
		}
		if !finite(c.Price) || c.Price < 0 {
			return bad("must be zero or more", at("capital", j, "price")...)
		}
		if !finite(c.LifetimeMonths) || c.LifetimeMonths <= 0 {
			return bad("must be positive (months over which the price is written off)", at("capital", j, "lifetime_months")...)
		}
		if c.Count < 0 {
			return bad("must be zero or more", at("capital", j, "count")...)
		}
	}
	for j, c := range m.Monthly {
		if strings.TrimSpace(c.Name) == "" {
			return bad("needs a name", at("monthly", j, "name")...)
		}
		if !finite(c.Cost) || c.Cost < 0 {
			return bad("must be zero or more", at("monthly", j, "cost")...)
		}
		if c.Count < 0 {
			return bad("must be zero or more", at("monthly", j, "count")...)
		}
	}
	for j, c := range m.Staff {
		if strings.TrimSpace(c.Name) == "" {
			return bad("needs a name", at("staff", j, "name")...)
		}
		if !finite(c.HoursPerDay) || c.HoursPerDay < 0 {
			return bad("must be zero or more", at("staff", j, "hours_per_day")...)
		}
		if !finite(c.Rate) || c.Rate < 0 {
			return bad("must be zero or more", at("staff", j, "rate")...)
		}
		if c.Count < 0 {
			return bad("must be zero or more", at("staff", j, "count")...)
		}
	}
	for name, n := range m.Counts {
		if n < 0 {
			return bad("must be zero or more", at("counts", name)...)
		}
	}
	for j := range m.Ingredients {
		if err := m.Ingredients[j].validate(p, "ingredients", j, "measures", i); err != nil {
			return err
		}
	}
	if !finite(m.UnitsPerMonth) || m.UnitsPerMonth < 0 {
		return bad("must be positive", at("units_per_month")...)
	}
	if !finite(m.Price) || m.Price < 0 {
		return bad("must be zero or more", at("price")...)
	}
	for j, c := range m.Components {
		if err := c.validate(); err != nil {
			return bad(err.Error(), at("components", j)...)
		}
	}
	return nil
}

func (c Component) validate() error {
	if strings.TrimSpace(c.Name) == "" {
		return errors.New("a component needs a name")
	}
	hasA := c.Availability != 0
	hasMTBF := c.MTBFHours != 0 || c.MTTRHours != 0
	switch {
	case hasA && hasMTBF:
		return errors.New("give availability or mtbf_hours/mttr_hours, not both")
	case !hasA && !hasMTBF:
		return errors.New("needs availability or mtbf_hours and mttr_hours")
	case hasA && (!finite(c.Availability) || c.Availability <= 0 || c.Availability > 1):
		return errors.New("availability must be in (0, 1]")
	case hasMTBF && (!finite(c.MTBFHours) || !finite(c.MTTRHours) || c.MTBFHours <= 0 || c.MTTRHours < 0):
		return errors.New("mtbf_hours must be positive and mttr_hours zero or more")
	}
	n, k := c.units()
	if c.Count < 0 || c.Need < 0 || k > n {
		return fmt.Errorf("need (%d) must be between 1 and count (%d)", k, n)
	}
	return nil
}

func (c Component) units() (n, k int) {
	n, k = c.Count, c.Need
	if n == 0 {
		n = 1
	}
	if k == 0 {
		k = 1
	}
	return n, k
}

// UnitAvailability is the availability of one unit of the component.
func (c Component) UnitAvailability() float64 {
	if c.Availability != 0 {
		return c.Availability
	}
	return c.MTBFHours / (c.MTBFHours + c.MTTRHours)
}

// Value is the component's availability with its redundancy.
func (c Component) Value() float64 {
	n, k := c.units()
	a, err := KofN(k, n, c.UnitAvailability())
	if err != nil {
		return 0
	}
	return a
}

// Money formats an amount to the cent, rounding half away from zero as a
// spreadsheet does.
func Money(x float64) string {
	return strconv.FormatFloat(RoundCents(x), 'f', 2, 64)
}

// RoundCents rounds to the cent, half away from zero. A tiny epsilon absorbs
// binary floating-point error (2.425 stored as 2.42499999...).
func RoundCents(x float64) float64 {
	if x < 0 {
		return -RoundCents(-x)
	}
	return math.Floor(x*100+0.5+1e-9) / 100
}
