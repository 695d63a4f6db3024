package loops

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed examples/*.yaml examples/*.xmile
var exampleFiles embed.FS

// Examples lists the models that ship with srekit, by name.
func Examples() []string {
	entries, _ := fs.ReadDir(exampleFiles, "examples")
	var out []string
	for _, e := range entries {
		n := e.Name()
		out = append(out, strings.TrimSuffix(strings.TrimSuffix(n, ".yaml"), ".xmile"))
	}
	sort.Strings(out)
	return out
}

// ExampleSource returns the text of a shipped model and its file name.
func ExampleSource(name string) (string, []byte, error) {
	for _, ext := range []string{".yaml", ".xmile"} {
		data, err := exampleFiles.ReadFile("examples/" + name + ext)
		if err == nil {
			return name + ext, data, nil
		}
	}
	return "", nil, fmt.Errorf("no example model %q (have %s)", name, strings.Join(Examples(), ", "))
}

// Example parses a shipped model.
func Example(name string) (*Model, error) {
	file, data, err := ExampleSource(name)
	if err != nil {
		return nil, err
	}
	return ParseFile(file, strings.NewReader(string(data)))
}
