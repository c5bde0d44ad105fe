package cli

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/session/video"
)

// drawSweep draws the sweep as a labelled heatmap: layers down, timesteps across, each cell
// coloured (viridis) and printed with its value, and a colour bar with ticks on the right.
// Sized for a paper figure: text is 2× a screen's, so it survives scaling to a column.
func drawSweep(out api.Sweep) image.Image {
	timesteps := out.Timesteps != nil
	text := newFace(2)
	small := newFace(2)
	big := newFace(3)
	cm := heatmap.Viridis()

	n, rows := out.Columns(), len(out.Layers)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, sc := range out.Scores {
		if v := float64(sc.Score); sc.Meaningless == nil && finite(v) {
			lo, hi = min(lo, v), max(hi, v)
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
		labelW = max(labelW, textWidth(text, l.Label()))
	}
	cellW := max(textWidth(small, "t=999")+16, 84)
	for _, sc := range out.Scores {
		if !sc.Score.IsNaN() {
			cellW = max(cellW, textWidth(small, cellText(float64(sc.Score)))+20)
		}
	}
	colLabels := make([]string, n)
	for i := range colLabels {
		colLabels[i] = "score"
		if timesteps {
			colLabels[i] = "t=" + strconv.Itoa(out.Timesteps[i])
		}
	}
	dir := "higher = more similar"
	if !out.HigherIsMoreSimilar {
		dir = "lower = more similar"
	}
	title := fmt.Sprintf("%s: %s vs %s", strings.ToUpper(string(out.Metric)), filepath.Base(out.ImageA), filepath.Base(out.ImageB))
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
		label := l.Label()
		drawText(img, text, gridX-16-textWidth(text, label), y+cellH/2+8, label, black)
		for ti := range n {
			sc := out.At(li, ti)
			r := image.Rect(gridX+ti*cellW, y, gridX+(ti+1)*cellW, y+cellH)
			c := color.RGBA{200, 200, 200, 255}
			s := "n/a"
			if v := float64(sc.Score); sc.Meaningless == nil && finite(v) {
				c, s = cm.At(norm(v)), cellText(v)
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

// tickText prints a tick as heatmap.TickLabels does: distinct labels, correctly signed.
func tickText(t float32, ticks []float32) string {
	if i := slices.Index(ticks, t); i >= 0 {
		return heatmap.TickLabels(ticks)[i]
	}
	return heatmap.TickLabels([]float32{t})[0]
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

// Chart colours: a blue and an orange that stay apart for colour-blind readers and in grey.
var (
	toFirstInk    = color.RGBA{31, 119, 180, 255}
	toPreviousInk = color.RGBA{230, 120, 20, 255}
)

// drawVideo draws both curves over the clip's frames: axes with ticks and labels, a legend,
// and the least similar frame of each curve marked. Text is drawn at 2× like the sweep's
// figure, so it survives scaling into a paper column.
func drawVideo(out video.Report) image.Image {
	timesteps := out.T != nil
	text, big := newFace(2), newFace(3)
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{90, 90, 90, 255}
	light := color.RGBA{225, 225, 225, 255}
	metric := out.Metric

	frames := out.Frames
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, f := range frames {
		lo, hi = min(lo, float64(f.ToFirst)), max(hi, float64(f.ToFirst))
		if f.ToPrevious != nil {
			lo, hi = min(lo, float64(*f.ToPrevious)), max(hi, float64(*f.ToPrevious))
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
	when := "no timesteps"
	if timesteps {
		when = fmt.Sprintf("t=%d", *out.T)
	}
	layer := out.Layer
	if out.LayerShort != "" {
		layer = out.LayerShort + " " + out.Layer
	}
	sub := fmt.Sprintf("%s at %s, %s, model %s, %d px, seed %d", strings.ToUpper(string(out.Metric)), layer, when, out.Model, out.Size, out.Seed)
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
		legendText[i] = fmt.Sprintf("%s: mean %s, %s %s at frame %d", e.label, tickValue(float64(e.s.Mean), 4), worstWord, tickValue(float64(w.Score), 4), w.Frame)
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
	yName := string(out.Metric)
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
			x, y := px(f.Frame), py(float64(v))
			if started {
				chartLine(img, prevX, prevY, x, y, 3, e.ink)
			}
			if dots {
				chartFill(img, image.Rect(x-4, y-4, x+5, y+5), e.ink)
			}
			prevX, prevY, started = x, y, true
		}
		w := e.s.Worst(metric)
		chartRing(img, px(w.Frame), py(float64(w.Score)), 11, e.ink)
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

// finite reports a value a chart can place: not NaN, not infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
