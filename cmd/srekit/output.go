package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
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
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(t.Header, "\t")+"\t")
		for _, r := range t.Rows {
			fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
		}
		return tw.Flush()
	}
}
