package session

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/diffusion"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/features/vision"
)

// openStoredModel opens a model that is not the built-in one: a pulled or imported name, a
// hub repository in the cache, a folder or an .onnx file.
func openStoredModel(ctx context.Context, rt *engine.Runtime, o Options) (features.Model, error) {
	loc, err := store.Resolve(o.Model, store.Options{})
	if err != nil {
		return nil, usageError(err)
	}
	dir := loc.Path
	cleanup := func() error { return nil }
	if loc.Cached && loc.Kind != store.KindGeneric {
		// Hub snapshots are symlinks, which ONNX Runtime refuses for external weights.
		if dir, cleanup, err = store.Materialize(loc.Path, nil); err != nil {
			return nil, err
		}
	}
	// The sessions hold what they need once created; the private folder can go.
	defer cleanup()
	name := loc.Name
	var m features.Model
	switch loc.Kind {
	case store.KindDiffusion:
		m, err = diffusion.Open(ctx, rt, name, dir, o.Size)
	case store.KindViT:
		m, err = vision.OpenViT(rt, name, dir)
	case store.KindGeneric:
		file := loc.Path
		if filepath.Ext(file) != ".onnx" && loc.Graph != "" {
			file = filepath.Join(dir, loc.Graph)
		}
		m, err = vision.OpenGeneric(rt, name, file, o.Size)
	default:
		return nil, usagef("%s is not a model diffsim knows how to read (a diffusers folder with unet/model.onnx, a transformers.js folder with onnx/model.onnx, or an .onnx file)", loc.Path)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		// A model that cannot be read is bad input, like an unreadable image (exit code 2).
		return nil, usageError(err)
	}
	return m, nil
}
