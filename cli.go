package main

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/batch"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// app carries what every command shares: the streams and the common flags.
type app struct {
	stdin          *os.File
	stdout, stderr io.Writer

	model    string
	layer    string
	t        int
	step     int
	metric   string
	size     int
	seed     int64
	device   string
	ortLib   string
	graphics string
	json     bool
	quiet    bool

	started      time.Time // process start, for --trace-startup
	traceStartup bool

	prompt    string // text the diffusion U-Net is conditioned on; "" = unconditional
	cfg       bool   // run the unconditional and prompted halves together, both scored
	reference string // a benchmark family whose reference-code settings fill the flags not given

	ipAdapter, imageEncoder string // DiffSim-C
	ipScale                 float64
}

// usageError marks errors in what the user typed (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue),
		errors.Is(err, session.ErrUsage),
		errors.Is(err, features.ErrBadImage),
		errors.Is(err, fs.ErrNotExist),
		errors.Is(err, fs.ErrPermission):
		return exitUsage
	}
	return exitFailure
}

// oneLine keeps the first line of an error: diffsim promises one clear line on stderr.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "diffsim [flags] IMAGE_A IMAGE_B",
		Short: "Explore what a network thinks makes two images alike (DiffSim's Aligned Attention Score)",
		Long: `diffsim compares two images inside one attention layer of a network: image A's queries
attend to image B's keys and values (the Aligned Attention Score of DiffSim, ICCV 2025).

With two images it opens the explorer: scrub timesteps and layers, and see the score with
per-token alignment heatmaps. The built-in model (no learned weights: colour and texture
statistics) works offline; real models come from 'diffsim models pull'.`,
		Example: `  diffsim testdata/samples/grass.png testdata/samples/gravel.png
  diffsim score a.png b.png --t 401 --layer Up0 --json
  diffsim sweep a.png b.png --t 0:999:100 --png sweep.png`,
		Args:          cobra.ExactArgs(2),
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.explore(cmd, args[0], args[1])
		},
	}
	// `diffsim` alone: the short usage on stderr, then the usual one-line error (exit 2).
	rootArgs := root.Args
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			fmt.Fprintf(a.stderr, "%s\n\nUsage:\n  %s\n  diffsim COMMAND ... (diffsim --help lists them)\n\n", cmd.Short, cmd.UseLine())
		}
		return rootArgs(cmd, args)
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%v (see %s --help)", err, cmd.CommandPath())
	})
	a.commonFlags(root)
	root.AddCommand(
		a.scoreCommand(),
		a.doctorCommand(),
		a.versionCommand(),
	)
	root.AddCommand(a.researchCommands()...)
	root.AddCommand(a.modelsCommand())
	root.AddCommand(a.videoCommand())
	forEachCommand(root, func(c *cobra.Command) {
		c.SilenceUsage, c.SilenceErrors = true, true
		if check := c.Args; check != nil {
			// A wrong number of arguments is bad usage: exit code 2, like a bad flag.
			c.Args = func(cmd *cobra.Command, args []string) error {
				err := check(cmd, args)
				var ue usageError
				if err == nil || errors.As(err, &ue) {
					return err
				}
				return usagef("%v (see %s --help)", err, cmd.CommandPath())
			}
		}
	})
	root.SetHelpCommand(&cobra.Command{Hidden: true})
	return root
}

func forEachCommand(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		forEachCommand(sub, f)
	}
}

// commonFlags are shared by every command that scores images (persistent on the root).
func (a *app) commonFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&a.model, "model", "builtin", "model: builtin, a pulled name (sd15, dinov2-small, …), an org/repo id, a folder or an .onnx file")
	f.StringVar(&a.layer, "layer", "", "layer: index, full name, or the paper's short name (Down0…Up2); default: the model's")
	f.IntVar(&a.t, "t", -1, "DDPM timestep 0–999 (default: the model's; 101 for the built-in model)")
	f.IntVar(&a.step, "step", 0, "the reference code's step index instead of --t (t = 1001 − step)")
	f.StringVar(&a.metric, "metric", "aas", "aas (Aligned Attention Score), cos (pixel-aligned feature cosine) or mse (lower = more similar)")
	f.IntVar(&a.size, "size", 0, "working size in pixels (default: the model's; 256 for the built-in model)")
	f.Int64Var(&a.seed, "seed", session.DefaultSeed, "noise seed, shared by both images")
	f.StringVar(&a.device, "device", "auto", "auto, cpu, cuda or cuda:N")
	f.StringVar(&a.ortLib, "ort-lib", "", "ONNX Runtime library (default: $ONNXRUNTIME_LIB, then the one scripts/setup-runtime.sh fetched)")
	f.StringVar(&a.graphics, "graphics", "auto", "terminal graphics: auto, sixel, kitty, halfblock or none")
	f.BoolVar(&a.quiet, "quiet", false, "no progress on stderr")
	f.BoolVar(&a.traceStartup, "trace-startup", false, "print how long the explorer took to have both images on screen (scripts/bench-launch.sh)")
	_ = f.MarkHidden("trace-startup")
	f.StringVar(&a.prompt, "prompt", "", "condition the diffusion U-Net on this text (default: the empty prompt, unconditional)")
	f.BoolVar(&a.cfg, "cfg", false, "classifier-free-guidance layout, as the reference code: the unconditional and the prompted halves run as one batch and both enter the score (needs --prompt)")
	f.StringVar(&a.ipAdapter, "ip-adapter", "", "DiffSim-C: IP-Adapter Plus weights (ip-adapter-plus_sd15.safetensors) for a Stable Diffusion model")
	f.StringVar(&a.imageEncoder, "image-encoder", "", "DiffSim-C: the CLIP ViT-H/14 image encoder as ONNX (with --ip-adapter)")
	f.Float64Var(&a.ipScale, "ip-scale", 0.5, "DiffSim-C: weight of the IP attention in the U-Net (the reference uses 0.5)")
	f.StringVar(&a.reference, "reference", "", "the reference code's settings for a benchmark family: nights, cute, style (sref, instantstyle, tid2013), ip, dreambench; flags you give win")
}

// openSession starts the runtime and loads the model, printing the device notice once.
func (a *app) openSession(cmd *cobra.Command, progress func(session.Progress)) (*session.Session, error) {
	if err := a.applyReference(cmd); err != nil {
		return nil, err
	}
	if a.cfg && a.prompt == "" {
		return nil, usagef("--cfg pairs the unconditional half with a prompted one: give --prompt too")
	}
	if a.step != 0 && cmd.Flags().Changed("t") {
		return nil, usagef("give --t or --step, not both")
	}
	switch a.metric {
	case "aas", "cos", "mse":
	default:
		return nil, usagef("--metric %q: want aas, cos or mse", a.metric)
	}
	s, err := session.Open(cmd.Context(), session.Options{
		Model: a.model, Size: a.size, Seed: a.seed, Device: a.device, Library: a.ortLib, OnProgress: progress,
		Conditioning: features.Conditioning{Prompt: a.prompt, CFG: a.cfg},
		Families:     families.All(),
		IPAdapter:    a.ipAdapter, ImageEncoder: a.imageEncoder,
		IPScale: a.ipScale, IPScaleSet: cmd.Flags().Changed("ip-scale"),
	})
	if err != nil {
		if errors.Is(err, engine.ErrNoLibrary) {
			return nil, fmt.Errorf("%v", err)
		}
		return nil, err
	}
	if n := s.Info().Notice; n != "" && !a.quiet {
		fmt.Fprintln(a.stderr, "diffsim:", n)
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
func (a *app) openTarget(cmd *cobra.Command, progress func(session.Progress)) (*target, error) {
	s, err := a.openSession(cmd, progress)
	if err != nil {
		return nil, err
	}
	tg := &target{s: s, info: s.Info(), metric: session.Metric(a.metric)}
	if tg.layer, err = s.ResolveLayer(a.layer); err == nil {
		tg.t, err = a.timestep(tg.info)
	}
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if !tg.info.Timesteps {
		tg.t = 0
	}
	return tg, nil
}

// timestep resolves --t / --step against the model's default.
func (a *app) timestep(info session.ModelInfo) (int, error) {
	if a.step != 0 {
		t, err := features.StepToT(a.step)
		if err != nil {
			return 0, usageError{err}
		}
		return t, nil
	}
	if a.t < 0 {
		return info.DefaultT, nil
	}
	if a.t >= features.Timesteps {
		return 0, usagef("--t %d is outside 0..999", a.t)
	}
	return a.t, nil
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print diffsim's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdout, "diffsim %s (ONNX Runtime %s expected)\n", version, engine.RuntimeVersion)
			return nil
		},
	}
}

// writePNG encodes img and writes it to path atomically (a reader never sees half a file),
// then says so on stderr.
func (a *app) writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	if err := batch.WriteFileAtomic(path, buf.Bytes()); err != nil {
		return err
	}
	if !a.quiet {
		fmt.Fprintf(a.stderr, "diffsim: wrote %s\n", path)
	}
	return nil
}

// checkFiles reports the first path that cannot be read, before any model is loaded.
func checkFiles(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return err
		}
	}
	return nil
}
