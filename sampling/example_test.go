package sampling_test

import (
	"fmt"

	"github.com/srekit/srekit/sampling"
)

func ExampleProbabilityThreshold() {
	th := sampling.ProbabilityThreshold(0.25)
	fmt.Println(th, th.AdjustedCount())
	fmt.Println(sampling.WithThreshold("vendor=x", th, 0, false))
	// Output:
	// c 4
	// ot=th:c,vendor=x
}

func ExampleParseConfig() {
	_, err := sampling.ParseConfig([]byte(`
policies:
  - name: slow
    latency: {quantile: 99}
`))
	fmt.Println(err)
	// Output:
	// config: policies[0] (slow).latency.quantile: must be between 0 and 1 (exclusive), got 99
}
