package loops

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
)

// randomModel is n variables and m distinct random links (no self-loops),
// seeded, with random polarities: the shape of the benchmark.
func randomModel(n, m int, seed int64) *Model {
	rng := rand.New(rand.NewSource(seed))
	mod := &Model{Name: fmt.Sprintf("random %d/%d", n, m)}
	for i := 0; i < n; i++ {
		mod.Variables = append(mod.Variables, &Variable{Name: fmt.Sprintf("v%03d", i)})
	}
	seen := map[[2]int]bool{}
	for len(mod.Links) < m {
		a, b := rng.Intn(n), rng.Intn(n)
		if a == b || seen[[2]int{a, b}] {
			continue
		}
		seen[[2]int{a, b}] = true
		p := Positive
		if rng.Intn(3) == 0 {
			p = Negative
		}
		mod.Links = append(mod.Links, &Link{From: mod.Variables[a].Name, To: mod.Variables[b].Name, Polarity: p})
	}
	if err := mod.Build(); err != nil {
		panic(err)
	}
	return mod
}

// BenchmarkAnalyze200x1000 is the target: the first 10,000 loops of
// a 200-variable, 1,000-link model (< 1 s).
func BenchmarkAnalyze200x1000(b *testing.B) {
	m := randomModel(200, 1000, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := Analyze(context.Background(), m, 10000)
		if err != nil || len(a.Loops) != 10000 || !a.Truncated {
			b.Fatalf("%v %d", err, len(a.Loops))
		}
	}
}

func BenchmarkSimulateReplicaChecker(b *testing.B) {
	m, _ := Example("replica-checker")
	a, _ := Analyze(context.Background(), m, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Simulate(context.Background(), m, SimOptions{Analysis: a}); err != nil {
			b.Fatal(err)
		}
	}
}
