// Package store is srekit's persistence: one schema, two engines.
//
// SQLite (modernc.org/sqlite, pure Go) is the embedded default so that a single
// binary works on a laptop with no set-up. PostgreSQL (pgx) is the engine for
// several srekit servers sharing state. Both are reached through database/sql,
// and both run the same goose migrations from migrations/, so a query written
// once with '?' placeholders works on either (see Rebind).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect names the SQL engine behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is an open, migrated database. It is safe for concurrent use.
type Store struct {
	DB      *sql.DB
	Dialect Dialect
	// Location is the file path (SQLite) or the URL without password (PostgreSQL),
	// for messages.
	Location string
}

// DefaultPath is where the SQLite database lives when neither --db nor SREKIT_DB
// names one: the per-user data directory, so the CLI and the server find the same
// data wherever they are started from.
func DefaultPath() string {
	if dir := os.Getenv("XDG_DATA_HOME"); dir != "" {
		return filepath.Join(dir, "srekit", "srekit.db")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "srekit", "srekit.db")
	}
	return "srekit.db"
}

// Open opens the database named by dsn and brings its schema up to date.
// A dsn starting with postgres:// or postgresql:// selects PostgreSQL;
// sqlite://PATH or a plain path is a SQLite file (created with its directory
// when missing). Any other scheme is an error, not a file named after it.
// An empty dsn means DefaultPath().
func Open(ctx context.Context, dsn string) (*Store, error) {
	if dsn == "" {
		dsn = DefaultPath()
	}
	var s *Store
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s, err = openPostgres(ctx, dsn)
	} else {
		path, perr := sqlitePath(dsn)
		if perr != nil {
			return nil, perr
		}
		s, err = openSQLite(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.DB.Close()
		return nil, fmt.Errorf("migrate %s: %w", s.Location, err)
	}
	return s, nil
}

// sqlitePath takes the file path out of a SQLite dsn: sqlite:///var/x.db
// is /var/x.db and sqlite://x.db is x.db (relative). A dsn
// with another scheme (mysql://, or postgres misspelt) is refused: taken as
// a path, it would quietly create a directory named after the scheme.
func sqlitePath(dsn string) (string, error) {
	if rest, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		if rest == "" {
			return "", fmt.Errorf("database %q names no file: use sqlite:///absolute/path.db or a path", dsn)
		}
		return rest, nil
	}
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && scheme != "" && !strings.ContainsAny(scheme, `/\.`) {
		return "", fmt.Errorf("database %q: unknown scheme %q; use postgres://..., sqlite://PATH or a SQLite file path", dsn, scheme)
	}
	return dsn, nil
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	// WAL lets readers go on while one writer commits; synchronous=FULL makes a
	// commit durable before it returns, so kill -9 loses nothing committed;
	// busy_timeout makes concurrent writers wait instead of failing at once.
	q := "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", "file:"+path+q)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer at a time is SQLite's model; a single connection also keeps
	// ":memory:" databases whole. Reads are fast enough through it for srekit.
	db.SetMaxOpenConns(1)
	// The first connection applies the pragmas. Turning a new file to WAL
	// while another process does the same can fail with "database is
	// locked" at once, busy_timeout or not: connect under the lock the
	// migrations take.
	if path != ":memory:" {
		unlock, err := lockFile(path + ".migrate-lock")
		if err != nil {
			db.Close()
			return nil, err
		}
		defer unlock()
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &Store{DB: db, Dialect: SQLite, Location: path}, nil
}

func openPostgres(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", redact(url), err)
	}
	return &Store{DB: db, Dialect: Postgres, Location: redact(url)}, nil
}

// redact hides the password of a database URL.
func redact(url string) string {
	at := strings.LastIndex(url, "@")
	scheme := strings.Index(url, "://")
	if at < 0 || scheme < 0 {
		return url
	}
	userinfo := url[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		return url[:scheme+3] + userinfo[:i] + ":xxxxx" + url[at:]
	}
	return url
}

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// Rebind rewrites the '?' placeholders of a query for the store's engine
// ($1, $2, ... on PostgreSQL). Question marks inside single-quoted strings are
// left alone.
func (s *Store) Rebind(query string) string {
	if s.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	inQuote := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Exec runs a statement written with '?' placeholders.
func (s *Store) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.DB.ExecContext(ctx, s.Rebind(query), args...)
}

// Query runs a query written with '?' placeholders.
func (s *Store) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.DB.QueryContext(ctx, s.Rebind(query), args...)
}

// QueryRow runs a single-row query written with '?' placeholders.
func (s *Store) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.DB.QueryRowContext(ctx, s.Rebind(query), args...)
}

// Tx is a transaction with the same '?' helpers as Store.
type Tx struct {
	*sql.Tx
	s *Store
}

// Exec runs a statement written with '?' placeholders inside the transaction.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.s.Rebind(query), args...)
}

// Query runs a query written with '?' placeholders inside the transaction.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.s.Rebind(query), args...)
}

// QueryRow runs a single-row query written with '?' placeholders inside the transaction.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.s.Rebind(query), args...)
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling back
// otherwise, so a failed write leaves the stored data as it was.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(&Tx{Tx: sqlTx, s: s}); err != nil {
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// InsertID runs an INSERT and returns the id of the new row on both engines
// (RETURNING id works on PostgreSQL and on SQLite 3.35+). The query must not
// already end in a RETURNING clause.
func (s *Store) InsertID(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := s.QueryRow(ctx, query+" RETURNING id", args...).Scan(&id)
	return id, err
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either engine, for callers that treat "already there" as success.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}
