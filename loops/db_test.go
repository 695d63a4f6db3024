package loops

import (
	"context"
	"errors"
	"testing"

	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

func TestModelStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		src := "name: two\nvariables: [a, b]\nlinks:\n  - {from: a, to: b, polarity: '+'}\n  - {from: b, to: a, polarity: '+'}\n"
		if err := SaveModel(ctx, st, "two", src); err != nil {
			t.Fatal(err)
		}
		if err := SaveModel(ctx, st, "broken", "variables: [a\n"); err == nil {
			t.Fatal("a model that does not parse was stored")
		}
		if err := SaveModel(ctx, st, "a/b", src); err == nil {
			t.Fatal("a name with a slash was accepted")
		}
		got, err := LoadModel(ctx, st, "two")
		if err != nil || got.Source != src {
			t.Fatalf("%+v %v", got, err)
		}
		if err := SaveModel(ctx, st, "two", src+"  - {from: a, to: a, polarity: '-'}\n"); err != nil {
			t.Fatal(err)
		}
		names, err := ListModels(ctx, st)
		if err != nil || len(names) != 1 || names[0] != "two" {
			t.Fatalf("%v %v", names, err)
		}
		if err := DeleteModel(ctx, st, "two"); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadModel(ctx, st, "two"); !errors.Is(err, ErrNoModel) {
			t.Fatalf("after delete: %v", err)
		}
		if err := DeleteModel(ctx, st, "two"); !errors.Is(err, ErrNoModel) {
			t.Fatalf("delete twice: %v", err)
		}
	})
}
