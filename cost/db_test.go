package cost_test

import (
	"context"
	"errors"
	"testing"

	"github.com/srekit/srekit/cost"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

func TestScenarioStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		laas, _ := cost.ExampleYAML("laas")
		if err := cost.SaveScenario(ctx, st, "laas", string(laas)); err != nil {
			t.Fatal(err)
		}
		got, err := cost.LoadScenario(ctx, st, "laas")
		if err != nil || got.YAML != string(laas) {
			t.Fatalf("round trip failed: %v", err)
		}
		// A bad scenario is refused and the stored one is left as it was.
		if err := cost.SaveScenario(ctx, st, "laas", "units_per_month: -1\nmeasures: [{name: a}]"); err == nil {
			t.Fatal("bad scenario saved")
		}
		if got, _ := cost.LoadScenario(ctx, st, "laas"); got.YAML != string(laas) {
			t.Fatal("a refused save changed the stored scenario")
		}
		if err := cost.SaveScenario(ctx, st, "small", "units_per_month: 1\nmeasures: [{name: a}]"); err != nil {
			t.Fatal(err)
		}
		names, err := cost.ListScenarios(ctx, st)
		if err != nil || len(names) != 2 || names[0] != "laas" || names[1] != "small" {
			t.Fatalf("ListScenarios = %v, %v", names, err)
		}
		if err := cost.DeleteScenario(ctx, st, "small"); err != nil {
			t.Fatal(err)
		}
		if _, err := cost.LoadScenario(ctx, st, "small"); !errors.Is(err, cost.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if err := cost.SaveScenario(ctx, st, "a/b", "units_per_month: 1\nmeasures: [{name: a}]"); err == nil {
			t.Fatal("name with a slash accepted")
		}
	})
}
