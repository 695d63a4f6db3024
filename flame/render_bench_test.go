package flame

import (
	"io"
	"os"
	"testing"
)

// BenchmarkRenderFile draws $FLAME_BENCH_FOLDED (for example 200,000 stacks
// from bench/flame/genstacks); skipped without it.
func BenchmarkRenderFile(b *testing.B) {
	path := os.Getenv("FLAME_BENCH_FOLDED")
	if path == "" {
		b.Skip("set FLAME_BENCH_FOLDED to a folded file")
	}
	for i := 0; i < b.N; i++ {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		p, err := ParseFolded(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if err := Render(io.Discard, p, RenderOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
