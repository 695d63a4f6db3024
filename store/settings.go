package store

import (
	"context"
	"database/sql"
	"errors"
)

// Setting returns the value stored under key, and false when there is none.
func (s *Store) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.QueryRow(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

// SetSetting stores value under key, replacing any earlier value.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, CURRENT_TIMESTAMP)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value)
	return err
}

// LogEvent appends an entry to the audit log.
func (s *Store) LogEvent(ctx context.Context, part, kind, detail string) error {
	_, err := s.Exec(ctx, "INSERT INTO events (part, kind, detail) VALUES (?, ?, ?)", part, kind, detail)
	return err
}
