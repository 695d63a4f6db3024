// Package storetest gives tests a fresh, migrated store on every engine srekit
// supports, so one test suite proves a part works on SQLite and on PostgreSQL.
//
// PostgreSQL is found through SREKIT_TEST_POSTGRES, an admin URL of a throwaway
// cluster that `make test` starts (scripts/test.sh). Each test gets a database
// of its own, dropped when the test ends. Without that variable the PostgreSQL
// half is skipped with a loud message, except under CI, where it fails: CI must
// never count a skipped engine as a pass.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/srekit/srekit/store"
)

// EnvPostgres names the environment variable holding the admin URL of the test cluster.
const EnvPostgres = "SREKIT_TEST_POSTGRES"

// Each runs fn once per engine, as subtests named "sqlite" and "postgres".
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a fresh store in a file under t.TempDir().
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresURL creates an empty database in the test cluster and returns its
// URL; the database is dropped when the test ends. It skips (or fails under CI)
// when no cluster is configured.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the tests through `make test`, which starts PostgreSQL", EnvPostgres)
		}
		t.Skipf("SKIPPED: PostgreSQL half of this test NOT RUN: %s is not set (run `make test`, which starts a throwaway cluster)", EnvPostgres)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("open admin connection: %v", err)
	}
	defer db.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "srekit_test_" + hex.EncodeToString(b[:])
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres returns a fresh store in a database of its own in the test cluster.
func Postgres(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), PostgresURL(t))
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
