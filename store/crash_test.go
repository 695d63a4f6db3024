package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/srekit/srekit/store"
)

// crashWriterEnv makes the test binary act as the writer process that
// TestNoDataLossOnKill kills.
const crashWriterEnv = "SREKIT_CRASH_WRITER_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashWriterEnv); path != "" {
		crashWriter(path)
		return
	}
	os.Exit(m.Run())
}

// crashWriter commits rows as fast as it can, each in a transaction of two
// statements, and prints each key once its commit has returned.
func crashWriter(path string) {
	ctx := context.Background()
	s, err := store.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		key := "k" + strconv.Itoa(i)
		err := s.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO settings (key, value) VALUES (?, ?)", key, "v"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO events (part, kind, detail) VALUES (?, ?, ?)", "crash", "write", key)
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(out, key)
		out.Flush()
	}
}

// TestNoDataLossOnKill kills a writer with SIGKILL in the middle of its writes
// and checks that every commit it acknowledged is there, that no transaction is
// half-applied, and that SQLite's own integrity check passes.
func TestNoDataLossOnKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := []string{}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill it a while after its first acknowledged commit, wherever it
		// is then: starting a process can take long on a loaded machine.
		var deadline <-chan time.Time
		giveUp := time.After(60 * time.Second)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				acked = append(acked, l)
				if deadline == nil {
					deadline = time.After(time.Duration(100+round*70) * time.Millisecond)
				}
			case <-giveUp:
				cmd.Process.Kill()
				t.Fatal("the writer acknowledged no commit within 60 s")
			case <-deadline:
				cmd.Process.Signal(syscall.SIGKILL)
				for l := range lines {
					acked = append(acked, l)
				}
				break read
			}
		}
		cmd.Wait()
		if len(acked) == 0 {
			t.Fatalf("round %d: writer acknowledged no commit before it was killed", round)
		}

		s, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		var check string
		if err := s.DB.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check = %q, %v", check, err)
		}
		for _, key := range acked {
			if _, ok, err := s.Setting(context.Background(), key); err != nil || !ok {
				t.Fatalf("round %d: acknowledged commit %s lost after kill -9 (err %v)", round, key, err)
			}
		}
		var settings, events int
		s.DB.QueryRow("SELECT COUNT(*) FROM settings WHERE key LIKE 'k%'").Scan(&settings)
		s.DB.QueryRow("SELECT COUNT(*) FROM events WHERE part = 'crash'").Scan(&events)
		if settings != events {
			t.Fatalf("round %d: half-applied transaction: %d settings rows, %d events rows", round, settings, events)
		}
		s.Close()
		// The next round continues numbering from scratch, so start a new file.
		path = filepath.Join(t.TempDir(), fmt.Sprintf("crash%d.db", round))
	}
}
