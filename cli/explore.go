package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/diffsim/diffsim/ui"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// exploreCmd is `diffsim IMAGE_A IMAGE_B`: the interactive explorer, and the root command.
type exploreCmd struct {
	scoring
	graphics     string
	exportDir    string
	traceStartup bool
	results      string // --results: a benchmark's results instead of a pair
	version      bool   // --version: what `diffsim version` prints, as other tools' --version does
}

// exploreWord lets `diffsim explore A B` mean `diffsim A B`, as people coming from the
// other commands type it, unless a file named explore is what they meant.
func exploreWord(args []string) []string {
	if len(args) == 3 && args[0] == "explore" {
		if _, err := os.Stat(args[0]); err != nil {
			return args[1:]
		}
	}
	return args
}

func newRoot(a *app) *cobra.Command {
	c := &exploreCmd{scoring: scoring{app: a, diff: &diffusionFlags{}}}
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
  diffsim sweep a.png b.png --t 0:999:100 --png sweep.png
  diffsim help score`,
		Args: func(cmd *cobra.Command, args []string) error {
			if c.version && len(args) == 0 {
				return nil
			}
			if c.results != "" {
				return resultsArgs(cmd, args)
			}
			if len(args) == 0 {
				// `diffsim` alone: the short usage on stderr, then the one-line error (exit 2).
				fmt.Fprintf(a.stderr, "%s\n\nUsage:\n  %s\n  diffsim COMMAND ... (diffsim help lists them)\n\n", cmd.Short, cmd.UseLine())
			}
			return exactArgs(2, "two images (or a command: diffsim help lists them)")(cmd, exploreWord(args))
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.version {
				return (&versionCmd{app: a, ortLib: c.ortLib}).run()
			}
			if c.results != "" {
				return c.runResults(cmd, resultsData(args))
			}
			args = exploreWord(args)
			return c.run(cmd, args[0], args[1])
		},
	}
	f := root.Flags()
	c.modelFlags.register(f, true)
	c.diff.register(f)
	f.StringVar(&c.graphics, "graphics", "auto", "terminal graphics: auto, sixel, kitty, halfblock, quadrant or none")
	f.StringVar(&c.exportDir, "export-dir", "diffsim-export", "folder the export key (e) writes its PNG and JSON into")
	f.StringVar(&c.results, "results", "", "explore a benchmark's results (bench --out FILE or DIR/) instead of a pair: diffsim explore --results FILE [DATA]")
	f.BoolVar(&c.traceStartup, "trace-startup", false, "print how long the explorer took to have both images on screen and its first score (scripts/bench-launch.sh, scripts/bench-served.sh)")
	_ = f.MarkHidden("trace-startup")
	// The explorer's first score comes from the network cut down to the starting layer, and
	// the whole network's forward for the layer bars runs after it: on a Stable Diffusion
	// U-Net the score is on screen in about half the time, the bars a pruned run later, with
	// the same peak memory (README, Performance; scripts/bench-first-score.sh compares the
	// two with --prune-first=false). Models that cannot be cut down run whole either way.
	f.BoolVar(&c.pruneFirst, "prune-first", true, "compute the first score on the network cut down to its layer, before the whole network's forward for the layer bars")
	_ = f.MarkHidden("prune-first")
	f.BoolVar(&c.version, "version", false, "print diffsim's version, as diffsim version does")
	inGroup(f, groupOutput, "version")
	inGroup(f, groupOutput, "graphics", "export-dir")
	c.registerNoServer(f)

	root.AddCommand(
		newScoreCmd(a), newSweepCmd(a), newRankCmd(a), newBenchCmd(a), newVideoCmd(a),
		newModelsCmd(a), newDoctorCmd(a), newVersionCmd(a), newServeCmd(a), newCacheCmd(a), newBaselineCmd(a),
	)
	setupHelp(root)
	return root
}

// run opens the explorer on a pair of images.
func (c *exploreCmd) run(cmd *cobra.Command, imageA, imageB string) error {
	graphics, err := termgfx.ParseProtocol(c.graphics)
	if err != nil {
		return usagef("--graphics %q: want auto, sixel, kitty, halfblock, quadrant or none", c.graphics)
	}
	// Check everything a person can get wrong before taking over the screen or loading a
	// model, so a typo is one line on stderr: the images as score checks them, the flags, and
	// a terminal to draw on.
	if err := checkImages(cmd.Context(), c.images.limits(), imageA, imageB); err != nil {
		return err
	}
	if err := c.checkFlags(cmd); err != nil {
		return err
	}
	screen, err := c.terminal()
	if err != nil {
		return err
	}
	report, progress := ui.NewProgress()
	sc, err := c.scorer(cmd, report)
	if err != nil {
		return err
	}
	defer sc.Close()
	info := sc.Info()
	tg, err := sc.Resolve(c.selection())
	if err != nil {
		return err
	}
	opts := ui.DefaultOptions()
	opts.Graphics = graphics
	if info.Caps.Progress {
		opts.Progress = progress
	}
	opts.Metric = tg.Metric
	opts.ExportDir = c.exportDir
	if c.layer != "" {
		opts.Layer = tg.Layer
	}
	if c.t.set || c.step.set {
		opts.T = tg.T
	}
	opts.Input, opts.Output = c.stdin, screen
	var firstImages, firstScore, firstBars time.Duration
	if c.traceStartup {
		opts.OnFirstImages = func() { firstImages = time.Since(c.started) }
		opts.OnFirstScore = func() { firstScore = time.Since(c.started) }
		opts.OnFirstLayerScores = func() { firstBars = time.Since(c.started) }
	}
	err = ui.Run(cmd.Context(), sc, imageA, imageB, opts)
	where := "here"
	if info.Caps.Served {
		where = "served"
	}
	if c.traceStartup && firstImages > 0 {
		fmt.Fprintf(c.stderr, "diffsim: both images ready for the first frame %d ms after start\n", firstImages.Milliseconds())
	}
	if c.traceStartup && firstScore > 0 {
		fmt.Fprintf(c.stderr, "diffsim: first score %d ms after start (%s)\n", firstScore.Milliseconds(), where)
	}
	if c.traceStartup && firstBars > 0 {
		fmt.Fprintf(c.stderr, "diffsim: layer bars %d ms after start (%s)\n", firstBars.Milliseconds(), where)
	}
	return err
}

// errNoTerminal is the explorer's answer to a pipe or a file on either end.
var errNoTerminal = usagef("the explorer needs a terminal; use `diffsim score`")

// terminal returns the screen the explorer draws on: standard output, when both it and
// standard input are terminals.
func (a *app) terminal() (*os.File, error) {
	out, ok := a.stdout.(*os.File)
	if !ok || a.stdin == nil || !term.IsTerminal(int(out.Fd())) || !term.IsTerminal(int(a.stdin.Fd())) {
		return nil, errNoTerminal
	}
	return out, nil
}
