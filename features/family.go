package features

import (
	"context"
	"fmt"
	"image"
	"slices"
	"strings"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features/store"
)

// Conditioning is what a model's features depend on besides the image, the timestep and the
// seed (api.Conditioning: the prompt and the CFG layout). It is part of every feature-cache
// key; a model that takes no conditioning refuses anything but the zero value. (An IP-Adapter
// is part of the model, not of the key: it is chosen when the model opens, in OpenOptions.)
type Conditioning = api.Conditioning

// Conditioned is a Model whose features depend on a Conditioning (the diffusion family).
type Conditioned interface {
	Model
	// Prepare checks that the model can take c and does the work c needs once (embedding a
	// prompt), so a bad prompt is reported before any image runs.
	Prepare(ctx context.Context, c Conditioning) error
	ExtractConditioned(ctx context.Context, imgs []image.Image, t int, seed int64, c Conditioning) ([]Extraction, error)
}

// Loader opens graphs as runners: the one thing model families need from engine.
// *engine.Runtime is one; tests use fakes.
type Loader interface {
	Load(model []byte, so engine.SessionOptions) (engine.Runner, error)
}

// Source is where a model lives, as the store resolved it.
type Source struct {
	Name   string     // as the user named it, or the path
	Kind   store.Kind // which family reads it
	Path   string     // the folder or file ("" for the built-in model)
	Graph  string     // the main graph file, when the store found one
	Cached bool       // a Hugging Face cache snapshot (symlinks, which ONNX Runtime refuses for external weights)
}

// AdapterOptions name an IP-Adapter (DiffSim-C) for a diffusion U-Net.
type AdapterOptions struct {
	Weights      string  // ip-adapter-plus_sd15.safetensors
	ImageEncoder string  // the CLIP ViT-H/14 image encoder .onnx
	Scale        float64 // IP attention weight (api.Spec's ip_scale, default api.DefaultIPScale); 0 turns it off
}

// IsZero reports that no adapter was asked for (a scale alone asks for none).
func (a AdapterOptions) IsZero() bool { return a.Weights == "" && a.ImageEncoder == "" }

// OpenOptions say how a family opens or describes a model.
type OpenOptions struct {
	Size      int // working size in pixels; 0 = the family's default
	IPAdapter AdapterOptions
}

// Description is a model described without running it: what `diffsim models inspect` prints.
// Its layers carry the token grids at Size, the size scoring uses.
type Description struct {
	Graph     string          `json:"graph,omitempty"`
	Size      int             `json:"size,omitempty"`
	Inputs    []engine.IOInfo `json:"inputs"`
	Outputs   []engine.IOInfo `json:"outputs"`
	Layers    []Layer         `json:"layers"`
	IPAdapter *AdapterInfo    `json:"ip_adapter,omitempty"`
}

// AdapterInfo says what an IP-Adapter adds to a U-Net.
type AdapterInfo struct {
	Path         string `json:"path"`
	Tokens       int    `json:"tokens"` // IP tokens per image: the Resampler's queries
	Width        int    `json:"width"`  // their width, the U-Net's cross-attention width
	Layers       int    `json:"layers"` // attn2 layers given IP attention
	ImageEncoder string `json:"image_encoder,omitempty"`
	Penultimate  string `json:"penultimate,omitempty"` // the encoder tensor the Resampler reads
}

// Family is one kind of model: it describes a model from its files alone (Describe, for
// inspect) and opens it for scoring (Open). The two share their code, so inspect shows what
// score will compute.
type Family interface {
	Kind() store.Kind
	Describe(src Source, o OpenOptions) (Description, error)
	Open(ctx context.Context, l Loader, src Source, o OpenOptions) (Model, error)
}

// Families is the registry of model families: the one place a model is matched to the code
// that reads it. The command line builds it (features/families.All) and hands it to the
// session, so that session and ui import no family package.
type Families []Family

// Resolve finds the model arg names (builtin, a pulled or imported name, a hub repository in
// the cache, a folder or an .onnx file) and the family that reads it.
func (fs Families) Resolve(arg string) (Family, Source, error) {
	loc, err := store.Resolve(arg, store.Options{})
	if err != nil {
		return nil, Source{}, err
	}
	src := Source{Name: loc.Name, Kind: loc.Kind, Path: loc.Path, Graph: loc.Graph, Cached: loc.Cached}
	f, err := fs.For(loc.Kind)
	if err != nil {
		return nil, src, fmt.Errorf("%s: %w", loc.Path, err)
	}
	return f, src, nil
}

// For is the family that reads models of kind k.
func (fs Families) For(k store.Kind) (Family, error) {
	for _, f := range fs {
		if f.Kind() == k {
			return f, nil
		}
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("no model families are registered (the program must pass features/families.All() to the session)")
	}
	kinds := make([]string, len(fs))
	for i, f := range fs {
		kinds[i] = string(f.Kind())
	}
	slices.Sort(kinds)
	return nil, fmt.Errorf("not a model diffsim knows how to read (kind %q; it reads %s: a diffusers folder with unet/model.onnx, a transformers.js folder with onnx/model.onnx, or an .onnx file)", k, strings.Join(kinds, ", "))
}
