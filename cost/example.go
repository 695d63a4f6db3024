package cost

import (
	"bytes"
	_ "embed"
	"fmt"
	"sort"
)

//go:embed laas.yaml
var laasYAML []byte

// examples are the built-in scenarios by name.
var examples = map[string][]byte{"laas": laasYAML}

// ExampleNames lists the built-in scenarios.
func ExampleNames() []string {
	names := make([]string, 0, len(examples))
	for n := range examples {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ExampleYAML returns the YAML of a built-in scenario.
func ExampleYAML(name string) ([]byte, error) {
	b, ok := examples[name]
	if !ok {
		return nil, fmt.Errorf("no built-in scenario %q (have %v)", name, ExampleNames())
	}
	return b, nil
}

// Example parses a built-in scenario.
func Example(name string) (*Scenario, error) {
	b, err := ExampleYAML(name)
	if err != nil {
		return nil, err
	}
	return ParseScenario(name+".yaml", bytes.NewReader(b))
}
