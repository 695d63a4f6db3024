package cost_test

import (
	"fmt"
	"strings"

	"github.com/srekit/srekit/cost"
)

// "n+2" for a job that needs one machine: three machines, one must work.
func ExampleKofN() {
	one, _ := cost.Steady(720*60*60*1e9, 48*60*60*1e9) // fails monthly, back in 48 hours
	three, _ := cost.KofN(1, 3, one)
	fmt.Printf("one machine %.4f, n+2 %.6f (%.1f nines)\n", one, three, cost.Nines(three))
	// Output: one machine 0.9375, n+2 0.999756 (3.6 nines)
}

func ExampleRun() {
	s, err := cost.ParseScenario("shop.yaml", strings.NewReader(`
units_per_month: 1000
price: 2.50
measures:
  - name: open
    monthly: [{name: rent, cost: 300}]
  - name: hire
    staff: [{name: seller, hours_per_day: 8, rate: 10}]
`))
	if err != nil {
		panic(err)
	}
	res, _ := cost.Run(s)
	for _, st := range res.Steps {
		fmt.Printf("%s: break-even %s, profit %s\n", st.Name, cost.Money(st.BreakEven), cost.Money(st.Profit))
	}
	// Output:
	// open: break-even 0.30, profit 2200.00
	// hire: break-even 2.70, profit -200.00
}
