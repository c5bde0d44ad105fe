package features

import (
	"context"
	"image"
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

// ModelInfo describes a loaded model: the family fills in what the model is, the session what
// it runs on (Device, Notice, Seed). It is the one description of a loaded model; session and
// ui use it as it is.
type ModelInfo struct {
	Name         string // "builtin", a pulled name, or a path
	Family       string // builtin, diffusion, vit, generic
	Description  string // one honest line: what it is and what it is not
	Device       string // cpu or cuda:N (set by the session)
	Notice       string // why the device is not what was asked for, if so (set by the session)
	Layers       []Layer
	DefaultLayer int
	Timesteps    bool // whether t means anything for this model
	DefaultT     int
	Size         int   // working size in pixels
	Seed         int64 // noise seed (set by the session)
}

// Extraction is one image's features at every layer of one run.
type Extraction struct {
	Layers []Features
	Global []float32 // the model's global embedding; nil when it has none
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
}
