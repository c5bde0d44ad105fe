package api

import "strings"

// Defaults of a Spec: the built-in model, the reference code's seed and IP-Adapter scale, and
// whatever device the machine and the runtime offer.
const (
	DefaultModel   = "builtin"
	DefaultSeed    = 2334 // the reference code's seed
	DefaultDevice  = "auto"
	DefaultIPScale = 0.5 // the reference's weight of the IP attention (DiffSim-C)
)

// Spec is the one description of which model to load and how: the session's option, the
// server's cache key (requests with equal specs share one warm model), and the wire form. It
// is comparable; defaults are applied in one place, DefaultSpec, and Normalize makes equal
// what means the same. A request's JSON is read into DefaultSpec(), so a field left out is its
// default and an explicit 0 (seed 0, ip_scale 0) stays 0.
type Spec struct {
	Model  string `json:"model"` // builtin, a pulled name, an org/repo, a folder or an .onnx file
	Size   int    `json:"size"`  // working size in pixels; 0 = the model's default
	Seed   int64  `json:"seed"`  // noise seed, shared by both images
	Device string `json:"device"`
	// Prompt and CFG are the conditioning a diffusion U-Net is loaded with (the zero value is
	// the unconditional embedding); models without text conditioning refuse anything else.
	Prompt string `json:"prompt"`
	CFG    bool   `json:"cfg"`
	// IPAdapter and ImageEncoder enable DiffSim-C on a diffusion model: the IP-Adapter Plus
	// weights (.safetensors) and the CLIP ViT-H/14 image encoder (.onnx). IPScale weighs the
	// IP attention (0 turns it off).
	IPAdapter    string  `json:"ip_adapter"`
	ImageEncoder string  `json:"image_encoder"`
	IPScale      float64 `json:"ip_scale"`
}

// DefaultSpec is the spec every other starts from.
func DefaultSpec() Spec {
	return Spec{Model: DefaultModel, Seed: DefaultSeed, Device: DefaultDevice, IPScale: DefaultIPScale}
}

// Normalize gives the spelling-insensitive parts one form: an empty model is the built-in
// one, the device is lower-case and empty means auto.
func (s Spec) Normalize() Spec {
	if s.Model == "" {
		s.Model = DefaultModel
	}
	s.Device = strings.ToLower(strings.TrimSpace(s.Device))
	if s.Device == "" {
		s.Device = DefaultDevice
	}
	return s
}

// Conditioning is the prompt and CFG setting the spec loads the model with.
func (s Spec) Conditioning() Conditioning { return Conditioning{Prompt: s.Prompt, CFG: s.CFG} }
