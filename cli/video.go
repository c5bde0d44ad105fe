package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/video"
	"github.com/diffsim/diffsim/ui"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// videoJSON is `video --json`: the settings once, every frame's two scores, the clip's
// consistency, and what it cost (feature_extractions = frames run through the network).
type videoJSON struct {
	Model               string `json:"model"`
	ModelDescription    string `json:"model_description,omitempty"`
	Layer               string `json:"layer"`
	LayerShort          string `json:"layer_short,omitempty"`
	LayerIndex          int    `json:"layer_index"`
	T                   int    `json:"t"`
	Step                int    `json:"step"`
	Metric              string `json:"metric"`
	HigherIsMoreSimilar bool   `json:"higher_is_more_similar"`
	Size                int    `json:"size"`
	Seed                int64  `json:"seed"`
	Device              string `json:"device"`
	Input               string `json:"input"`
	Every               int    `json:"every"`
	MaxFrames           int    `json:"max_frames,omitempty"`
	FeatureExtractions  int    `json:"feature_extractions"`
	NetworkRuns         int    `json:"network_runs"`
	video.Result
}

func (a *app) videoCommand() *cobra.Command {
	var every, maxFrames int
	var asCSV, explore bool
	var pngPath string
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
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asCSV && a.json {
				return usagef("give --json or --csv, not both")
			}
			if explore && (asCSV || a.json) {
				return usagef("give --explore or --json/--csv, not both")
			}
			var graphics termgfx.Protocol
			var screen *os.File
			if explore {
				// Before any work: scoring a clip takes a while.
				var err error
				if graphics, err = termgfx.ParseProtocol(a.graphics); err != nil {
					return usagef("--graphics %q: want auto, sixel, kitty, halfblock or none", a.graphics)
				}
				f, ok := a.stdout.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return fmt.Errorf("video --explore needs a terminal on standard output; use --png FILE, --json or --csv for the curves")
				}
				screen = f
			}
			if every < 1 {
				return usagef("--every %d: want 1 or more", every)
			}
			if maxFrames < 0 {
				return usagef("--max-frames %d: want 0 (all) or more", maxFrames)
			}
			if maxFrames == 1 {
				return usagef("--max-frames 1: a clip needs at least two frames")
			}
			if pngPath != "" && strings.ToLower(filepath.Ext(pngPath)) != ".png" {
				return usagef("--png %s: the file name should end in .png", pngPath)
			}
			// The input first: a missing file or ffmpeg should not wait for a model to load.
			ctx := cmd.Context()
			opened, err := video.Open(ctx, args[0], video.Options{Every: every, MaxFrames: maxFrames})
			if err != nil {
				return err
			}
			defer opened.Close()
			src := opened
			var kept *keptFrames
			if explore {
				if kept, err = keepFrames(opened, args[0]); err != nil {
					return err
				}
				defer kept.Close()
				src = kept
			}
			tg, err := a.openTarget(cmd, nil)
			if err != nil {
				return err
			}
			defer tg.s.Close()
			s, info, layer, t := tg.s, tg.info, tg.layer, tg.t

			bar := a.newProgress("video", src.Len(), 0)
			res, err := video.Score(ctx, s, src, video.Settings{
				Layer: layer, T: t, Metric: session.Metric(a.metric),
				OnFrame: func(video.FrameScore) { bar.Add(1) },
			})
			bar.Close()
			if err != nil {
				if ctx.Err() != nil && len(res.Frames) > 0 && !a.quiet {
					fmt.Fprintf(a.stderr, "diffsim: stopped after %d of %s frames\n", len(res.Frames), framesTotal(src.Len()))
				}
				return err
			}
			l := info.Layers[layer]
			st := s.Stats()
			out := videoJSON{
				Model: info.Name, ModelDescription: info.Description, Layer: l.Name, LayerShort: l.Short, LayerIndex: layer,
				T: t, Step: stepOf(info, t), Metric: a.metric, HigherIsMoreSimilar: session.Metric(a.metric).HigherIsMoreSimilar(),
				Size: info.Size, Seed: info.Seed, Device: info.Device, Input: args[0], Every: every, MaxFrames: maxFrames,
				FeatureExtractions: st.Extracted, NetworkRuns: st.Forwards, Result: res,
			}
			if !info.Timesteps {
				out.T = 0
			}
			if explore {
				return a.exploreClip(cmd, s, out, kept.paths, graphics, screen)
			}
			if pngPath != "" {
				if err := a.writePNG(pngPath, drawVideo(out, info.Timesteps)); err != nil {
					return err
				}
			}
			switch {
			case a.json:
				return json.NewEncoder(a.stdout).Encode(out)
			case asCSV:
				return video.WriteCSV(a.stdout, res)
			}
			dir := "higher = more similar"
			if !out.HigherIsMoreSimilar {
				dir = "lower = more similar"
			}
			fmt.Fprintf(a.stdout, "%s (%s) of %s, layer %s, t=%d (step %d), %d px, seed %d, %s\n",
				a.metric, dir, args[0], l.Label(), out.T, out.Step, info.Size, info.Seed, info.Device)
			if err := video.WriteTable(a.stdout, res, session.Metric(a.metric)); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%d frames: %d feature extractions in %d network runs\n", len(res.Frames), st.Extracted, st.Forwards)
			fmt.Fprintf(a.stdout, "model: %s\n", info.Description)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&every, "every", 1, "keep every Nth frame (frames 0, N, 2N, …)")
	f.IntVar(&maxFrames, "max-frames", 0, "stop after this many kept frames (0: all)")
	f.BoolVar(&a.json, "json", false, "print one JSON object (every frame's scores and the clip's consistency)")
	f.BoolVar(&asCSV, "csv", false, "print CSV, one row per frame")
	f.StringVar(&pngPath, "png", "", "also draw both curves into this PNG file")
	f.BoolVar(&explore, "explore", false, "open the clip in the explorer: its curves, and the first frame beside the frame under a cursor (←/→)")
	return cmd
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
func (a *app) exploreClip(cmd *cobra.Command, s *session.Session, out videoJSON, paths []string, graphics termgfx.Protocol, screen *os.File) error {
	clip := &ui.Clip{Metric: session.Metric(out.Metric), Settings: fmt.Sprintf("%s t=%d", out.LayerShort, out.T)}
	if out.LayerShort == "" {
		clip.Settings = fmt.Sprintf("layer %d t=%d", out.LayerIndex, out.T)
	}
	for _, f := range out.Frames {
		if f.Index < 0 || f.Index >= len(paths) {
			return fmt.Errorf("video --explore: frame %d has no file (internal error)", f.Index)
		}
		cf := ui.ClipFrame{Path: paths[f.Index], Name: f.Name, Frame: f.Frame, ToFirst: f.ToFirst, ToPrevious: math.NaN()}
		if f.ToPrevious != nil {
			cf.ToPrevious = *f.ToPrevious
		}
		clip.Frames = append(clip.Frames, cf)
	}
	if len(clip.Frames) < 2 {
		return usagef("video --explore: a clip needs at least two frames")
	}
	opts := ui.DefaultOptions()
	opts.Graphics = graphics
	opts.Metric = clip.Metric
	opts.Layer, opts.T = out.LayerIndex, out.T
	opts.Clip = clip
	if a.stdin != nil {
		opts.Input = a.stdin
	}
	opts.Output = screen
	return ui.Run(cmd.Context(), s, clip.Frames[0].Path, clip.Frames[1].Path, opts)
}

// Chart colours: a blue and an orange that stay apart for colour-blind readers and in grey.
var (
	toFirstInk    = color.RGBA{31, 119, 180, 255}
	toPreviousInk = color.RGBA{230, 120, 20, 255}
)

// drawVideo draws both curves over the clip's frames: axes with ticks and labels, a legend,
// and the least similar frame of each curve marked. Text is drawn at 2× like the sweep's
// figure, so it survives scaling into a paper column.
func drawVideo(out videoJSON, timesteps bool) image.Image {
	text, big := newFace(2), newFace(3)
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{90, 90, 90, 255}
	light := color.RGBA{225, 225, 225, 255}
	metric := session.Metric(out.Metric)

	frames := out.Frames
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, f := range frames {
		lo, hi = min(lo, f.ToFirst), max(hi, f.ToFirst)
		if f.ToPrevious != nil {
			lo, hi = min(lo, *f.ToPrevious), max(hi, *f.ToPrevious)
		}
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5e-3, hi+0.5e-3
	}
	margin := (hi - lo) * 0.06
	lo, hi = lo-margin, hi+margin
	yTicks := heatmap.Ticks(float32(lo), float32(hi), 6)
	for i, t := range yTicks {
		if t == 0 {
			yTicks[i] = 0 // not −0, which would print as "-0.000"
		}
	}
	x0, x1 := frames[0].Frame, frames[len(frames)-1].Frame
	if x1 == x0 {
		x1 = x0 + 1
	}

	title := fmt.Sprintf("Appearance consistency of %s", filepath.Base(out.Input))
	when := fmt.Sprintf("t=%d", out.T)
	if !timesteps {
		when = "no timesteps"
	}
	layer := out.Layer
	if out.LayerShort != "" {
		layer = out.LayerShort + " " + out.Layer
	}
	sub := fmt.Sprintf("%s at %s, %s, model %s, %d px, seed %d", strings.ToUpper(out.Metric), layer, when, out.Model, out.Size, out.Seed)
	worstWord := "min"
	if !metric.HigherIsMoreSimilar() {
		worstWord = "max"
	}
	legend := []struct {
		label string
		ink   color.RGBA
		s     video.Summary
	}{
		{"to first frame", toFirstInk, out.ToFirst},
		{"to previous frame", toPreviousInk, out.ToPrevious},
	}
	legendText := make([]string, len(legend))
	legendW := 0
	for i, e := range legend {
		w := e.s.Worst(metric)
		legendText[i] = fmt.Sprintf("%s: mean %s, %s %s at frame %d", e.label, tickValue(e.s.Mean, 4), worstWord, tickValue(w.Score, 4), w.Frame)
		legendW = max(legendW, textWidth(text, legendText[i]))
	}

	const pad, lineH = 24, 36
	yLabelW := 0
	for _, t := range yTicks {
		yLabelW = max(yLabelW, textWidth(text, tickText(t, yTicks)))
	}
	plotX := pad + yLabelW + 24
	legendY := pad + 2*lineH + 20
	nameY := legendY + len(legend)*lineH + 30 // baseline of the y axis's name
	plotY := nameY + 24
	plotW, plotH := max(960, legendW+60), 480
	width := max(plotX+plotW+pad, pad+textWidth(big, title)+pad, pad+textWidth(text, sub)+pad)
	height := plotY + plotH + 12 + lineH + lineH + pad

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	drawText(img, big, pad, pad+30, title, black)
	drawText(img, text, pad, pad+lineH+24, sub, grey)
	for i, e := range legend {
		y := legendY + i*lineH
		chartFill(img, image.Rect(plotX, y+10, plotX+40, y+16), e.ink)
		drawText(img, text, plotX+52, y+22, legendText[i], black)
	}

	px := func(frame int) int {
		return plotX + int(math.Round(float64(frame-x0)/float64(x1-x0)*float64(plotW-1)))
	}
	py := func(v float64) int {
		return plotY + int(math.Round((hi-v)/(hi-lo)*float64(plotH-1)))
	}
	// grid and y ticks
	for _, t := range yTicks {
		y := py(float64(t))
		chartFill(img, image.Rect(plotX, y, plotX+plotW, y+1), light)
		chartFill(img, image.Rect(plotX-8, y, plotX, y+2), black)
		s := tickText(t, yTicks)
		drawText(img, text, plotX-12-textWidth(text, s), y+9, s, black)
	}
	var xTicks []int
	for _, t := range heatmap.Ticks(float32(x0), float32(x1), 8) {
		if v := int(math.Round(float64(t))); len(xTicks) == 0 || v != xTicks[len(xTicks)-1] {
			xTicks = append(xTicks, v)
		}
	}
	for _, f := range xTicks {
		x := px(f)
		chartFill(img, image.Rect(x, plotY, x+1, plotY+plotH), light)
		chartFill(img, image.Rect(x, plotY+plotH, x+2, plotY+plotH+8), black)
		s := strconv.Itoa(f)
		drawText(img, text, x-textWidth(text, s)/2, plotY+plotH+12+20, s, black)
	}
	// axes
	chartFill(img, image.Rect(plotX, plotY, plotX+2, plotY+plotH), black)
	chartFill(img, image.Rect(plotX, plotY+plotH-1, plotX+plotW, plotY+plotH+1), black)
	xName := "frame"
	if out.Every > 1 {
		xName = fmt.Sprintf("frame (every %d)", out.Every)
	}
	drawText(img, text, plotX+(plotW-textWidth(text, xName))/2, plotY+plotH+12+lineH+22, xName, grey)
	yName := out.Metric
	if metric.HigherIsMoreSimilar() {
		yName += " (higher = more similar)"
	} else {
		yName += " (lower = more similar)"
	}
	drawText(img, text, pad, nameY, yName, grey)

	// curves, with dots while there is room for them
	dots := plotW/len(frames) >= 12
	for i, e := range legend {
		var prevX, prevY int
		started := false
		for _, f := range frames {
			v := f.ToFirst
			if i == 1 {
				if f.ToPrevious == nil {
					continue
				}
				v = *f.ToPrevious
			}
			x, y := px(f.Frame), py(v)
			if started {
				chartLine(img, prevX, prevY, x, y, 3, e.ink)
			}
			if dots {
				chartFill(img, image.Rect(x-4, y-4, x+5, y+5), e.ink)
			}
			prevX, prevY, started = x, y, true
		}
		w := e.s.Worst(metric)
		chartRing(img, px(w.Frame), py(w.Score), 11, e.ink)
	}
	return img
}

// tickValue prints v with d decimals.
func tickValue(v float64, d int) string { return strconv.FormatFloat(v, 'f', d, 64) }

func chartFill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// chartLine draws a line w pixels thick by stamping squares along it (Bresenham).
func chartLine(img *image.RGBA, x0, y0, x1, y1, w int, c color.Color) {
	dx, dy := x1-x0, y1-y0
	sx, sy := 1, 1
	if dx < 0 {
		dx, sx = -dx, -1
	}
	if dy > 0 {
		dy, sy = -dy, 1
	} else {
		sy = -1
	}
	e := dx + dy
	h := w / 2
	for {
		chartFill(img, image.Rect(x0-h, y0-h, x0-h+w, y0-h+w), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

// chartRing draws a circle of radius r, 3 pixels wide, around (cx, cy).
func chartRing(img *image.RGBA, cx, cy, r int, c color.RGBA) {
	for y := -r - 2; y <= r+2; y++ {
		for x := -r - 2; x <= r+2; x++ {
			if d := math.Hypot(float64(x), float64(y)); math.Abs(d-float64(r)) <= 1.5 {
				img.SetRGBA(cx+x, cy+y, c)
			}
		}
	}
}

// framesTotal prints a clip's frame count, which a video file may not announce.
func framesTotal(n int) string {
	if n < 0 {
		return "?"
	}
	return strconv.Itoa(n)
}
