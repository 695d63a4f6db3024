package flame

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// frameRE picks out one drawn frame of flamegraph.pl's SVG (and srekit's):
// tooltip, rectangle, fill and label.
var frameRE = regexp.MustCompile(`<title>(.*?)</title><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="([^"]+)"[^>]*/>\s*<text[^>]*>(.*?)</text>`)

func drawnFrames(svg []byte) []string {
	var out []string
	for _, m := range frameRE.FindAllSubmatch(bytes.ReplaceAll(svg, []byte("\n"), nil), -1) {
		parts := make([]string, 0, 7)
		for _, p := range m[1:] {
			parts = append(parts, string(p))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	sort.Strings(out)
	return out
}

// TestAgainstFlamegraphPl draws folded inputs with flamegraph.pl (from
// $FLAMEGRAPH_DIR) and with Render, and requires the same frames: tooltip,
// position, size, colour and label, for several options.
func TestAgainstFlamegraphPl(t *testing.T) {
	dir := os.Getenv("FLAMEGRAPH_DIR")
	if dir == "" {
		t.Skip("SKIPPED: comparison with flamegraph.pl NOT RUN: set FLAMEGRAPH_DIR to a checkout of github.com/brendangregg/FlameGraph")
	}
	res := filepath.Join("..", "..", "shared", "testdata", "flamegraph", "results")
	inputs := []string{"perf-java-stacks-01-collapsed-all.txt", "perf-iperf-stacks-pidtid-01-collapsed-tid.txt", "perf-mirageos-stacks-01-collapsed-default.txt", "perf-js-stacks-01-collapsed-jit.txt"}
	cases := []struct {
		args []string
		o    RenderOptions
	}{
		{nil, RenderOptions{}},
		{[]string{"--inverted"}, RenderOptions{Inverted: true}},
		{[]string{"--hash"}, RenderOptions{Hash: true}},
		{[]string{"--colors", "java"}, RenderOptions{Colors: "java"}},
		{[]string{"--colors", "js", "--width", "800", "--minwidth", "2"}, RenderOptions{Colors: "js", Width: 800, MinWidth: 2}},
	}
	for _, in := range inputs {
		data, err := os.ReadFile(filepath.Join(res, in))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseFolded(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			want, err := exec.Command("perl", append([]string{filepath.Join(dir, "flamegraph.pl")}, append(c.args, filepath.Join(res, in))...)...).Output()
			if err != nil {
				t.Fatalf("flamegraph.pl %v %s: %v", c.args, in, err)
			}
			var got bytes.Buffer
			if err := Render(&got, p, c.o); err != nil {
				t.Fatal(err)
			}
			w, g := drawnFrames(want), drawnFrames(got.Bytes())
			if len(w) == 0 {
				t.Fatalf("%s %v: no frames found in flamegraph.pl's output", in, c.args)
			}
			if strings.Join(w, "\n") != strings.Join(g, "\n") {
				for i := 0; i < len(w) || i < len(g); i++ {
					var a, b string
					if i < len(w) {
						a = w[i]
					}
					if i < len(g) {
						b = g[i]
					}
					if a != b {
						t.Errorf("%s %v: %d frames vs %d; first difference:\nflamegraph.pl: %s\nsrekit:        %s", in, c.args, len(w), len(g), a, b)
						break
					}
				}
			}
		}
	}
}
