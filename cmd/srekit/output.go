package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// outputFormat is the -o flag shared by commands that print records.
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "table|json|csv" }
func (o *outputFormat) Set(s string) error {
	switch s {
	case "table", "json", "csv":
		*o = outputFormat(s)
		return nil
	}
	return fmt.Errorf("want table, json or csv, not %q", s)
}

// table is rows of cells with a header, printed in the chosen format.
type table struct {
	Header []string
	Rows   [][]string
}

func (t table) write(w io.Writer, format outputFormat, jsonValue any) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonValue)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(t.Header)
		cw.WriteAll(t.Rows)
		return cw.Error()
	default:
		return t.writeText(w)
	}
}

// writeText aligns columns: numbers to the right, text to the left.
func (t table) writeText(w io.Writer) error {
	widths := make([]int, len(t.Header))
	numeric := make([]bool, len(t.Header))
	for i, h := range t.Header {
		widths[i] = utf8.RuneCountInString(h)
		numeric[i] = true
	}
	for _, r := range t.Rows {
		for i, c := range r {
			if i >= len(widths) {
				continue
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
			if c != "-" && !looksNumeric(c) {
				numeric[i] = false
			}
		}
	}
	line := func(cells []string) string {
		var b strings.Builder
		for i, c := range cells {
			if i >= len(widths) {
				break
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if numeric[i] {
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	if _, err := fmt.Fprintln(w, line(t.Header)); err != nil {
		return err
	}
	for _, r := range t.Rows {
		if _, err := fmt.Fprintln(w, line(r)); err != nil {
			return err
		}
	}
	return nil
}

func looksNumeric(s string) bool {
	s = strings.TrimSuffix(strings.TrimLeft(s, "+-"), "%")
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' && r != ',' && r != 'e' {
			return false
		}
	}
	return true
}
