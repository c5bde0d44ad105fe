package vision

import (
	"context"
	"fmt"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/features/tapped"
)

// ViTFamily registers vision transformers in the transformers.js layout.
type ViTFamily struct{}

// GenericFamily registers bare .onnx graphs with one image input.
type GenericFamily struct{}

// Kind implements features.Family.
func (ViTFamily) Kind() store.Kind { return store.KindViT }

// Kind implements features.Family.
func (GenericFamily) Kind() store.Kind { return store.KindGeneric }

func noAdapter(src features.Source, o features.OpenOptions) error {
	if !o.IPAdapter.IsZero() {
		return fmt.Errorf("--ip-adapter needs a Stable Diffusion model (--model sd15 or a diffusers folder), not %s", src.Name)
	}
	return nil
}

// Describe implements features.Family. The size and token grids are those scoring uses: the
// crop of preprocessor_config.json (or the graph's fixed input size), not config.json's
// image_size, which is the size the model was trained at (518 px for DINOv2, run at 224).
func (ViTFamily) Describe(src features.Source, o features.OpenOptions) (features.Description, error) {
	if err := noAdapter(src, o); err != nil {
		return features.Description{}, err
	}
	v, err := readViT(src.Path)
	if err != nil {
		return features.Description{}, err
	}
	d, err := describeFile(v.file, v.pre.Crop)
	if err != nil {
		return d, err
	}
	if v.patch > 0 {
		// Where inference could not tell (an operator it does not know), config.json's patch
		// size does.
		g := d.Size / v.patch
		for i := range d.Layers {
			if d.Layers[i].Tokens == 0 {
				d.Layers[i].GridH, d.Layers[i].GridW, d.Layers[i].Prefix = g, g, 1+v.registers
				d.Layers[i].Tokens = g*g + 1 + v.registers
			}
		}
	}
	return d, nil
}

// Open implements features.Family.
func (ViTFamily) Open(_ context.Context, l features.Loader, src features.Source, o features.OpenOptions) (features.Model, error) {
	if err := noAdapter(src, o); err != nil {
		return nil, err
	}
	return OpenViT(l, src.Name, src.Path)
}

func genericFile(src features.Source) string {
	if src.Graph != "" {
		return src.Graph
	}
	return src.Path
}

// Describe implements features.Family: token grids as inferred from the graph at the size it
// runs at.
func (GenericFamily) Describe(src features.Source, o features.OpenOptions) (features.Description, error) {
	if err := noAdapter(src, o); err != nil {
		return features.Description{}, err
	}
	return describeFile(genericFile(src), genericPreprocess(o.Size).Crop)
}

// Open implements features.Family.
func (GenericFamily) Open(_ context.Context, l features.Loader, src features.Source, o features.OpenOptions) (features.Model, error) {
	if err := noAdapter(src, o); err != nil {
		return nil, err
	}
	return OpenGeneric(l, src.Name, genericFile(src), o.Size)
}

// describeFile reads a single-image graph as open does: its layers, and the size it runs at.
func describeFile(file string, crop int) (features.Description, error) {
	g, err := onnx.ReadFile(file)
	if err != nil {
		return features.Description{}, err
	}
	ins, _ := tapped.GraphIO(g)
	_, size, err := imageInput(file, ins, crop)
	if err != nil {
		return features.Description{}, err
	}
	ins, outs, layers, err := tapped.Inspect(g, imageShapes(file, crop), size, size)
	if err != nil {
		return features.Description{}, fmt.Errorf("%s: %w", file, err)
	}
	return features.Description{Graph: file, Size: size, Inputs: ins, Outputs: outs, Layers: layers}, nil
}
