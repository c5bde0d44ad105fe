package session

import (
	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features"
)

// Inspection describes a model without running it: what `diffsim models inspect` prints. The
// family that scores the model describes it (features.Family.Describe), so the size and token
// grids are those a score uses.
type Inspection struct {
	Model string `json:"model"`
	Kind  string `json:"kind"`
	Path  string `json:"path,omitempty"`
	features.Description
}

// InspectOptions say how Inspect reads a model.
type InspectOptions struct {
	Size int // working size the token grids are given at; 0 = the model's default
	// IPAdapter adds the adapter's IP attention to a diffusion U-Net (as --ip-adapter does when
	// scoring), so the layer list is DiffSim-C's; a model folder holding its own adapter gets
	// it without. ImageEncoder, optional here, is checked for the hidden state the adapter
	// reads.
	IPAdapter, ImageEncoder string
	// Families are the model families known (features/families.All in the program).
	Families features.Families
}

// Inspect reads a model's graph, finds its attention layers and describes them, loading no
// weights and starting no runtime.
func Inspect(arg string, o InspectOptions) (Inspection, error) {
	fam, src, err := o.Families.Resolve(arg)
	ins := Inspection{Model: src.Name, Kind: string(src.Kind), Path: src.Path}
	if err != nil {
		return ins, api.UsageError(err)
	}
	sp := api.DefaultSpec()
	sp.Size, sp.IPAdapter, sp.ImageEncoder = o.Size, o.IPAdapter, o.ImageEncoder
	d, err := fam.Describe(src, openOptions(sp))
	ins.Description = d
	if err != nil {
		return ins, api.UsageError(err)
	}
	return ins, nil
}
