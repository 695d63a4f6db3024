package loops

import (
	"context"
	"errors"
	"strings"

	"github.com/srekit/srekit/store"
)

// ErrNoModel is returned for a model name that is not stored.
var ErrNoModel = errors.New("no such model")

// SavedModel is a model file kept in the store under a name.
type SavedModel struct {
	Name   string `json:"name"`
	Source string `json:"source"`
}

var models = store.NamedTexts{Table: "loops_models", Column: "source", Kind: "model", ErrNotFound: ErrNoModel}

// SaveModel stores a model file under name, replacing an earlier one. The
// file is parsed first: what does not parse is never stored.
func SaveModel(ctx context.Context, st *store.Store, name, source string) error {
	name = strings.TrimSpace(name)
	if err := models.CheckName(name); err != nil {
		return err
	}
	if _, err := ParseFile(name, strings.NewReader(source)); err != nil {
		return err
	}
	return models.Save(ctx, st, name, source)
}

// LoadModel returns a stored model file.
func LoadModel(ctx context.Context, st *store.Store, name string) (SavedModel, error) {
	source, err := models.Load(ctx, st, name)
	return SavedModel{Name: name, Source: source}, err
}

// ListModels returns the names of stored models, oldest first.
func ListModels(ctx context.Context, st *store.Store) ([]string, error) {
	return models.List(ctx, st)
}

// DeleteModel removes a stored model.
func DeleteModel(ctx context.Context, st *store.Store, name string) error {
	return models.Delete(ctx, st, name)
}
