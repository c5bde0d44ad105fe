package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/video"
	"github.com/diffsim/diffsim/ui"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// videoCmd is `diffsim video`: appearance consistency over a clip.
type videoCmd struct {
	scoring
	every, maxFrames int
	json, csv        bool
	explore          bool
	pngPath          string
	graphics         string
}

func newVideoCmd(a *app) *cobra.Command {
	c := &videoCmd{scoring: scoring{app: a, diff: &diffusionFlags{}}}
	cmd := &cobra.Command{
		Use:   "video INPUT",
		Short: "Appearance consistency over a clip: each frame against the first and the previous one",
		Long: `video scores every frame of a clip against the first frame and against the previous frame
at one layer and timestep, and condenses both curves into the clip's consistency: their means
over frames 1…N−1, and their minimum (the least similar frame; the maximum for --metric mse)
with the frame where it occurs.

INPUT is a folder of frames (image files, in natural name order: frame2 before frame10) or a
video file, decoded with ffmpeg (the Debian/Ubuntu package ffmpeg). Each frame's features are
computed once, two frames to a network run.`,
		Example: `  diffsim video frames/
  diffsim video clip.mp4 --every 5 --max-frames 100 --png consistency.png
  diffsim video frames/ --layer Up1 --t 201 --json`,
		Args: exactArgs(1, "a folder of frames or a video file"),
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, args[0]) },
	}
	f := cmd.Flags()
	c.modelFlags.register(f, true)
	c.diff.register(f)
	f.IntVar(&c.every, "every", 1, "keep every Nth frame (frames 0, N, 2N, …)")
	f.IntVar(&c.maxFrames, "max-frames", 0, "stop after this many kept frames (0: all)")
	f.BoolVar(&c.json, "json", false, "print one JSON object (the setup, every frame's scores and the clip's consistency)")
	f.BoolVar(&c.csv, "csv", false, "print CSV, one row per frame")
	f.StringVar(&c.pngPath, "png", "", "also draw both curves into this PNG file")
	f.BoolVar(&c.explore, "explore", false, "open the clip in the explorer: its curves, and the first frame beside the frame under a cursor (←/→)")
	f.StringVar(&c.graphics, "graphics", "auto", "terminal graphics with --explore: auto, sixel, kitty, halfblock, quadrant or none")
	inGroup(f, groupOutput, "json", "csv", "png", "explore", "graphics")
	return cmd
}

func (c *videoCmd) run(cmd *cobra.Command, input string) error {
	if c.csv && c.json {
		return usagef("give --json or --csv, not both")
	}
	if c.explore && (c.csv || c.json) {
		return usagef("give --explore or --json/--csv, not both")
	}
	var graphics termgfx.Protocol
	var screen *os.File
	if c.explore {
		// Before any work: scoring a clip takes a while.
		var err error
		if graphics, err = termgfx.ParseProtocol(c.graphics); err != nil {
			return usagef("--graphics %q: want auto, sixel, kitty, halfblock, quadrant or none", c.graphics)
		}
		if screen, err = c.terminal(); err != nil {
			return usagef("video --explore needs a terminal; use --png FILE, --json or --csv for the curves")
		}
	}
	if c.every < 1 {
		return usagef("--every %d: want 1 or more", c.every)
	}
	if c.maxFrames < 0 {
		return usagef("--max-frames %d: want 0 (all) or more", c.maxFrames)
	}
	if c.maxFrames == 1 {
		return usagef("--max-frames 1: a clip needs at least two frames")
	}
	if c.pngPath != "" && strings.ToLower(filepath.Ext(c.pngPath)) != ".png" {
		return usagef("--png %s: the file name should end in .png", c.pngPath)
	}
	if err := c.checkFlags(cmd); err != nil {
		return err
	}
	// The input first: a missing file or ffmpeg should not wait for a model to load.
	ctx := cmd.Context()
	opened, err := video.Open(ctx, input, video.Options{Every: c.every, MaxFrames: c.maxFrames})
	if err != nil {
		return err
	}
	defer opened.Close()
	src := opened
	var kept *keptFrames
	if c.explore {
		if kept, err = keepFrames(opened, input); err != nil {
			return err
		}
		defer kept.Close()
		src = kept
	}
	s, err := c.scorer(cmd, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	tg, err := s.Resolve(c.selection())
	if err != nil {
		return err
	}

	bar := c.newProgress("video", src.Len(), 0)
	res, err := video.Score(ctx, s, src, video.Settings{
		Layer: tg.Layer, T: tg.T, Metric: tg.Metric,
		OnFrame: func(video.FrameScore) { bar.Add(1) },
	})
	bar.Close()
	if err != nil {
		if ctx.Err() != nil && len(res.Frames) > 0 && !c.quiet {
			fmt.Fprintf(c.stderr, "diffsim: stopped after %d of %s frames\n", len(res.Frames), framesTotal(src.Len()))
		}
		return err
	}
	out := video.NewReport(s, input, tg.Layer, tg.T, tg.Metric, c.every, c.maxFrames, res)
	if c.explore {
		return c.exploreClip(cmd, s, out, kept.paths, graphics, screen)
	}
	if c.pngPath != "" {
		if err := c.writePNG(c.pngPath, drawVideo(out)); err != nil {
			return err
		}
	}
	switch {
	case c.json:
		return json.NewEncoder(c.stdout).Encode(out)
	case c.csv:
		return video.WriteCSV(c.stdout, res)
	}
	dir := "higher = more similar"
	if !out.HigherIsMoreSimilar {
		dir = "lower = more similar"
	}
	when := "no timesteps"
	if out.T != nil {
		when = fmt.Sprintf("t=%d (step %d)", *out.T, *out.Step)
	}
	fmt.Fprintf(c.stdout, "%s (%s) of %s, layer %s, %s, %d px, seed %d, %s\n",
		out.Metric, dir, input, s.Info().Layers[tg.Layer].Label(), when, out.Size, out.Seed, out.Device)
	if err := video.WriteTable(c.stdout, res, out.Metric); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d frames: %d feature extractions in %d network runs\n", len(res.Frames), out.FeatureExtractions, out.NetworkRuns)
	fmt.Fprintf(c.stdout, "model: %s\n", out.ModelDescription)
	return nil
}

// keptFrames passes a clip's frames through and remembers where each one is on disk, for
// the explorer, which loads images by path: a folder's own files, or, for a decoded video,
// the frames written to a temporary folder (removed by Close).
type keptFrames struct {
	video.Source
	dir, tmp string
	paths    []string
}

func keepFrames(src video.Source, input string) (*keptFrames, error) {
	k := &keptFrames{Source: src, dir: input}
	if st, err := os.Stat(input); err == nil && st.IsDir() {
		return k, nil
	}
	tmp, err := os.MkdirTemp("", "diffsim-frames-")
	if err != nil {
		return nil, fmt.Errorf("video --explore: a folder for the decoded frames: %w", err)
	}
	k.tmp, k.dir = tmp, tmp
	return k, nil
}

func (k *keptFrames) Next(ctx context.Context) (video.Frame, error) {
	f, err := k.Source.Next(ctx)
	if err != nil {
		return f, err
	}
	if k.tmp == "" {
		k.paths = append(k.paths, filepath.Join(k.dir, f.Name))
		return f, nil
	}
	p := filepath.Join(k.tmp, fmt.Sprintf("frame%06d.png", f.Frame))
	if err := os.WriteFile(p, f.Data, 0o600); err != nil {
		return f, fmt.Errorf("video --explore: keep %s: %w", f.Name, err)
	}
	k.paths = append(k.paths, p)
	return f, nil
}

// Close removes the decoded frames; the source is closed by its opener.
func (k *keptFrames) Close() error {
	if k.tmp == "" {
		return nil
	}
	return os.RemoveAll(k.tmp)
}

// exploreClip opens the explorer on the scored clip, at the layer, timestep and metric
// the curves were computed with.
func (c *videoCmd) exploreClip(cmd *cobra.Command, s api.Scorer, out video.Report, paths []string, graphics termgfx.Protocol, screen *os.File) error {
	t := 0
	if out.T != nil {
		t = *out.T
	}
	clip := &ui.Clip{Metric: out.Metric, Settings: fmt.Sprintf("%s t=%d", out.LayerShort, t)}
	if out.LayerShort == "" {
		clip.Settings = fmt.Sprintf("layer %d t=%d", out.LayerIndex, t)
	}
	for _, f := range out.Frames {
		if f.Index < 0 || f.Index >= len(paths) {
			return fmt.Errorf("video --explore: frame %d has no file (internal error)", f.Index)
		}
		cf := ui.ClipFrame{Path: paths[f.Index], Name: f.Name, Frame: f.Frame, ToFirst: float64(f.ToFirst), ToPrevious: math.NaN()}
		if f.ToPrevious != nil {
			cf.ToPrevious = float64(*f.ToPrevious)
		}
		clip.Frames = append(clip.Frames, cf)
	}
	if len(clip.Frames) < 2 {
		return usagef("video --explore: a clip needs at least two frames")
	}
	opts := ui.DefaultOptions()
	opts.Graphics = graphics
	opts.Metric = clip.Metric
	opts.Layer, opts.T = out.LayerIndex, t
	opts.Clip = clip
	opts.Input = c.stdin
	opts.Output = screen
	return ui.Run(cmd.Context(), s, clip.Frames[0].Path, clip.Frames[1].Path, opts)
}

// framesTotal prints a clip's frame count, which a video file may not announce.
func framesTotal(n int) string {
	if n < 0 {
		return "?"
	}
	return strconv.Itoa(n)
}
