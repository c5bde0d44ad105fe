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

// ModelInfo describes a loaded model.
type ModelInfo struct {
	Name         string
	Family       string // builtin, diffusion, vit, generic
	Description  string
	Layers       []Layer
	DefaultLayer int
	Timesteps    bool
	DefaultT     int
	Size         int // working size in pixels
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
