package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

func TestSettingsRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, ok, err := s.Setting(ctx, "missing"); err != nil || ok {
			t.Fatalf("Setting(missing) = ok %v, err %v; want not found", ok, err)
		}
		if err := s.SetSetting(ctx, "demo", "v1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSetting(ctx, "demo", "v2"); err != nil {
			t.Fatal(err)
		}
		v, ok, err := s.Setting(ctx, "demo")
		if err != nil || !ok || v != "v2" {
			t.Fatalf("Setting(demo) = %q, %v, %v; want v2", v, ok, err)
		}
	})
}

func TestMigrationsApplied(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		v, err := s.SchemaVersion(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if v < 1 {
			t.Fatalf("schema version %d, want >= 1", v)
		}
	})
}

func TestInTxRollsBackOnError(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := s.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO settings (key, value) VALUES (?, ?)", "k", "v"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx error = %v, want boom", err)
		}
		if _, ok, _ := s.Setting(ctx, "k"); ok {
			t.Fatal("a rolled-back write is visible")
		}
	})
}

func TestInsertIDAndEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		id1, err := s.InsertID(ctx, "INSERT INTO events (part, kind) VALUES (?, ?)", "cost", "a")
		if err != nil {
			t.Fatal(err)
		}
		id2, err := s.InsertID(ctx, "INSERT INTO events (part, kind) VALUES (?, ?)", "cost", "b")
		if err != nil {
			t.Fatal(err)
		}
		if id2 <= id1 {
			t.Fatalf("ids not increasing: %d then %d", id1, id2)
		}
	})
}

func TestUniqueViolationDetected(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.Exec(ctx, "INSERT INTO settings (key, value) VALUES (?, ?)", "u", "1"); err != nil {
			t.Fatal(err)
		}
		_, err := s.Exec(ctx, "INSERT INTO settings (key, value) VALUES (?, ?)", "u", "2")
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert error %v not recognised as unique violation", err)
		}
	})
}

func TestRebind(t *testing.T) {
	pg := &store.Store{Dialect: store.Postgres}
	got := pg.Rebind("SELECT * FROM t WHERE a = ? AND b = '?' AND c = ?")
	want := "SELECT * FROM t WHERE a = $1 AND b = '?' AND c = $2"
	if got != want {
		t.Fatalf("Rebind = %q, want %q", got, want)
	}
	lite := &store.Store{Dialect: store.SQLite}
	if q := "SELECT ?"; lite.Rebind(q) != q {
		t.Fatal("SQLite query was rewritten")
	}
}

// TestConcurrentOpenMigratesOnce opens one new database from several
// goroutines at once, as a server and CLI commands started together do.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := t.TempDir() + "/shared.db"
		concurrentOpen(t, path)
	})
	t.Run("postgres", func(t *testing.T) {
		concurrentOpen(t, storetest.PostgresURL(t))
	})
}

func concurrentOpen(t *testing.T, dsn string) {
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() {
			s, err := store.Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for i := 0; i < 6; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
}

func TestSQLiteDSNs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "a", "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "a", "x.db")); err != nil {
		t.Errorf("sqlite:// URL: %v", err)
	}
	for _, dsn := range []string{"mysql://root@db/srekit", "postgre://srekit@db/srekit", "sqlite://"} {
		t.Chdir(dir)
		if s, err := store.Open(ctx, dsn); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		} else if !strings.Contains(err.Error(), dsn) {
			t.Errorf("Open(%q): %v does not name the dsn", dsn, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("Open(%q) left files in the working directory: %v", dsn, entries)
		}
	}
}
