package cost

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseScenarioErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown top field", "units_per_month: 1\nmeasures: [{name: a}]\ncolour: red\n", "s.yaml: line 3: unknown field colour"},
		{"unknown nested field", "units_per_month: 1\nmeasures:\n  - name: a\n    capital:\n      - {name: x, price: 1, lifetime_months: 2, colour: red}\n", "line 5: unknown field colour"},
		{"zero lifetime", "units_per_month: 1\nmeasures:\n  - name: a\n    capital:\n      - name: x\n        price: 1\n        lifetime_months: 0\n", "s.yaml:7: measures[0].capital[0].lifetime_months: must be positive"},
		{"negative price", "units_per_month: 1\nprice: -2\nmeasures: [{name: a}]\n", "s.yaml:2: price: must be zero or more"},
		{"no units", "measures: [{name: a}]\n", "units_per_month: must be positive"},
		{"no measures", "units_per_month: 5\n", "measures: a scenario needs at least one measure"},
		{"bad type", "units_per_month: lots\nmeasures: [{name: a}]\n", "line 1: cannot unmarshal"},
		{"empty", "", "empty scenario"},
		{"syntax", "units_per_month: [1\n", "s.yaml: "},
		{"availability out of range", "units_per_month: 1\nmeasures:\n  - name: a\n    components:\n      - {name: c, availability: 1.5}\n", "s.yaml:5: measures[0].components[0]: availability must be in (0, 1]"},
		{"need more than count", "units_per_month: 1\nmeasures:\n  - name: a\n    components:\n      - {name: c, availability: 0.9, count: 2, need: 3}\n", "need (3) must be between 1 and count (2)"},
		{"both availability and mtbf", "units_per_month: 1\nmeasures:\n  - name: a\n    components:\n      - {name: c, availability: 0.9, mtbf_hours: 3}\n", "not both"},
		{"per_batch without sizes", "units_per_month: 1\ningredients:\n  - {name: l, price: 1, per_batch: 1}\nmeasures: [{name: a}]\n", "s.yaml:3: ingredients[0].per_batch: per_batch needs product.unit_size"},
		{"negative count", "units_per_month: 1\nmeasures:\n  - name: a\n    counts: {x: -1}\n", "measures[0].counts.x: must be zero or more"},
		{"nameless measure", "units_per_month: 1\nmeasures:\n  - note: hi\n", "measures[0].name: a measure needs a name"},
		{"days per month", "units_per_month: 1\ndays_per_month: 40\nmeasures: [{name: a}]\n", "s.yaml:2: days_per_month"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario("s.yaml", strings.NewReader(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestParseScenarioTooLarge(t *testing.T) {
	big := bytes.Repeat([]byte("#"), maxScenarioBytes+10)
	if _, err := ParseScenario("big.yaml", bytes.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error = %v", err)
	}
}

func TestMoney(t *testing.T) {
	for in, want := range map[float64]string{1.13028: "1.13", 2.425: "2.43", 8.3302: "8.33", -1.005: "-1.01", 0: "0.00"} {
		if got := Money(in); got != want {
			t.Errorf("Money(%v) = %s, want %s", in, got, want)
		}
	}
}

// FuzzParseScenario checks that no input makes the parser or the run panic.
func FuzzParseScenario(f *testing.F) {
	f.Add(string(laasYAML))
	f.Add("units_per_month: 1\nmeasures: [{name: a, counts: {x: 1}}]\n")
	f.Add("units_per_month: 1\nmeasures:\n  - name: a\n    components: [{name: c, mtbf_hours: 1, mttr_hours: 1, count: 3, need: 2}]\n")
	f.Add("&a [*a]")
	f.Add("units_per_month: 1e400\nmeasures: [{name: a}]")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseScenario("fuzz.yaml", strings.NewReader(in))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		res, err := Run(s)
		if err == nil && len(res.Steps) != len(s.Measures) {
			t.Fatalf("%d steps for %d measures", len(res.Steps), len(s.Measures))
		}
	})
}
