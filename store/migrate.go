package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing/fstest"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds the schema as goose SQL files, one per part of srekit
// (00001_foundation.sql, 00010_cost.sql, ...). Numbers are spaced by part so
// that parts written side by side never collide; goose is told to accept
// out-of-order files for the same reason.
//
//go:embed migrations/*.sql
var migrations embed.FS

// The migration files are written once for both engines. The few words where
// SQLite and PostgreSQL disagree are written as these placeholders and replaced
// per engine before goose sees the files, so the schema stays one schema.
var dialectWords = map[Dialect]map[string]string{
	SQLite: {
		"{{ID}}":        "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{{BLOB}}":      "BLOB",
		"{{TIMESTAMP}}": "TIMESTAMP",
		"{{NOW}}":       "CURRENT_TIMESTAMP",
	},
	Postgres: {
		"{{ID}}":        "BIGSERIAL PRIMARY KEY",
		"{{BLOB}}":      "BYTEA",
		"{{TIMESTAMP}}": "TIMESTAMPTZ",
		"{{NOW}}":       "CURRENT_TIMESTAMP",
	},
}

// migrationFS returns the migration files with the engine's words filled in.
func migrationFS(d Dialect) (fs.FS, error) {
	words := dialectWords[d]
	out := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := fs.ReadFile(migrations, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		text := string(b)
		for k, v := range words {
			text = strings.ReplaceAll(text, k, v)
		}
		if i := strings.Index(text, "{{"); i >= 0 {
			end := min(i+20, len(text))
			return nil, fmt.Errorf("%s: unknown placeholder %q", e.Name(), text[i:end])
		}
		out[e.Name()] = &fstest.MapFile{Data: []byte(text)}
	}
	return out, nil
}

// migrate brings the schema up to date. Several processes may open the same
// database at once (a server and a CLI command, two servers), so migrations
// run under a lock: PostgreSQL's advisory session lock, or on SQLite an
// exclusive flock on a file beside the database.
func (s *Store) migrate(ctx context.Context) error {
	fsys, err := migrationFS(s.Dialect)
	if err != nil {
		return err
	}
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
	gd := goose.DialectSQLite3
	if s.Dialect == Postgres {
		gd = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300)) // retry each second, 5 minutes at most
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	} else if s.Location != ":memory:" {
		unlock, err := lockFile(s.Location + ".migrate-lock")
		if err != nil {
			return err
		}
		defer unlock()
	}
	p, err := goose.NewProvider(gd, s.DB, fsys, opts...)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// lockFile takes an exclusive flock on path, waiting for other holders.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("migration lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// SchemaVersion returns the highest applied migration number.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.QueryRow(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied = ?", true).Scan(&v)
	return v, err
}
