package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features/schedule"
)

// Flag groups, shown under their own headings in help; a command registers only the groups
// that apply to it, so bench never lists --prompt.
const (
	groupKey       = "diffsim_group"
	groupCommon    = "Common flags"
	groupDiffusion = "Diffusion model flags"
	groupOutput    = "Output flags"
)

// inGroup files the named flags of f under group.
func inGroup(f *pflag.FlagSet, group string, names ...string) {
	for _, n := range names {
		_ = f.SetAnnotation(n, groupKey, []string{group})
	}
}

// modelFlags choose the model, the layer and timestep, the metric and the device: every
// command that scores images has them.
type modelFlags struct {
	model, layer   string
	t, step        rangedInt
	metric         string
	size           int
	seed           int64
	device, ortLib string
	quiet          bool
	images         imageLimit
}

// register adds the group to f; with timesteps false, --t and --step are left to the command
// (sweep reads lists of them).
func (m *modelFlags) register(f *pflag.FlagSet, timesteps bool) {
	f.StringVar(&m.model, "model", api.DefaultModel, "model: builtin, a pulled name (sd15, dinov2-small, …), an org/repo id, a folder or an .onnx file")
	f.StringVar(&m.layer, "layer", "", "layer: index, full name, or the paper's short name (Down0…Up2); default: the model's")
	if timesteps {
		m.t = rangedInt{lo: 0, hi: schedule.Timesteps - 1, what: "a DDPM timestep"}
		f.Var(&m.t, "t", "DDPM timestep 0–999 (default: the model's; 101 for the built-in model)")
		m.step = rangedInt{lo: 1, hi: schedule.Timesteps, what: "the reference's step index; t = 1001 − step"}
		f.Var(&m.step, "step", "the reference code's step index 1–1000 instead of --t: t = 1001 − step; steps 1 and 2 both give t = 999 (as in the reference's schedule), shown as step 2")
	}
	f.StringVar(&m.metric, "metric", "aas", "aas (Aligned Attention Score), cos (pixel-aligned feature cosine) or mse (lower = more similar)")
	f.IntVar(&m.size, "size", 0, "working size in pixels (default: the model's; 256 for the built-in model)")
	f.Int64Var(&m.seed, "seed", api.DefaultSeed, "noise seed, shared by both images")
	f.StringVar(&m.device, "device", api.DefaultDevice, "auto (a GPU when the machine and the runtime have one), cpu, cuda or cuda:N")
	f.StringVar(&m.ortLib, "ort-lib", "", "ONNX Runtime library (default: $ONNXRUNTIME_LIB, then the one scripts/setup-runtime.sh fetched)")
	f.BoolVar(&m.quiet, "quiet", false, "no progress or notices on stderr")
	m.images.register(f)
	inGroup(f, groupCommon, "model", "layer", "t", "step", "metric", "size", "seed", "device", "ort-lib", "max-image")
	inGroup(f, groupOutput, "quiet")
}

// diffusionFlags condition a diffusion model: a prompt, CFG, DiffSim-C's IP-Adapter, and the
// reference code's settings.
type diffusionFlags struct {
	prompt                  string
	cfg                     bool
	reference               string
	ipAdapter, imageEncoder string
	ipScale                 float64
}

func (d *diffusionFlags) register(f *pflag.FlagSet) {
	f.StringVar(&d.prompt, "prompt", "", "condition the diffusion U-Net on this text (default: the empty prompt, unconditional)")
	f.BoolVar(&d.cfg, "cfg", false, "classifier-free-guidance layout, as the reference code: the unconditional and the prompted halves run as one batch and both enter the score (needs --prompt)")
	f.StringVar(&d.ipAdapter, "ip-adapter", "", "DiffSim-C: IP-Adapter Plus weights (ip-adapter-plus_sd15.safetensors) for a Stable Diffusion model")
	f.StringVar(&d.imageEncoder, "image-encoder", "", "DiffSim-C: the CLIP ViT-H/14 image encoder as ONNX (with --ip-adapter)")
	f.Float64Var(&d.ipScale, "ip-scale", api.DefaultIPScale, "DiffSim-C: weight of the IP attention in the U-Net (the reference's; 0 turns it off)")
	f.StringVar(&d.reference, "reference", "", "the reference code's settings for a benchmark family: nights, cute, style (sref, instantstyle, tid2013), ip, dreambench; flags you give win")
	inGroup(f, groupDiffusion, "prompt", "cfg", "ip-adapter", "image-encoder", "ip-scale", "reference")
}

// rangedInt is an integer flag checked when it is parsed, so an out-of-range value (negative
// included) is bad usage before anything loads; unset, it prints no default in help.
type rangedInt struct {
	v, lo, hi int
	set       bool
	what      string
}

func (r *rangedInt) String() string {
	if !r.set {
		return ""
	}
	return strconv.Itoa(r.v)
}

func (r *rangedInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want an integer, %s", r.what)
	}
	if n < r.lo || n > r.hi {
		return fmt.Errorf("%d is outside %d..%d (%s)", n, r.lo, r.hi, r.what)
	}
	r.v, r.set = n, true
	return nil
}

func (r *rangedInt) Type() string { return "int" }

// scoring is what a scoring command holds: the shared flags and the streams.
type scoring struct {
	*app
	modelFlags
	diff     *diffusionFlags // nil where diffusion flags do not apply
	checked  bool            // checkFlags ran: --reference reports once
	servable bool            // the command has --no-server: a running `diffsim serve` may score
	noServer bool            // --no-server: compute here even when `diffsim serve` runs
	// pruneFirst: the first score comes from the network cut down to its layer, the whole
	// network running after it (the explorer: session.Options.PruneFirst).
	pruneFirst bool
}

// notices is where notices go: stderr, or nowhere with --quiet.
func (c *scoring) notices() io.Writer {
	if c.quiet {
		return nil
	}
	return c.stderr
}

// conditioning is the diffusion flags' values, or none.
func (c *scoring) conditioning() diffusionFlags {
	if c.diff == nil {
		return diffusionFlags{}
	}
	return *c.diff
}

// checkFlags checks the flag combinations before anything loads.
func (c *scoring) checkFlags(cmd *cobra.Command) error {
	if c.checked {
		return nil
	}
	c.checked = true
	if err := c.applyReference(cmd); err != nil {
		return err
	}
	if d := c.conditioning(); d.cfg && d.prompt == "" {
		return usagef("--cfg pairs the unconditional half with a prompted one: give --prompt too")
	}
	if c.step.set && c.t.set {
		return usagef("give --t or --step, not both")
	}
	if _, err := api.ParseMetric(c.metric); err != nil {
		return usagef("--%v", err)
	}
	if _, err := engine.ParseDevice(c.device); err != nil {
		return usageError{err}
	}
	return nil
}

// spec is the model the flags choose: the one description a session opens and a server
// keys its warm models by.
func (c *scoring) spec() api.Spec {
	sp := api.DefaultSpec()
	sp.Model, sp.Size, sp.Seed, sp.Device = c.model, c.size, c.seed, c.device
	if c.diff != nil {
		d := c.diff
		sp.Prompt, sp.CFG = d.prompt, d.cfg
		sp.IPAdapter, sp.ImageEncoder, sp.IPScale = d.ipAdapter, d.imageEncoder, d.ipScale
	}
	return sp
}

// selection is --layer, --t or --step, and --metric, for api.ModelInfo.Resolve.
func (c *scoring) selection() api.Selection {
	sel := api.Selection{Layer: c.layer, Metric: api.Metric(c.metric)}
	switch {
	case c.step.set:
		sel.Step = c.step.v
	case c.t.set:
		t := c.t.v
		sel.T = &t
	}
	return sel
}
