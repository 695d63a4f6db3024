package loops

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/srekit/srekit/store"
)

// ErrNoModel is returned for a model name that is not stored.
var ErrNoModel = errors.New("no such model")

// SavedModel is a model file kept in the store under a name.
type SavedModel struct {
	Name   string `json:"name"`
	Source string `json:"source"`
}

// SaveModel stores a model file under name, replacing an earlier one. The
// file is parsed first: what does not parse is never stored.
func SaveModel(ctx context.Context, st *store.Store, name, source string) error {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 || strings.ContainsAny(name, "/\n\r") {
		return fmt.Errorf("model name %q: want 1 to 200 characters, no slash or newline", name)
	}
	if _, err := ParseFile(name, strings.NewReader(source)); err != nil {
		return err
	}
	_, err := st.Exec(ctx, `INSERT INTO loops_models (name, source) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET source = excluded.source, updated_at = CURRENT_TIMESTAMP`, name, source)
	return err
}

// LoadModel returns a stored model file.
func LoadModel(ctx context.Context, st *store.Store, name string) (SavedModel, error) {
	var m SavedModel
	err := st.QueryRow(ctx, "SELECT name, source FROM loops_models WHERE name = ?", name).Scan(&m.Name, &m.Source)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: %q", ErrNoModel, name)
	}
	return m, err
}

// ListModels returns the names of stored models, oldest first.
func ListModels(ctx context.Context, st *store.Store) ([]string, error) {
	rows, err := st.Query(ctx, "SELECT name FROM loops_models ORDER BY id")
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

// DeleteModel removes a stored model.
func DeleteModel(ctx context.Context, st *store.Store, name string) error {
	res, err := st.Exec(ctx, "DELETE FROM loops_models WHERE name = ?", name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", ErrNoModel, name)
	}
	return nil
}
