package chart

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestLineChartIsValidSVG(t *testing.T) {
	c := Chart{Title: "t <&>", ID: "c1", Series: []Series{
		{Name: "a", X: []float64{0, 1, 2}, Y: []float64{1, 3, 2}},
		{Name: "b", X: []float64{0, 1, 2}, Y: []float64{2, 2, 2}, Dashed: true},
	}, Refs: []RefLine{{Y: 2.5, Label: "price"}}}
	svg := c.SVG()
	if err := xml.Unmarshal([]byte(svg), new(any)); err != nil {
		t.Fatalf("not well-formed XML: %v", err)
	}
	if strings.Count(svg, `class="series"`) != 2 {
		t.Fatal("want two series polylines")
	}
	if !strings.Contains(svg, `class="ref"`) || !strings.Contains(svg, "price") {
		t.Fatal("reference line missing")
	}
	if !strings.Contains(svg, "t &lt;&amp;&gt;") {
		t.Fatal("title not escaped")
	}
}

func TestBarChart(t *testing.T) {
	c := Chart{Labels: []string{"x", "y"}, Series: []Series{{Name: "s", Y: []float64{1, 4}}}}
	svg := c.BarSVG()
	if err := xml.Unmarshal([]byte(svg), new(any)); err != nil {
		t.Fatalf("not well-formed XML: %v", err)
	}
	if strings.Count(svg, `class="bar"`) != 2 {
		t.Fatal("want two bars")
	}
}

func TestNiceTicks(t *testing.T) {
	got := niceTicks(0, 10, 5)
	want := []float64{0, 2, 4, 6, 8, 10}
	if len(got) != len(want) {
		t.Fatalf("niceTicks(0,10,5) = %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("niceTicks(0,10,5) = %v, want %v", got, want)
		}
	}
}

func TestEmptyChartDoesNotPanic(t *testing.T) {
	_ = Chart{}.SVG()
	_ = Chart{}.BarSVG()
	_ = Chart{Series: []Series{{Name: "nan", X: []float64{0}, Y: []float64{0.0 / 1}}}}.SVG()
}
