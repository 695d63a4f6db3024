package profiling

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

func folded(t testing.TB, s string) *flame.Profile {
	t.Helper()
	p, err := flame.ParseFolded(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func foldedText(t testing.TB, p *flame.Profile) string {
	t.Helper()
	var b strings.Builder
	if err := p.WriteFolded(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func TestStoreSnapshots(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		db := &DB{S: st}
		save := func(kind string, l Labels, start time.Time, text string) (int64, bool) {
			t.Helper()
			id, dup, err := db.Save(ctx, &Snapshot{Kind: kind, Unit: "samples", Labels: l, Start: start, End: start.Add(10 * time.Second), Source: "test", Profile: folded(t, text)})
			if err != nil {
				t.Fatal(err)
			}
			return id, dup
		}
		a, dup := save("cpu", Labels{"service": "checkout", "host": "web-1"}, t0, "main;serve;json.Marshal 30\nmain;serve;db.Query 10\n")
		if dup {
			t.Fatal("first save reported a duplicate")
		}
		// Same content, same labels and range: deduplicated.
		a2, dup := save("cpu", Labels{"host": "web-1", "service": "checkout"}, t0, "main;serve;db.Query 10\nmain;serve;json.Marshal 30\n")
		if !dup || a2 != a {
			t.Fatalf("identical upload: got id %d dup %v, want %d true", a2, dup, a)
		}
		// Same content at another time: a new snapshot sharing the blob.
		b, _ := save("cpu", Labels{"service": "checkout", "host": "web-2"}, t0.Add(time.Minute), "main;serve;json.Marshal 30\nmain;serve;db.Query 10\n")
		c, _ := save("cpu", Labels{"service": "search", "host": "web-2"}, t0.Add(2*time.Minute), "main;index;regexp.Match 50\nmain;index;json.Marshal 50\n")
		save("alloc_space", Labels{"service": "search", "host": "web-2"}, t0.Add(2*time.Minute), "main;index;make 4096\n")

		stats, err := db.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Snapshots != 4 || stats.Blobs != 3 {
			t.Fatalf("stats = %+v, want 4 snapshots over 3 distinct profiles", stats)
		}

		sel, _ := ParseSelector(`checkout{host=~"web-.*"}`)
		got, err := db.List(ctx, Query{Selector: sel, Kind: "cpu"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != b || got[1].ID != a {
			t.Fatalf("list checkout = %+v, want [%d %d]", got, b, a)
		}
		got, _ = db.List(ctx, Query{From: t0.Add(90 * time.Second), Kind: "cpu"})
		if len(got) != 1 || got[0].ID != c {
			t.Fatalf("list from t0+90s = %+v, want [%d]", got, c)
		}

		m, err := db.Merge(ctx, Query{Kind: "cpu"})
		if err != nil {
			t.Fatal(err)
		}
		want := "main;index;json.Marshal 50\nmain;index;regexp.Match 50\nmain;serve;db.Query 20\nmain;serve;json.Marshal 60\n"
		if g := foldedText(t, m.Profile); g != want {
			t.Fatalf("merge =\n%s\nwant\n%s", g, want)
		}
		if m.Snapshots != 3 || m.Blobs != 2 || m.Total != 180 {
			t.Fatalf("merge result %+v", m)
		}
		if _, err := db.Merge(ctx, Query{}); err == nil || !strings.Contains(err.Error(), "mixes kinds") {
			t.Fatalf("merging cpu with alloc_space: err = %v", err)
		}

		rows, err := db.Search(ctx, Query{Kind: "cpu"}, regexp.MustCompile(`^json\.`), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0].Group != "checkout" || rows[0].Matched != 60 || rows[0].Total != 80 || rows[1].Group != "search" || rows[1].Share != 0.5 {
			t.Fatalf("search = %+v", rows)
		}

		sel, _ = ParseSelector(`{service="checkout"}`)
		after, _ := ParseSelector(`{service="search"}`)
		d, _, _, err := db.Diff(ctx, Query{Selector: sel, Kind: "cpu"}, Query{Selector: after, Kind: "cpu"})
		if err != nil {
			t.Fatal(err)
		}
		if d.Total() != 80 || d.Total2() != 100 {
			t.Fatalf("diff totals %d %d", d.Total(), d.Total2())
		}

		one, err := db.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if one.Profile.Total() != 100 || one.Labels["service"] != "search" {
			t.Fatalf("get = %+v", one)
		}
		if _, err := db.Get(ctx, 9999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}

		if err := db.Delete(ctx, []int64{a, b}); err != nil {
			t.Fatal(err)
		}
		stats, _ = db.Stats(ctx)
		if stats.Snapshots != 2 || stats.Blobs != 2 {
			t.Fatalf("after delete stats = %+v, want 2 snapshots, 2 blobs (the checkout blob collected)", stats)
		}
	})
}

func TestSelector(t *testing.T) {
	for _, tc := range []struct {
		in   string
		l    Labels
		want bool
		bad  bool
	}{
		{in: "", l: Labels{"a": "b"}, want: true},
		{in: "app", l: Labels{"service": "app"}, want: true},
		{in: "app{env=prod}", l: Labels{"service": "app", "env": "prod"}, want: true},
		{in: `app{env!="prod"}`, l: Labels{"service": "app", "env": "prod"}, want: false},
		{in: `{host=~"web-[0-9]+", env!~"dev|test"}`, l: Labels{"host": "web-12", "env": "prod"}, want: true},
		{in: `{host=~"web-[0-9]+"}`, l: Labels{"host": "db-1"}, want: false},
		{in: `{a="x\"y"}`, l: Labels{"a": `x"y`}, want: true},
		{in: `{a=~"("}`, bad: true},
		{in: `{a}`, bad: true},
		{in: `app{a=b`, bad: true},
		{in: `{a="b" c="d"}`, bad: true},
		{in: `{=b}`, bad: true},
	} {
		sel, err := ParseSelector(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseSelector(%q): no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tc.in, err)
			continue
		}
		if got := sel.Matches(tc.l); got != tc.want {
			t.Errorf("%q matches %v = %v, want %v", tc.in, tc.l, got, tc.want)
		}
	}
	l, err := ParseName("myapp.cpu{env=staging,region=eu}")
	if err != nil || l["service"] != "myapp.cpu" || l["env"] != "staging" || l["region"] != "eu" {
		t.Fatalf("ParseName = %v, %v", l, err)
	}
	if _, err := ParseName(`app{a=~"x"}`); err == nil {
		t.Fatal("ParseName accepted a regex matcher")
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"", "app", `app{env="prod", host=~"web-.*"}`, `{a!="b",c!~"d"}`, `{a="\u00e9"}`, `x{`, `{a=b,}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		// What parses must print back to something that parses the same way.
		again, err := ParseSelector(sel.String())
		if err != nil {
			t.Fatalf("%q printed as %q which does not parse: %v", s, sel.String(), err)
		}
		if len(again) != len(sel) {
			t.Fatalf("%q: %d matchers, reparsed %d", s, len(sel), len(again))
		}
	})
}

func TestMergeRefusesMixedUnits(t *testing.T) {
	db := &DB{S: storetest.SQLite(t)}
	ctx := context.Background()
	for _, unit := range []string{"nanoseconds", "samples"} {
		if _, _, err := db.Save(ctx, &Snapshot{Kind: "cpu", Unit: unit, Labels: Labels{"u": unit}, End: t0, Profile: folded(t, "a;b 10\n")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Merge(ctx, Query{Kind: "cpu"}); err == nil || !strings.Contains(err.Error(), "mixes units") {
		t.Fatalf("merge of nanoseconds with samples: %v", err)
	}
	sel, _ := ParseSelector(`{u="samples"}`)
	if m, err := db.Merge(ctx, Query{Kind: "cpu", Selector: sel}); err != nil || m.Total != 10 {
		t.Fatalf("narrowed merge: %+v %v", m, err)
	}
}
