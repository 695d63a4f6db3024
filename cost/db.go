package cost

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// SaveScenario stores a scenario's YAML under name, replacing an earlier one.
// The YAML is parsed and run first: what cannot be run is never stored.
func SaveScenario(ctx context.Context, st *store.Store, name, yamlText string) error {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 || strings.ContainsAny(name, "/\n\r") {
		return fmt.Errorf("scenario name %q: want 1 to 200 characters, no slash or newline", name)
	}
	s, err := ParseScenario(name, strings.NewReader(yamlText))
	if err != nil {
		return err
	}
	if _, err := Run(s); err != nil {
		return err
	}
	_, err = st.Exec(ctx, `INSERT INTO cost_scenarios (name, yaml) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET yaml = excluded.yaml, updated_at = CURRENT_TIMESTAMP`, name, yamlText)
	return err
}

// LoadScenario returns the stored YAML of a scenario.
func LoadScenario(ctx context.Context, st *store.Store, name string) (SavedScenario, error) {
	var s SavedScenario
	err := st.QueryRow(ctx, "SELECT name, yaml FROM cost_scenarios WHERE name = ?", name).Scan(&s.Name, &s.YAML)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return s, err
}

// ListScenarios returns the names of stored scenarios, oldest first.
func ListScenarios(ctx context.Context, st *store.Store) ([]string, error) {
	rows, err := st.Query(ctx, "SELECT name FROM cost_scenarios ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// DeleteScenario removes a stored scenario.
func DeleteScenario(ctx context.Context, st *store.Store, name string) error {
	res, err := st.Exec(ctx, "DELETE FROM cost_scenarios WHERE name = ?", name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return nil
}

// Parse parses a stored scenario.
func (s SavedScenario) Parse() (*Scenario, error) {
	return ParseScenario(s.Name, bytes.NewReader([]byte(s.YAML)))
}
