package cost

import (
	"strings"
	"testing"
)

// TestLaaSReproducesTheSeed checks every break-even figure of the talk, to the cent.
func TestLaaSReproducesTheSeed(t *testing.T) {
	s, err := Example("laas")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1.13", "8.33", "5.33", "1.12", "2.08", "2.09", "2.22", "2.43", "2.51", "2.45", "4.98"}
	if len(res.Steps) != len(want) {
		t.Fatalf("%d steps, want %d", len(res.Steps), len(want))
	}
	for i, w := range want {
		if got := Money(res.Steps[i].BreakEven); got != w {
			t.Errorf("step %d %q: break-even %s (exact %.5f), the talk says %s", i+1, res.Steps[i].Name, got, res.Steps[i].BreakEven, w)
		}
	}
	// The talk's other figures: fixed €340.28, variable €0.79, profit €1,369.72 a month.
	first := res.Steps[0]
	if Money(first.FixedPerMonth) != "340.28" || Money(first.VariablePerUnit) != "0.79" || Money(first.Profit) != "1369.72" {
		t.Errorf("first step: fixed %s, variable %s, profit %s; want 340.28, 0.79, 1369.72",
			Money(first.FixedPerMonth), Money(first.VariablePerUnit), Money(first.Profit))
	}
	if Money(res.Steps[1].StaffPerMonth) != "7200.00" {
		t.Errorf("staff per month %s, want 7200.00", Money(res.Steps[1].StaffPerMonth))
	}
	// The mineral-water step is an option not taken: the well step builds on the floods step.
	if !res.Steps[8].Alternative || res.Steps[9].Alternative {
		t.Error("step 9 must be the alternative, step 10 the option taken")
	}
	// Steps with omitted inputs say so.
	for _, i := range []int{6, 9} {
		if len(res.Steps[i].Assumptions) == 0 {
			t.Errorf("step %d %q shows no assumption", i+1, res.Steps[i].Name)
		}
	}
}

func TestLaaSAvailability(t *testing.T) {
	s, _ := Example("laas")
	res, err := Run(s)
	if err != nil {
		t.Fatal(err)
	}
	// n+2: one HAL at 720/(720+48) = 0.9375; three with one needed: 1 - 0.0625^3.
	hal := res.Steps[4]
	var halA float64
	for _, c := range hal.Components {
		if c.Name == "HAL 3000" {
			halA = c.Value()
		}
	}
	if want := 1 - 0.0625*0.0625*0.0625; halA < want-1e-12 || halA > want+1e-12 {
		t.Fatalf("HAL n+2 availability %v, want %v", halA, want)
	}
	if hal.AddedNines <= 0 || hal.PaysForItself == nil {
		t.Fatalf("n+2 step: added nines %v, pays-for-itself %v", hal.AddedNines, hal.PaysForItself)
	}
	if hal.CostPerExtraNine <= 0 {
		t.Fatalf("n+2 step: cost per extra nine %v", hal.CostPerExtraNine)
	}
	// Every step has an availability figure, and it only rises from step 4 on.
	for i := 4; i < len(res.Steps); i++ {
		if res.Steps[i].Availability == nil {
			t.Fatalf("step %d lacks availability", i+1)
		}
	}
}

func TestRunRejectsUnknownNames(t *testing.T) {
	s, err := ParseScenario("x.yaml", strings.NewReader(`
units_per_month: 10
measures:
  - name: a
    remove: [ghost]
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(s); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("Run error = %v, want one naming ghost", err)
	}
}
