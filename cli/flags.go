package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
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
	f.StringVar(&m.model, "model", "builtin", "model: builtin, a pulled name (sd15, dinov2-small, …), an org/repo id, a folder or an .onnx file")
	f.StringVar(&m.layer, "layer", "", "layer: index, full name, or the paper's short name (Down0…Up2); default: the model's")
	if timesteps {
		m.t = rangedInt{lo: 0, hi: features.Timesteps - 1, what: "a DDPM timestep"}
		f.Var(&m.t, "t", "DDPM timestep 0–999 (default: the model's; 101 for the built-in model)")
		m.step = rangedInt{lo: 1, hi: features.Timesteps, what: "the reference's step index; t = 1001 − step"}
		f.Var(&m.step, "step", "the reference code's step index 1–1000 instead of --t (t = 1001 − step)")
	}
	f.StringVar(&m.metric, "metric", "aas", "aas (Aligned Attention Score), cos (pixel-aligned feature cosine) or mse (lower = more similar)")
	f.IntVar(&m.size, "size", 0, "working size in pixels (default: the model's; 256 for the built-in model)")
	f.Int64Var(&m.seed, "seed", session.DefaultSeed, "noise seed, shared by both images")
	f.StringVar(&m.device, "device", "auto", "auto (a GPU when the machine and the runtime have one), cpu, cuda or cuda:N")
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
	f.Float64Var(&d.ipScale, "ip-scale", 0.5, "DiffSim-C: weight of the IP attention in the U-Net (the reference uses 0.5)")
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
	noServer bool            // --no-server: compute here even when `diffsim serve` runs
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
	switch c.metric {
	case "aas", "cos", "mse":
	default:
		return usagef("--metric %q: want aas, cos or mse", c.metric)
	}
	if _, err := engine.ParseDevice(c.device); err != nil {
		return usageError{err}
	}
	return nil
}

// openSession checks the flags, starts the runtime and loads the model, printing the device
// notice once.
func (c *scoring) openSession(cmd *cobra.Command, progress func(session.Progress)) (*session.Session, error) {
	if err := c.checkFlags(cmd); err != nil {
		return nil, err
	}
	d := c.conditioning()
	s, err := session.Open(cmd.Context(), session.Options{
		Model: c.model, Size: c.size, Seed: c.seed, Device: c.device, Library: c.ortLib, OnProgress: progress,
		GraphCache:   graphCacheNoticing(c.notices()),
		Images:       c.images.limits(),
		Conditioning: features.Conditioning{Prompt: d.prompt, CFG: d.cfg},
		Families:     families.All(),
		IPAdapter:    d.ipAdapter, ImageEncoder: d.imageEncoder,
		IPScale: d.ipScale, IPScaleSet: cmd.Flags().Changed("ip-scale"),
	})
	if err != nil {
		if errors.Is(err, engine.ErrNoLibrary) {
			return nil, fmt.Errorf("%v", err)
		}
		return nil, err
	}
	if n := s.Info().Notice; n != "" && !c.quiet {
		fmt.Fprintln(c.stderr, "diffsim:", n)
	}
	return s, nil
}

// target is what a scoring command works on: an open session, and the layer, timestep and
// metric the flags chose.
type target struct {
	s      *session.Session
	info   session.ModelInfo
	layer  int
	t      int // 0 for models without timesteps
	metric session.Metric
}

// openTarget opens the session and resolves --layer, --t/--step and --metric; the caller
// closes t.s.
func (c *scoring) openTarget(cmd *cobra.Command, progress func(session.Progress)) (*target, error) {
	s, err := c.openSession(cmd, progress)
	if err != nil {
		return nil, err
	}
	tg := &target{s: s, info: s.Info(), metric: session.Metric(c.metric)}
	tg.layer, err = s.ResolveLayer(c.layer)
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	tg.t = c.timestep(tg.info)
	if !tg.info.Timesteps {
		tg.t = 0
	}
	return tg, nil
}

// timestep is --t or --step (checked when parsed), or the model's default.
func (c *scoring) timestep(info session.ModelInfo) int {
	switch {
	case c.step.set:
		t, _ := features.StepToT(c.step.v) // in range: checked by Set
		return t
	case c.t.set:
		return c.t.v
	}
	return info.DefaultT
}
