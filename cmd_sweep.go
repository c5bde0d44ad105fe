package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/batch"
)

// defaultSweepT is the sweep's timestep grid: 0, 100, …, 900 (the range's end, 999, is not on
// the grid; add it with --t 0:999:100,999).
const defaultSweepT = "0:999:100"

// sweepJSON is `sweep --json`: the settings once, then one entry per layer and timestep whose
// score equals `score --json` with the same --layer, --t and settings.
type sweepJSON struct {
	Model               string       `json:"model"`
	ModelDescription    string       `json:"model_description,omitempty"`
	Metric              string       `json:"metric"`
	HigherIsMoreSimilar bool         `json:"higher_is_more_similar"`
	Timesteps           []int        `json:"timesteps"`
	Layers              []sweepLayer `json:"layers"`
	Scores              []sweepScore `json:"scores"`
	Size                int          `json:"size"`
	Seed                int64        `json:"seed"`
	Device              string       `json:"device"`
	ImageA              string       `json:"image_a"`
	ImageB              string       `json:"image_b"`
}

type sweepLayer struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Short string `json:"short,omitempty"`
	Kind  string `json:"kind"`
}

type sweepScore struct {
	Layer       string  `json:"layer"`
	LayerShort  string  `json:"layer_short,omitempty"`
	LayerIndex  int     `json:"layer_index"`
	T           int     `json:"t"`
	Step        int     `json:"step"`
	Score       float64 `json:"score"`
	Meaningless bool    `json:"meaningless,omitempty"`
}

func (a *app) sweepCommand() *cobra.Command {
	var tList, stepList, pngPath string
	var asCSV bool
	cmd := &cobra.Command{
		Use:   "sweep IMAGE_A IMAGE_B",
		Short: "Score a pair at every layer × a set of timesteps: table, --json, --csv, --png",
		Long: `sweep scores a pair at every attention layer and each timestep of a grid. Each timestep
costs one batched network run that serves every layer. The grid defaults to ` + defaultSweepT + `
(t = 0, 100, …, 900); --t takes a list and ranges START:END[:STEP] (END included when on the
grid), --step the same in the reference code's step indices (t = 1001 − step). Models without
timesteps are swept over their layers only. --layer keeps one layer.`,
		Example: `  diffsim sweep a.png b.png
  diffsim sweep a.png b.png --t 100,400 --json
  diffsim sweep a.png b.png --t 0:999:50 --png sweep.png
  diffsim sweep a.png b.png --step 900,500 --csv > sweep.csv`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("step") && cmd.Flags().Changed("t") {
				return usagef("give --t or --step, not both")
			}
			if asCSV && a.json {
				return usagef("give --json or --csv, not both")
			}
			if pngPath != "" && strings.ToLower(filepath.Ext(pngPath)) != ".png" {
				return usagef("--png %s: the file name should end in .png", pngPath)
			}
			ts, err := sweepTimesteps(tList, stepList, cmd.Flags().Changed("step"))
			if err != nil {
				return err
			}
			s, err := a.openSession(cmd, nil)
			if err != nil {
				return err
			}
			defer s.Close()
			info := s.Info()
			layers := make([]int, len(info.Layers))
			for i := range layers {
				layers[i] = i
			}
			if a.layer != "" {
				l, err := s.ResolveLayer(a.layer)
				if err != nil {
					return err
				}
				layers = []int{l}
			}
			if !info.Timesteps {
				if cmd.Flags().Changed("t") || cmd.Flags().Changed("step") {
					fmt.Fprintf(a.stderr, "diffsim: %s has no timesteps; sweeping its layers only\n", info.Name)
				}
				ts = []int{0}
			}
			imgA, err := s.Load(args[0])
			if err != nil {
				return err
			}
			imgB, err := s.Load(args[1])
			if err != nil {
				return err
			}
			bar := a.newProgress("sweep", len(ts), 0)
			grid, err := sweepScores(cmd.Context(), s, imgA, imgB, ts, session.Metric(a.metric), func() { bar.Add(1) })
			bar.Close()
			if err != nil {
				return err
			}
			out := sweepJSON{
				Model: info.Name, ModelDescription: info.Description, Metric: a.metric,
				HigherIsMoreSimilar: session.Metric(a.metric).HigherIsMoreSimilar(), Timesteps: ts,
				Size: info.Size, Seed: info.Seed, Device: info.Device, ImageA: args[0], ImageB: args[1],
			}
			for _, li := range layers {
				l := info.Layers[li]
				out.Layers = append(out.Layers, sweepLayer{Index: li, Name: l.Name, Short: l.Short, Kind: string(l.Kind)})
			}
			for _, li := range layers {
				l := info.Layers[li]
				for ti, t := range ts {
					ls := grid[ti][li]
					out.Scores = append(out.Scores, sweepScore{
						Layer: l.Name, LayerShort: l.Short, LayerIndex: li, T: t, Step: stepOf(info, t),
						Score: ls.Score, Meaningless: ls.Meaningless,
					})
				}
			}
			if pngPath != "" {
				if err := a.writePNG(pngPath, drawSweep(out, info.Timesteps)); err != nil {
					return err
				}
			}
			switch {
			case a.json:
				for i := range out.Scores { // JSON has no NaN; a layer without a score gets 0 and says so
					if math.IsNaN(out.Scores[i].Score) {
						out.Scores[i].Score, out.Scores[i].Meaningless = 0, true
					}
				}
				return json.NewEncoder(a.stdout).Encode(out)
			case asCSV:
				return writeSweepCSV(a, out)
			}
			return writeSweepTable(a, out, info)
		},
	}
	f := cmd.Flags()
	f.StringVar(&tList, "t", defaultSweepT, "timesteps: a list and ranges START:END[:STEP], e.g. 100,400 or 0:999:50")
	f.StringVar(&stepList, "step", "", "the reference code's step indices instead of --t (t = 1001 − step), e.g. 900,500")
	f.BoolVar(&a.json, "json", false, "print one JSON object (a score per layer and timestep)")
	f.BoolVar(&asCSV, "csv", false, "print CSV, one row per layer and timestep")
	f.StringVar(&pngPath, "png", "", "also draw a heatmap (layers × timesteps) into this PNG file")
	return cmd
}

// sweepTimesteps reads --t (or --step) into sorted DDPM timesteps.
func sweepTimesteps(tList, stepList string, useSteps bool) ([]int, error) {
	if !useSteps {
		ts, err := batch.ParseInts(tList, "--t", 0, features.Timesteps-1)
		if err != nil {
			return nil, usageError{err}
		}
		return ts, nil
	}
	steps, err := batch.ParseInts(stepList, "--step", 1, features.Timesteps)
	if err != nil {
		return nil, usageError{err}
	}
	seen := map[int]bool{}
	var ts []int
	for _, st := range steps {
		t, err := features.StepToT(st)
		if err != nil {
			return nil, usageError{err}
		}
		if !seen[t] {
			seen[t] = true
			ts = append(ts, t)
		}
	}
	return batch.ParseInts(joinInts(ts), "--step", 0, features.Timesteps-1) // sorted
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// sweepScores scores every layer at each timestep: grid[ti][layer]. The session runs the
// network once per timestep for all layers (LayerScores).
func sweepScores(ctx context.Context, s *session.Session, a, b *session.Image, ts []int, m session.Metric, step func()) ([][]session.LayerScore, error) {
	grid := make([][]session.LayerScore, len(ts))
	for i, t := range ts {
		ls, err := s.LayerScores(ctx, a, b, t, m)
		if err != nil {
			return nil, err
		}
		grid[i] = ls
		step()
	}
	return grid, nil
}

func writeSweepCSV(a *app, out sweepJSON) error {
	w := csv.NewWriter(a.stdout)
	_ = w.Write([]string{"layer_index", "layer", "layer_short", "t", "step", "metric", "score", "meaningless"})
	for _, sc := range out.Scores {
		_ = w.Write([]string{
			strconv.Itoa(sc.LayerIndex), sc.Layer, sc.LayerShort, strconv.Itoa(sc.T), strconv.Itoa(sc.Step),
			out.Metric, strconv.FormatFloat(sc.Score, 'g', -1, 64), strconv.FormatBool(sc.Meaningless),
		})
	}
	w.Flush()
	return w.Error()
}

func writeSweepTable(a *app, out sweepJSON, info session.ModelInfo) error {
	dir := "higher = more similar"
	if !out.HigherIsMoreSimilar {
		dir = "lower = more similar"
	}
	fmt.Fprintf(a.stdout, "%s (%s), %s vs %s, %d px, seed %d\n", out.Metric, dir, out.ImageA, out.ImageB, out.Size, out.Seed)
	nameW := len("layer")
	for _, l := range out.Layers {
		nameW = max(nameW, len(layerLabel(l)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s", nameW, "layer")
	for _, t := range out.Timesteps {
		col := "score"
		if info.Timesteps {
			col = "t=" + strconv.Itoa(t)
		}
		fmt.Fprintf(&b, "  %7s ", col)
	}
	fmt.Fprintln(a.stdout, strings.TrimRight(b.String(), " "))
	n := len(out.Timesteps)
	note := false
	for li, l := range out.Layers {
		b.Reset()
		fmt.Fprintf(&b, "%-*s", nameW, layerLabel(l))
		for ti := range out.Timesteps {
			sc := out.Scores[li*n+ti]
			mark := " "
			if sc.Meaningless {
				mark, note = "*", true
			}
			fmt.Fprintf(&b, "  %7.4f%s", sc.Score, mark)
		}
		fmt.Fprintln(a.stdout, strings.TrimRight(b.String(), " "))
	}
	if note {
		fmt.Fprintln(a.stdout, "* cross-attention on text: keys and values do not depend on the image, so every pair scores 1")
	}
	fmt.Fprintf(a.stdout, "model: %s\n", info.Description)
	return nil
}

func layerLabel(l sweepLayer) string {
	if l.Short != "" {
		return l.Short + " " + l.Name
	}
	return l.Name
}

// drawSweep draws the sweep as a labelled heatmap: layers down, timesteps across, each cell
// coloured (viridis) and printed with its value, and a colour bar with ticks on the right.
// Sized for a paper figure: text is 2× a screen's, so it survives scaling to a column.
func drawSweep(out sweepJSON, timesteps bool) image.Image {
	text := newFace(2)
	small := newFace(2)
	big := newFace(3)
	cm := heatmap.Viridis()

	n, rows := len(out.Timesteps), len(out.Layers)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, sc := range out.Scores {
		if !sc.Meaningless && !math.IsNaN(sc.Score) {
			lo, hi = min(lo, sc.Score), max(hi, sc.Score)
		}
	}
	if lo > hi { // nothing meaningful to scale to
		lo, hi = 0, 1
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5e-3, hi+0.5e-3
	}
	digits := 3
	if hi-lo < 0.01 {
		digits = 4
	}
	cellText := func(v float64) string { return strconv.FormatFloat(v, 'f', digits, 64) }
	if max(math.Abs(lo), math.Abs(hi)) < 0.1 { // small values (MSE): fixed decimals would print 0.000
		cellText = func(v float64) string { return strconv.FormatFloat(v, 'e', 2, 64) }
	}

	const pad, cellH, barW = 24, 48, 28
	labelW := textWidth(text, "layer")
	for _, l := range out.Layers {
		labelW = max(labelW, textWidth(text, layerLabel(l)))
	}
	cellW := max(textWidth(small, "t=999")+16, 84)
	for _, sc := range out.Scores {
		cellW = max(cellW, textWidth(small, cellText(sc.Score))+20)
	}
	colLabels := make([]string, n)
	for i, t := range out.Timesteps {
		colLabels[i] = "t=" + strconv.Itoa(t)
		if !timesteps {
			colLabels[i] = "score"
		}
	}
	dir := "higher = more similar"
	if !out.HigherIsMoreSimilar {
		dir = "lower = more similar"
	}
	title := fmt.Sprintf("%s: %s vs %s", strings.ToUpper(out.Metric), filepath.Base(out.ImageA), filepath.Base(out.ImageB))
	sub := fmt.Sprintf("model %s, %d px, seed %d (%s)", out.Model, out.Size, out.Seed, dir)

	lineH := 36
	gridX := pad + labelW + 16
	gridY := pad + 2*lineH + 20
	gridW, gridH := n*cellW, rows*cellH
	ticks := heatmap.Ticks(float32(lo), float32(hi), 5)
	tickW := 0
	for _, t := range ticks {
		tickW = max(tickW, textWidth(small, tickText(t, ticks)))
	}
	barX := gridX + gridW + 32
	width := max(barX+barW+8+tickW+pad, pad+textWidth(big, title)+pad, pad+textWidth(small, sub)+pad)
	height := gridY + gridH + 12 + lineH + lineH + pad

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{90, 90, 90, 255}
	drawText(img, big, pad, pad+30, title, black)
	drawText(img, small, pad, pad+lineH+24, sub, grey)

	norm := func(v float64) float64 { return (v - lo) / (hi - lo) }
	for li, l := range out.Layers {
		y := gridY + li*cellH
		label := layerLabel(l)
		drawText(img, text, gridX-16-textWidth(text, label), y+cellH/2+8, label, black)
		for ti := range out.Timesteps {
			sc := out.Scores[li*n+ti]
			r := image.Rect(gridX+ti*cellW, y, gridX+(ti+1)*cellW, y+cellH)
			c := color.RGBA{200, 200, 200, 255}
			s := "n/a"
			if !sc.Meaningless && !math.IsNaN(sc.Score) {
				c, s = cm.At(norm(sc.Score)), cellText(sc.Score)
			}
			draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
			ink := color.RGBA{255, 255, 255, 255}
			if 0.299*float64(c.R)+0.587*float64(c.G)+0.114*float64(c.B) > 140 {
				ink = black
			}
			drawText(img, small, r.Min.X+(cellW-textWidth(small, s))/2, r.Min.Y+cellH/2+7, s, ink)
		}
	}
	// grid lines between cells keep neighbouring values apart in print
	for ti := 0; ti <= n; ti++ {
		draw.Draw(img, image.Rect(gridX+ti*cellW, gridY, gridX+ti*cellW+1, gridY+gridH), image.White, image.Point{}, draw.Src)
	}
	for li := 0; li <= rows; li++ {
		draw.Draw(img, image.Rect(gridX, gridY+li*cellH, gridX+gridW, gridY+li*cellH+1), image.White, image.Point{}, draw.Src)
	}
	for ti, s := range colLabels {
		drawText(img, small, gridX+ti*cellW+(cellW-textWidth(small, s))/2, gridY+gridH+12+20, s, black)
	}
	axis := "DDPM timestep t"
	if !timesteps {
		axis = "layer (the model has no timesteps)"
	}
	drawText(img, small, gridX+(gridW-textWidth(small, axis))/2, gridY+gridH+12+lineH+22, axis, grey)

	// colour bar: hi at the top, ticks and their values on the right
	for y := 0; y < gridH; y++ {
		v := 1 - float64(y)/float64(max(gridH-1, 1))
		draw.Draw(img, image.Rect(barX, gridY+y, barX+barW, gridY+y+1), image.NewUniform(cm.At(v)), image.Point{}, draw.Src)
	}
	for _, t := range ticks {
		y := gridY + int(math.Round((1-norm(float64(t)))*float64(gridH-1)))
		draw.Draw(img, image.Rect(barX+barW-6, y, barX+barW+4, y+2), image.NewUniform(black), image.Point{}, draw.Src)
		drawText(img, small, barX+barW+8, y+7, tickText(t, ticks), black)
	}
	return img
}

// tickText prints a tick with as many decimals as the tick step needs.
func tickText(t float32, ticks []float32) string {
	return heatmap.TickLabels(ticks)[slices.Index(ticks, t)] // distinct, correctly signed
}

// face is the X11 7×13 fixed font drawn at an integer scale: crisp at any zoom, and without
// a font-parsing dependency.
type face int

func newFace(scale int) face { return face(scale) }

func textWidth(f face, s string) int {
	return font.MeasureString(basicfont.Face7x13, s).Ceil() * int(f)
}

// drawText draws s with its baseline at y.
func drawText(dst draw.Image, f face, x, y int, s string, c color.Color) {
	k := int(f)
	g := basicfont.Face7x13
	w := font.MeasureString(g, s).Ceil()
	mask := image.NewAlpha(image.Rect(0, 0, w, g.Height))
	d := font.Drawer{Dst: mask, Src: image.Opaque, Face: g, Dot: fixed.P(0, g.Ascent)}
	d.DrawString(s)
	src := image.NewUniform(c)
	top := y - g.Ascent*k
	for my := 0; my < g.Height; my++ {
		for mx := 0; mx < w; mx++ {
			if mask.AlphaAt(mx, my).A == 0 {
				continue
			}
			r := image.Rect(x+mx*k, top+my*k, x+(mx+1)*k, top+(my+1)*k)
			draw.Draw(dst, r, src, image.Point{}, draw.Over)
		}
	}
}
