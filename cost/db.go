package cost

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/srekit/srekit/store"
)

// SavedScenario is a scenario file kept in the store under a name.
type SavedScenario struct {
	Name string `json:"name"`
	YAML string `json:"yaml"`
}

// ErrNotFound is returned for a scenario name that is not stored.
var ErrNotFound = errors.New("no such scenario")

var scenarios = store.NamedTexts{Table: "cost_scenarios", Column: "yaml", Kind: "scenario", ErrNotFound: ErrNotFound}

// SaveScenario stores a scenario's YAML under name, replacing an earlier one.
// The YAML is parsed and run first: what cannot be run is never stored.
func SaveScenario(ctx context.Context, st *store.Store, name, yamlText string) error {
	name = strings.TrimSpace(name)
	if err := scenarios.CheckName(name); err != nil {
		return err
	}
	s, err := ParseScenario(name, strings.NewReader(yamlText))
	if err != nil {
		return err
	}
	if _, err := Run(s); err != nil {
		return err
	}
	return scenarios.Save(ctx, st, name, yamlText)
}

// LoadScenario returns the stored YAML of a scenario.
func LoadScenario(ctx context.Context, st *store.Store, name string) (SavedScenario, error) {
	text, err := scenarios.Load(ctx, st, name)
	return SavedScenario{Name: name, YAML: text}, err
}

// ListScenarios returns the names of stored scenarios, oldest first.
func ListScenarios(ctx context.Context, st *store.Store) ([]string, error) {
	return scenarios.List(ctx, st)
}

// DeleteScenario removes a stored scenario.
func DeleteScenario(ctx context.Context, st *store.Store, name string) error {
	return scenarios.Delete(ctx, st, name)
}

// Parse parses a stored scenario.
func (s SavedScenario) Parse() (*Scenario, error) {
	return ParseScenario(s.Name, bytes.NewReader([]byte(s.YAML)))
}
