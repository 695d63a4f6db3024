package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/flame/collapse"
)

func init() {
	group := &cobra.Command{
		Use:   "flame",
		Short: "Flame graphs: collapse profiler output, render SVG/HTML, diff two profiles",
		Long: `Flame graphs, after the talk "Flame Graphs: a meeting point between developers
and SRE". A flame graph shows every sampled call stack at once: each box is a
function, its width is the share of samples (time, bytes...) spent in it and
below it, and the boxes above it are what it called.

  collapse  turn perf script, DTrace, jstack, pprof or bpftrace output into
            folded stacks ("a;b;c 12"), byte for byte as FlameGraph's
            stackcollapse-perf.pl does
  render    draw folded stacks (or any input collapse reads) as an
            interactive SVG, or a single offline HTML page
  diff      draw what changed between two profiles: red grew, blue shrank
  merge     add profiles together (hosts, time slices) into one

Colours follow flamegraph.pl: by default warm colours by name; with
--colors java: green Java, yellow C++, orange kernel, aqua inlined, red the rest.`,
	}
	group.AddCommand(flameCollapseCmd(), flameRenderCmd(), flameDiffCmd(), flameMergeCmd())
	root.AddCommand(group)
}

// collapseFlags are the input flags shared by every flame command.
type collapseFlags struct {
	format      string
	pid, tid    bool
	kernel, jit bool
	all, addrs  bool
	eventFilter string
	sampleIndex string
	maxPprof    int64
	strict      bool
	noTname     bool
	tid2        bool
	shortenPkgs bool
}

// register adds the flags; formatFlag names the input format flag ("format"
// for collapse and merge, "input-format" where --format is the output).
func (f *collapseFlags) register(cmd *cobra.Command, formatFlag string) {
	fl := cmd.Flags()
	fl.StringVar(&f.format, formatFlag, "auto", "input format: auto, perf, dtrace, jstack, pprof, bpftrace or folded")
	fl.BoolVar(&f.pid, "pid", false, "perf: append the process ID to process names (java-1234)")
	fl.BoolVar(&f.tid, "tid", false, "perf: append process and thread IDs (java-1234/1240)")
	fl.BoolVar(&f.kernel, "kernel", false, "perf: annotate kernel frames with _[k] (orange in --colors java)")
	fl.BoolVar(&f.jit, "jit", false, "perf: annotate JIT frames (/tmp/perf-PID.map) with _[j]")
	fl.BoolVar(&f.all, "all", false, "perf: all annotations (--kernel --jit)")
	fl.BoolVar(&f.addrs, "addrs", false, "perf: keep raw addresses of unknown symbols")
	fl.StringVar(&f.eventFilter, "event-filter", "", "perf: keep only this event (default: the first event seen)")
	fl.StringVar(&f.sampleIndex, "sample-index", "", "pprof: sample type to use, by index (0, 1...) or name (cpu, alloc_space...); default: the profile's default type")
	fl.Int64Var(&f.maxPprof, "max-pprof-bytes", collapse.DefaultMaxPprofBytes, "pprof: refuse profiles larger than this once decompressed")
	fl.BoolVar(&f.strict, "strict", false, "fail on lines that are not stacks (by default they are skipped and reported)")
	fl.BoolVar(&f.noTname, "no-thread-name", false, "jstack: leave thread names out of stacks")
	fl.BoolVar(&f.tid2, "thread-id", false, "jstack: keep thread number suffixes in thread names")
	fl.BoolVar(&f.shortenPkgs, "shorten-pkgs", false, "jstack: shorten package names (o.a.c.Foo.run)")
}

// read collapses one input (a file name or - for stdin).
func (f *collapseFlags) read(cmd *cobra.Command, name string) (*flame.Profile, error) {
	format, err := collapse.ParseFormat(f.format)
	if err != nil {
		return nil, usageError{err}
	}
	var r io.Reader = cmd.InOrStdin()
	label := "stdin"
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		r, label = file, name
		if st, err := file.Stat(); err == nil && st.Size() > 32<<20 && isatty.IsTerminal(os.Stderr.Fd()) {
			bar := progressbar.NewOptions64(st.Size(), progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription("reading "+name), progressbar.OptionShowBytes(true),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			defer bar.Finish()
			r = io.TeeReader(file, bar)
		}
	}
	idx, stype := -1, ""
	if f.sampleIndex != "" {
		if n, err := strconv.Atoi(f.sampleIndex); err == nil {
			if n < 0 {
				return nil, usagef("--sample-index %d: want 0 or more, or a sample type name", n)
			}
			idx = n
		} else {
			stype = f.sampleIndex
		}
	}
	opts := collapse.Options{
		Perf: collapse.PerfOptions{PID: f.pid, TID: f.tid, Kernel: f.kernel, JIT: f.jit, All: f.all,
			Addrs: f.addrs, EventFilter: f.eventFilter},
		Jstack:        collapse.JstackOptions{NoThreadName: f.noTname, ThreadID: f.tid2, ShortenPackages: f.shortenPkgs},
		SampleIndex:   idx,
		SampleType:    stype,
		MaxPprofBytes: f.maxPprof,
		Strict:        f.strict,
		Warn:          func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), "srekit: "+s) },
	}
	p, _, err := collapse.Collapse(r, format, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	reportSkips(cmd, label, p.Skipped)
	return p, nil
}

// reportSkips tells on stderr which lines were left out.
func reportSkips(cmd *cobra.Command, label string, s flame.Skips) {
	if s.Count == 0 {
		return
	}
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "srekit: %s: skipped %d lines that are not stacks (--strict makes this an error):\n", label, s.Count)
	for _, k := range s.First {
		fmt.Fprintf(w, "  line %d: %s: %q\n", k.Line, k.Reason, k.Text)
	}
	if int64(len(s.First)) < s.Count {
		fmt.Fprintf(w, "  ... and %d more\n", s.Count-int64(len(s.First)))
	}
}

// openOutput opens the -o file, or stdout for "" and "-".
func openOutput(cmd *cobra.Command, name string) (io.Writer, func() error, error) {
	if name == "" || name == "-" {
		bw := bufio.NewWriter(cmd.OutOrStdout())
		return bw, bw.Flush, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriter(f)
	return bw, func() error {
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

func flameCollapseCmd() *cobra.Command {
	var cf collapseFlags
	var out string
	cmd := &cobra.Command{
		Use:   "collapse [FILE|-]",
		Short: "Collapse profiler output into folded stacks (\"a;b;c 12\")",
		Long: `Collapse reads profiler output and prints folded stacks: one line per distinct
stack, frames root first separated by ';', then the count, sorted. For perf
script output it prints what FlameGraph's stackcollapse-perf.pl prints, byte for
byte, with the same options. The format is detected unless --format is given;
gzip-compressed input is read as is. Lines that are not stacks are skipped and
reported on stderr with their line numbers (--strict makes them fatal).`,
		Example: `  perf record -F 99 -a -g -- sleep 30
  perf script | srekit flame collapse > out.folded
  srekit flame collapse --all --pid perf.txt.gz > out.folded
  srekit flame collapse --format pprof --sample-index 1 cpu.pb.gz
  jstack 1234 > dump.txt; srekit flame collapse dump.txt
  dtrace -x ustackframes=100 -n 'profile-997 { @[ustack()] = count(); } tick-60s { exit(0); }' -o out.stacks
  srekit flame collapse out.stacks | srekit flame render - > graph.svg`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := "-"
			if len(args) == 1 {
				in = args[0]
			}
			p, err := cf.read(cmd, in)
			if err != nil {
				return err
			}
			w, done, err := openOutput(cmd, out)
			if err != nil {
				return err
			}
			if err := p.WriteFolded(w); err != nil {
				done()
				return err
			}
			return done()
		},
	}
	cf.register(cmd, "format")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

// renderFlags are flamegraph.pl's options.
type renderFlags struct {
	o        flame.RenderOptions
	minwidth string
	cp       bool
	cpFile   string
	output   string
	out      string
	focus    string
	ignore   string
	maxDepth int
}

func (f *renderFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.o.Title, "title", "", `title text (default "Flame Graph", "Icicle Graph" with --inverted)`)
	fl.StringVar(&f.o.Subtitle, "subtitle", "", "second title line")
	fl.IntVar(&f.o.Width, "width", 1200, "image width in pixels")
	fl.IntVar(&f.o.Height, "height", 16, "frame height in pixels")
	fl.StringVar(&f.minwidth, "minwidth", "0.1", `leave out frames narrower than this: pixels, or a percentage of the total ("0.5%")`)
	fl.StringVar(&f.o.FontType, "fonttype", "Verdana", "font")
	fl.Float64Var(&f.o.FontSize, "fontsize", 12, "font size")
	fl.Float64Var(&f.o.FontWidth, "fontwidth", 0.59, "average character width relative to the font size")
	fl.StringVar(&f.o.CountName, "countname", "", `what the counts are (default "samples", or the profile's unit)`)
	fl.StringVar(&f.o.NameType, "nametype", "Function:", "what the frames are, in the details line")
	fl.StringVar(&f.o.Colors, "colors", "hot", "palette: "+strings.Join(flame.Palettes, ", "))
	fl.StringVar(&f.o.BgColors, "bgcolors", "", "background: yellow, blue, green, grey or #rrggbb (default by palette)")
	fl.BoolVar(&f.o.Hash, "hash", false, "colour by a hash of the name's first characters")
	fl.BoolVar(&f.o.Random, "random", false, "random colours")
	fl.BoolVar(&f.cp, "cp", false, "consistent palette: reuse and extend the colours in --cp-file")
	fl.StringVar(&f.cpFile, "cp-file", "palette.map", "palette file for --cp")
	fl.BoolVar(&f.o.Reverse, "reverse", false, "reverse each stack (leaf first) before merging")
	fl.BoolVar(&f.o.Inverted, "inverted", false, "icicle graph: root at the top")
	fl.BoolVar(&f.o.Flamechart, "flamechart", false, "flame chart: keep the input order (time) instead of sorting and merging")
	fl.BoolVar(&f.o.Negate, "negate", false, "differential: swap the hues (blue grew, red shrank)")
	fl.Float64Var(&f.o.Factor, "factor", 1, "multiply the counts shown in tooltips by this")
	fl.StringVar(&f.o.Notes, "notes", "", "text to embed in an SVG comment")
	fl.Int64Var(&f.o.Total, "total", 0, "draw as if the total count were this (when larger than the profile's)")
	fl.StringVar(&f.o.Search, "search", "", "a regex to search for when the graph opens")
	fl.IntVar(&f.o.MaxNodes, "max-nodes", 0, "draw at most this many frames, leaving out the narrowest (0: no limit)")
	fl.StringVar(&f.focus, "focus", "", "keep only stacks with a frame matching this regex")
	fl.StringVar(&f.ignore, "ignore", "", "drop stacks with a frame matching this regex")
	fl.IntVar(&f.maxDepth, "max-depth", 0, "cut stacks deeper than this many frames (0: no limit)")
	fl.StringVar(&f.output, "format", "svg", "output: svg, or html (graph, function table, sandwich view, search)")
	fl.StringVarP(&f.out, "output", "o", "", "write to this file instead of stdout")
}

// options completes the render options from the flags.
func (f *renderFlags) options() (flame.RenderOptions, error) {
	o := f.o
	mw := strings.TrimSpace(f.minwidth)
	if strings.HasSuffix(mw, "%") {
		o.MinWidthPercent = true
		mw = strings.TrimSuffix(mw, "%")
	}
	v, err := strconv.ParseFloat(mw, 64)
	if err != nil || v < 0 {
		return o, usagef("--minwidth %q: want a number of pixels or a percentage like 0.5%%", f.minwidth)
	}
	o.MinWidth = v
	if !flame.ValidPalette(o.Colors) {
		return o, usagef("--colors %q: want one of %s", o.Colors, strings.Join(flame.Palettes, ", "))
	}
	if f.output != "svg" && f.output != "html" {
		return o, usagef("--format %q: want svg or html (the input format is --input-format)", f.output)
	}
	if f.cp {
		o.Palette = map[string]string{}
		if file, err := os.Open(f.cpFile); err == nil {
			m, err := flame.ReadPalette(file)
			file.Close()
			if err != nil {
				return o, fmt.Errorf("%s: %w", f.cpFile, err)
			}
			o.Palette = m
		} else if !errors.Is(err, os.ErrNotExist) {
			return o, err
		}
	}
	return o, nil
}

// render draws p as the flags say.
func (f *renderFlags) render(cmd *cobra.Command, p *flame.Profile, o flame.RenderOptions) error {
	if f.focus != "" || f.ignore != "" {
		var focus, ignore *regexp.Regexp
		var err error
		if f.focus != "" {
			if focus, err = regexp.Compile(f.focus); err != nil {
				return usagef("--focus: %v", err)
			}
		}
		if f.ignore != "" {
			if ignore, err = regexp.Compile(f.ignore); err != nil {
				return usagef("--ignore: %v", err)
			}
		}
		p = p.Focus(focus, ignore)
	}
	if f.maxDepth < 0 {
		return usagef("--max-depth: want 0 or more")
	}
	if f.maxDepth > 0 {
		p = p.Trim(0, f.maxDepth)
	}
	w, done, err := openOutput(cmd, f.out)
	if err != nil {
		return err
	}
	if f.output == "html" {
		err = flame.RenderHTML(w, p, o)
	} else {
		err = flame.Render(w, p, o)
	}
	if err != nil {
		done()
		return err
	}
	if err := done(); err != nil {
		return err
	}
	if f.cp {
		file, err := os.Create(f.cpFile)
		if err != nil {
			return err
		}
		if err := flame.WritePalette(file, o.Palette); err != nil {
			file.Close()
			return err
		}
		return file.Close()
	}
	return nil
}

func flameRenderCmd() *cobra.Command {
	var cf collapseFlags
	var rf renderFlags
	cmd := &cobra.Command{
		Use:   "render [FILE|-]",
		Short: "Draw folded stacks (or any profile collapse reads) as an interactive SVG or HTML page",
		Long: `Render draws a flame graph with flamegraph.pl's layout, colours and options.
The SVG is self-contained: hover a frame for its count, click to zoom (Reset
Zoom to return), Ctrl-F or "Search" for a regex (matches turn purple and
"Matched: x%" shows their share), Ctrl-I or "ic" to ignore case; the zoom and
search are kept in the URL. --format html writes one offline page with the graph,
a table of functions (self and total) and a sandwich view (callers and callees
of one function).

Big profiles: frames narrower than --minwidth are left out before drawing, and
--max-nodes bounds the frame count; what is left out is drawn as hatched
"trimmed" frames and counted in the footer, never silently lost.

The input may be folded stacks or anything 'collapse' reads (--input-format,
detected by default; the perf, pprof and jstack flags are collapse's).`,
		Example: `  perf script | srekit flame collapse | srekit flame render - > cpu.svg
  srekit flame render --colors java --title "Java CPU" out.folded -o java.svg
  srekit flame render --format html --max-nodes 20000 big.folded -o big.html
  srekit flame render --inverted --minwidth 0.5% --search '^ext4_' out.folded > icicle.svg
  srekit flame render --input-format pprof --sample-index 1 cpu.pb.gz > cpu.svg`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := rf.options()
			if err != nil {
				return err
			}
			in := "-"
			if len(args) == 1 {
				in = args[0]
			}
			var p *flame.Profile
			if o.Flamechart && (cf.format == "folded" || cf.format == "auto") {
				p, err = readOrdered(cmd, in)
			} else {
				p, err = cf.read(cmd, in)
			}
			if err != nil {
				return err
			}
			return rf.render(cmd, p, o)
		},
	}
	cf.register(cmd, "input-format")
	rf.register(cmd)
	return cmd
}

// readOrdered reads folded stacks keeping their order, for flame charts.
func readOrdered(cmd *cobra.Command, name string) (*flame.Profile, error) {
	var r io.Reader = cmd.InOrStdin()
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	p, err := flame.ParseFoldedOrdered(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	reportSkips(cmd, name, p.Skipped)
	return p, nil
}

func flameDiffCmd() *cobra.Command {
	var cf collapseFlags
	var rf renderFlags
	var noNormalize, elided, folded bool
	cmd := &cobra.Command{
		Use:   "diff BEFORE AFTER",
		Short: "Draw a differential flame graph of two profiles (red grew, blue shrank)",
		Long: `Diff compares two profiles stack by stack and draws the AFTER profile coloured
by change: red frames grew, blue shrank, the deeper the colour the bigger the
change (flamegraph.pl's differential flame graphs). Counts are normalised so both
sides have the same total (--no-normalize to compare raw counts). Frames that
only exist in AFTER have a dashed dark red outline and say "new"; --elided draws
the BEFORE profile instead, to show what shrank or disappeared (dashed blue,
"gone"). --folded prints the two-column folded diff (difffolded.pl's format)
instead of a picture. Inputs may be in any format collapse reads.`,
		Example: `  srekit flame diff before.folded after.folded > diff.svg
  srekit flame diff --elided before.folded after.folded > gone.svg
  srekit flame diff --folded before.folded after.folded > diff.folded
  srekit flame diff --input-format pprof old.pb.gz new.pb.gz --format html -o diff.html`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := rf.options()
			if err != nil {
				return err
			}
			o.Elided = elided
			before, err := cf.read(cmd, args[0])
			if err != nil {
				return err
			}
			after, err := cf.read(cmd, args[1])
			if err != nil {
				return err
			}
			d := flame.Diff(before, after)
			if !noNormalize {
				d.Normalize()
			}
			if folded {
				w, done, err := openOutput(cmd, rf.out)
				if err != nil {
					return err
				}
				if err := d.WriteFolded(w); err != nil {
					done()
					return err
				}
				return done()
			}
			return rf.render(cmd, d, o)
		},
	}
	cf.register(cmd, "input-format")
	rf.register(cmd)
	cmd.Flags().BoolVar(&noNormalize, "no-normalize", false, "compare raw counts (by default BEFORE is scaled to AFTER's total)")
	cmd.Flags().BoolVar(&elided, "elided", false, "draw the BEFORE profile: what shrank or disappeared")
	cmd.Flags().BoolVar(&folded, "folded", false, "print the folded diff (stack before after) instead of drawing")
	return cmd
}

func flameMergeCmd() *cobra.Command {
	var cf collapseFlags
	var out string
	cmd := &cobra.Command{
		Use:   "merge FILE...",
		Short: "Merge profiles into one folded profile (counts of identical stacks summed)",
		Example: `  srekit flame merge host1.folded host2.folded host3.folded > fleet.folded
  srekit flame merge --format pprof cpu-*.pb.gz | srekit flame render - > fleet.svg`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ps []*flame.Profile
			for _, a := range args {
				p, err := cf.read(cmd, a)
				if err != nil {
					return err
				}
				ps = append(ps, p)
			}
			w, done, err := openOutput(cmd, out)
			if err != nil {
				return err
			}
			if err := flame.Merge(ps...).WriteFolded(w); err != nil {
				done()
				return err
			}
			return done()
		},
	}
	cf.register(cmd, "format")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	return cmd
}
