package features

import (
	"context"
	"image"

	"github.com/diffsim/diffsim/api"
)

// Model is a model family ready to turn images into attention features. One Extract call is
// one network run over a batch; it returns every layer of every image at once, so switching
// layers never runs the network again.
type Model interface {
	Info() ModelInfo
	// Extract runs the network on imgs at timestep t (ignored by models without one) with the
	// noise drawn from seed, shared by every image, and returns each image's features.
	Extract(ctx context.Context, imgs []image.Image, t int, seed int64) ([]Extraction, error)
	Close() error
}

// ModelInfo describes a loaded model as its family knows it, with the graph-side layers that
// say how to tap each one. The session turns it into api.ModelInfo (Describe), adding what it
// runs on and what it can do.
type ModelInfo struct {
	Name         string // "builtin", a pulled name, or a path
	Family       string // builtin, diffusion, vit, generic
	Description  string // one honest line: what it is and what it is not
	Layers       []Layer
	DefaultLayer int
	Timesteps    bool // whether t means anything for this model
	DefaultT     int
	Size         int // working size in pixels
	// GlobalNeedsAll: the global embedding comes from the whole network (a vision
	// transformer's pooled output or last CLS token), so a run cut down to some layers
	// (Pruner) has none.
	GlobalNeedsAll bool
}

// Describe is the model as every front end sees it (api.ModelInfo), without what only the
// session knows: device, seed and capabilities.
func (i ModelInfo) Describe() api.ModelInfo {
	layers := make([]api.Layer, len(i.Layers))
	for j, l := range i.Layers {
		layers[j] = l.Describe()
	}
	return api.ModelInfo{
		Name: i.Name, Family: i.Family, Description: i.Description, Layers: layers,
		DefaultLayer: i.DefaultLayer, Timesteps: i.Timesteps, DefaultT: i.DefaultT, Size: i.Size,
	}
}

// Extraction is one image's features at every layer of one run.
type Extraction struct {
	Layers []Features
	Global []float32 // the model's global embedding; nil when it has none
}

// Pruned reports whether e came from a run cut down to some layers (Pruner.ExtractLayers):
// the other layers' features are zero.
func (e Extraction) Pruned() bool {
	for _, f := range e.Layers {
		if f.Tokens == 0 {
			return true
		}
	}
	return false
}

// Bytes is the memory an extraction holds.
func (e Extraction) Bytes() int64 {
	n := int64(4 * len(e.Global))
	for _, f := range e.Layers {
		n += f.Bytes()
	}
	return n
}

// Pruner is a Model that can run its network cut down to some layers: nothing downstream of
// their queries, keys and values is computed, and weights only later layers read are never
// loaded. A score at one layer needs no more.
type Pruner interface {
	// ExtractLayers is ExtractConditioned (Extract for c's zero value) computing only the
	// layers listed (indices into Info().Layers); the other layers' Features are zero, and
	// Global is nil.
	ExtractLayers(ctx context.Context, imgs []image.Image, t int, seed int64, c Conditioning, layers []int) ([]Extraction, error)
	// ReleasePruned closes the networks cut down to some layers (after the runs using them),
	// keeping the whole one: a caller going on to compute every layer then holds the weights
	// they share once. A later ExtractLayers opens its network again.
	ReleasePruned() error
}
