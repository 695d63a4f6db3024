package flame_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/srekit/srekit/flame"
)

func ExampleParseFolded() {
	p, err := flame.ParseFolded(strings.NewReader("main;work 3\nmain;idle 1\nmain;work 2\nnot a stack\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println("total:", p.Total(), "skipped:", p.Skipped.Count)
	p.WriteFolded(os.Stdout)
	// Output:
	// total: 6 skipped: 1
	// main;idle 1
	// main;work 5
}

func ExampleDiff() {
	before, _ := flame.ParseFolded(strings.NewReader("main;parse 50\nmain;send 50\n"))
	after, _ := flame.ParseFolded(strings.NewReader("main;parse 150\nmain;send 50\nmain;retry 100\n"))
	d := flame.Diff(before, after)
	d.Normalize() // before scaled to after's total
	d.WriteFolded(os.Stdout)
	// Output:
	// main;parse 150 150
	// main;retry 0 100
	// main;send 150 50
}

func ExampleRender() {
	p, _ := flame.ParseFolded(strings.NewReader("main;work 90\nmain;idle 10\n"))
	var svg strings.Builder
	if err := flame.Render(&svg, p, flame.RenderOptions{Title: "CPU", Colors: "java"}); err != nil {
		panic(err)
	}
	fmt.Println(strings.Contains(svg.String(), "<title>work (90 samples, 90.00%)</title>"))
	// Output: true
}

func ExampleProfile_Trim() {
	p, _ := flame.ParseFolded(strings.NewReader("main;hot 97\nmain;a 1\nmain;b 1\nmain;c 1\n"))
	p.Trim(0.02, 0).WriteFolded(os.Stdout)
	// Output:
	// main;[trimmed] 3
	// main;hot 97
}
