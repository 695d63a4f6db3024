package collapse

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/srekit/srekit/internal/sharedtest"
)

func BenchmarkPerfScript(b *testing.B) {
	f, err := os.Open(filepath.Join(sharedtest.Dir(b, "perf collapse benchmark", "flamegraph"), "example-perf-stacks.txt.gz"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := PerfScript(bytes.NewReader(data), PerfOptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
