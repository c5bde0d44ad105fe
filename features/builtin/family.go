package builtin

import (
	"context"
	"fmt"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/features/tapped"
)

// Family registers the built-in model with the model registry.
type Family struct{}

// Kind implements features.Family.
func (Family) Kind() store.Kind { return store.KindBuiltin }

func checkOptions(o features.OpenOptions) error {
	if !o.IPAdapter.IsZero() {
		return fmt.Errorf("--ip-adapter and --image-encoder need a Stable Diffusion model (--model sd15 or a diffusers folder); the built-in model has no cross-attention")
	}
	if o.Size != 0 {
		return CheckSize(o.Size)
	}
	return nil
}

// Describe implements features.Family: the generated graph, read by the attention finder as
// Open reads it.
func (Family) Describe(_ features.Source, o features.OpenOptions) (features.Description, error) {
	if err := checkOptions(o); err != nil {
		return features.Description{}, err
	}
	size := o.Size
	if size == 0 {
		size = DefaultSize
	}
	g, err := Graph(size)
	if err != nil {
		return features.Description{}, err
	}
	ins, outs, found, err := tapped.Inspect(g, nil, 0, 0)
	if err != nil {
		return features.Description{}, fmt.Errorf("built-in model: %w", err)
	}
	layers, err := withGrids(found)
	if err != nil {
		return features.Description{}, err
	}
	return features.Description{Graph: "(generated in Go)", Size: size, Inputs: ins, Outputs: outs, Layers: layers}, nil
}

// Open implements features.Family.
func (Family) Open(_ context.Context, l features.Loader, _ features.Source, o features.OpenOptions) (features.Model, error) {
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	return Open(l, o.Size)
}
