package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// NamedTexts is a table of files a user wrote (cost scenarios, loop models)
// kept by name exactly as written, so they round-trip byte for byte and are
// parsed on every read. The table has the columns id, name (unique), the
// text column, created_at and updated_at. Table and Column are fixed by the
// code, never taken from input.
type NamedTexts struct {
	Table, Column string
	// Kind names the files in messages ("scenario", "model").
	Kind string
	// ErrNotFound is wrapped by errors about a name that is not stored.
	ErrNotFound error
}

// CheckName rejects names that would not work in a URL path or a listing.
func (n NamedTexts) CheckName(name string) error {
	if strings.TrimSpace(name) != name || name == "" || len(name) > 200 || strings.ContainsAny(name, "/\n\r") {
		return fmt.Errorf("%s name %q: want 1 to 200 characters, no slash, newline or surrounding space", n.Kind, name)
	}
	return nil
}

// Save stores text under name, replacing an earlier one. Callers validate
// the text first: what does not parse must never be stored.
func (n NamedTexts) Save(ctx context.Context, st *Store, name, text string) error {
	if err := n.CheckName(name); err != nil {
		return err
	}
	_, err := st.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s (name, %[2]s) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET %[2]s = excluded.%[2]s, updated_at = CURRENT_TIMESTAMP`, n.Table, n.Column), name, text)
	return err
}

// Load returns the text stored under name.
func (n NamedTexts) Load(ctx context.Context, st *Store, name string) (string, error) {
	var text string
	err := st.QueryRow(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE name = ?", n.Column, n.Table), name).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: %q", n.ErrNotFound, name)
	}
	return text, err
}

// List returns the stored names, oldest first.
func (n NamedTexts) List(ctx context.Context, st *Store) ([]string, error) {
	rows, err := st.Query(ctx, fmt.Sprintf("SELECT name FROM %s ORDER BY id", n.Table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, rows.Err()
}

// Delete removes the text stored under name.
func (n NamedTexts) Delete(ctx context.Context, st *Store, name string) error {
	res, err := st.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE name = ?", n.Table), name)
	if err != nil {
		return err
	}
	if rows, _ := res.RowsAffected(); rows == 0 {
		return fmt.Errorf("%w: %q", n.ErrNotFound, name)
	}
	return nil
}
