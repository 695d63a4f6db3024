// Package sharedtest finds the test data taken from public projects, which
// sits in ../shared/testdata beside the repository (each folder there names
// its provenance; in CI a copy of shared/ sits beside the clone). The data is
// read from there, never copied into the repository. Without it a test fails
// under CI (CI set) and is skipped loudly elsewhere, so a missing copy is never
// counted as a pass.
package sharedtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns ../shared/testdata/elem... beside the repository root. what
// names the test for the skip message.
func Dir(t testing.TB, what string, elem ...string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod) not found")
		}
		dir = parent
	}
	p := filepath.Join(append([]string{dir, "..", "shared", "testdata"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		missing(t, what, err)
	}
	return p
}

// Read returns the contents of ../shared/testdata/elem..., gunzipped when
// the file is gzip data.
func Read(t testing.TB, what string, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(Dir(t, what, elem...))
	if err != nil {
		missing(t, what, err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = io.ReadAll(zr); err != nil {
		t.Fatal(err)
	}
	return b
}

func missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("shared test data missing: %v", err)
	}
	t.Skipf("SKIPPED: %s NOT RUN: shared test data missing: %v", what, err)
}
