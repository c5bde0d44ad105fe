package cli

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strconv"

	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/session/bench"
)

// reportPanel is one matrix of the figure: a set's accuracy at one metric, or the style −
// content difference.
type reportPanel struct {
	title, sub string
	diff       bool
	cell       func(li, ti int) (v, lo, hi float64, mark string, ok bool)
}

// drawReport draws a grid report as a figure: per metric a row of panels (each decision set's
// accuracy, and for the grid layout style − content), layers down with their short names,
// t and step across, each cell coloured and printed with its value and 95% interval, the
// best cell outlined, and a colour bar with ticks for the accuracies and for the difference.
// The basic font has ASCII only, so the figure writes x, - and >=.
func drawReport(rep bench.Report) image.Image {
	g := rep.Settings
	text, small, big := newFace(2), newFace(2), newFace(3)
	if len(g.Layers)*len(g.T) > 80 {
		small = newFace(1) // a large grid: cells small enough to stay on a screen
	}
	acc := heatmap.Viridis()
	div := heatmap.Coolwarm()

	// scales: accuracies share one (so panels compare), differences one symmetric about 0
	aLo, aHi, dMax := 1.0, 0.0, 0.0
	for _, c := range rep.Cells {
		if c.N > 0 && !c.Meaningless {
			aLo, aHi = min(aLo, float64(c.Low)), max(aHi, float64(c.High))
		}
	}
	if aLo > aHi {
		aLo, aHi = 0, 1
	}
	aLo, aHi = math.Floor(aLo*10)/10, math.Ceil(aHi*10)/10
	if aHi-aLo < 0.1 {
		aLo = max(aHi-0.1, 0)
	}

	var rows [][]reportPanel
	sc, hasDiff := rep.StyleContentSets()
	for mi, m := range g.Metrics {
		var row []reportPanel
		for s, set := range g.Sets {
			n := 0
			for li := range g.Layers {
				for ti := range g.T {
					n = max(n, rep.At(s, mi, li, ti).N)
				}
			}
			row = append(row, reportPanel{
				title: fmt.Sprintf("%s: %s", set, metricLabel(m)),
				sub:   fmt.Sprintf("%s (n = %d)", setLabel(set), n),
				cell: func(li, ti int) (float64, float64, float64, string, bool) {
					c := rep.At(s, mi, li, ti)
					mark := ""
					switch {
					case c.Best:
						mark = "*"
					case c.Indistinguishable:
						mark = "="
					}
					return float64(c.Accuracy), float64(c.Low), float64(c.High), mark, c.N > 0 && !c.Meaningless
				},
			})
		}
		if hasDiff {
			for li := range g.Layers {
				for ti := range g.T {
					d, _, _ := bench.DifferenceOf(rep.At(sc[0], mi, li, ti), rep.At(sc[1], mi, li, ti))
					if !math.IsNaN(d) {
						dMax = max(dMax, math.Abs(d))
					}
				}
			}
			row = append(row, reportPanel{
				title: "style - content: " + metricLabel(m),
				sub:   "accuracy points; > 0: follows style more than content",
				diff:  true,
				cell: func(li, ti int) (float64, float64, float64, string, bool) {
					s, c := rep.At(sc[0], mi, li, ti), rep.At(sc[1], mi, li, ti)
					d, lo, hi := bench.DifferenceOf(s, c)
					return d, lo, hi, "", !math.IsNaN(d) && !s.Meaningless
				},
			})
		}
		rows = append(rows, row)
	}
	dMax = max(math.Ceil(dMax*10)/10, 0.1)

	// geometry
	const pad, gap, barW, lineH = 32, 40, 28, 36
	valText := func(p reportPanel, v float64) string {
		if p.diff {
			return signed(100*v, 1)
		}
		return strconv.FormatFloat(100*v, 'f', 1, 64)
	}
	ciText := func(p reportPanel, lo, hi float64) string {
		if p.diff {
			return "[" + signed(100*lo, 1) + ", " + signed(100*hi, 1) + "]"
		}
		return "[" + strconv.FormatFloat(100*lo, 'f', 1, 64) + ", " + strconv.FormatFloat(100*hi, 'f', 1, 64) + "]"
	}
	cellW := max(textWidth(small, "[+100.0, +100.0]")+16, textWidth(small, "step 1000")+16)
	cellH := 2*13*int(small) + 22
	labelW := textWidth(text, "layer")
	for _, l := range g.Layers {
		labelW = max(labelW, textWidth(text, l.Label))
	}
	gridW, gridH := len(g.T)*cellW, len(g.Layers)*cellH
	panelW := labelW + 16 + gridW
	for _, row := range rows {
		for _, p := range row {
			panelW = max(panelW, textWidth(text, p.title), textWidth(small, p.sub))
		}
	}
	tickW := max(textWidth(small, "100"), textWidth(small, "+100"))
	barBlock := max(16+barW+8+tickW+8, textWidth(small, "accuracy %")+16)
	panelH := 2*lineH + 36 + gridH + 12 + 2*13*int(small) + 16
	maxPanels := 0
	for _, row := range rows {
		maxPanels = max(maxPanels, len(row))
	}
	title := fmt.Sprintf("bench %s: model %s, %d px, seed %d, %d decisions", g.Layout, g.Model, g.Size, g.Seed, g.Total)
	var notes []string
	if g.Model == "builtin" {
		notes = append(notes, "The built-in model has no learned weights: this figure demonstrates the tool, not the method.")
	}
	notes = append(notes, "Accuracy % [95% Wilson interval]. * best of the panel; = not distinguishable from it (McNemar's exact test, p >= 0.05).")
	if hasDiff {
		notes = append(notes, "style - content: difference of accuracies [95% Newcombe interval].")
	}
	if !rep.Complete() {
		notes = append(notes, fmt.Sprintf("INCOMPLETE: %d of %d decisions x timesteps recorded.", rep.Records, rep.Expected))
	}
	headH := pad + 34 + len(notes)*28 + 16
	width := pad + maxPanels*(panelW+gap) + 2*barBlock + pad
	width = max(width, pad+textWidth(big, title)+pad)
	for _, n := range notes {
		width = max(width, pad+textWidth(small, n)+pad)
	}
	height := headH + len(rows)*(panelH+gap) + pad

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	black, grey := color.RGBA{0, 0, 0, 255}, color.RGBA{90, 90, 90, 255}
	drawText(img, big, pad, pad+30, title, black)
	for i, n := range notes {
		drawText(img, small, pad, pad+34+22+i*28, n, grey)
	}

	accNorm := func(v float64) float64 { return (v - aLo) / (aHi - aLo) }
	diffNorm := func(v float64) float64 { return 0.5 + v/(2*dMax) }
	for ri, row := range rows {
		y0 := headH + ri*(panelH+gap)
		x := pad
		drewAccBar := false
		for _, p := range row {
			if p.diff && !drewAccBar {
				drawText(img, small, x, y0+2*lineH+26, "accuracy %", grey)
				drawBar(img, acc, x, y0+2*lineH+36, barW, gridH, aLo, aHi, accNorm, small, false)
				x += barBlock
				drewAccBar = true
			}
			drawText(img, text, x, y0+26, p.title, black)
			drawText(img, small, x, y0+lineH+24, p.sub, grey)
			gx, gy := x+labelW+16, y0+2*lineH+36
			drawText(img, small, gx-16-textWidth(small, "layer"), gy-10, "layer", grey)
			for li, l := range g.Layers {
				cy := gy + li*cellH
				drawText(img, text, gx-16-textWidth(text, l.Label), cy+cellH/2+8, l.Label, black)
				for ti := range g.T {
					r := image.Rect(gx+ti*cellW, cy, gx+(ti+1)*cellW, cy+cellH)
					v, lo, hi, mark, ok := p.cell(li, ti)
					bg := color.RGBA{215, 215, 215, 255}
					val, ci := "n/a", ""
					if ok {
						if p.diff {
							bg = div.At(diffNorm(v))
						} else {
							bg = acc.At(accNorm(v))
						}
						val, ci = valText(p, v)+mark, ciText(p, lo, hi)
					}
					draw.Draw(img, r, image.NewUniform(bg), image.Point{}, draw.Src)
					ink := color.RGBA{255, 255, 255, 255}
					if 0.299*float64(bg.R)+0.587*float64(bg.G)+0.114*float64(bg.B) > 140 {
						ink = black
					}
					lh := 13 * int(small)
					top := r.Min.Y + (cellH-2*lh-6)/2 + 11*int(small)
					drawText(img, small, r.Min.X+(cellW-textWidth(small, val))/2, top, val, ink)
					if ci != "" {
						drawText(img, small, r.Min.X+(cellW-textWidth(small, ci))/2, top+lh+6, ci, ink)
					}
					if mark == "*" {
						outline(img, r.Inset(2), 4, ink)
					}
				}
			}
			// white grid lines keep neighbouring cells apart in print
			for ti := 0; ti <= len(g.T); ti++ {
				draw.Draw(img, image.Rect(gx+ti*cellW, gy, gx+ti*cellW+1, gy+gridH), image.White, image.Point{}, draw.Src)
			}
			for li := 0; li <= len(g.Layers); li++ {
				draw.Draw(img, image.Rect(gx, gy+li*cellH, gx+gridW, gy+li*cellH+1), image.White, image.Point{}, draw.Src)
			}
			lh := 13 * int(small)
			for ti, t := range g.T {
				cx := gx + ti*cellW
				tl := "t=" + strconv.Itoa(t)
				drawText(img, small, cx+(cellW-textWidth(small, tl))/2, gy+gridH+12+lh, tl, black)
				if g.Step[ti] != 0 {
					sl := "step " + strconv.Itoa(g.Step[ti])
					drawText(img, small, cx+(cellW-textWidth(small, sl))/2, gy+gridH+12+2*lh+4, sl, grey)
				}
			}
			x += panelW + gap
		}
		if !drewAccBar {
			drawText(img, small, x, y0+2*lineH+26, "accuracy %", grey)
			drawBar(img, acc, x, y0+2*lineH+36, barW, gridH, aLo, aHi, accNorm, small, false)
		} else {
			drawText(img, small, x, y0+2*lineH+26, "points", grey)
			drawBar(img, div, x, y0+2*lineH+36, barW, gridH, -dMax, dMax, diffNorm, small, true)
		}
	}
	return img
}

// drawBar draws a vertical colour bar from lo (bottom) to hi (top) with ticks in percent.
func drawBar(img *image.RGBA, cm heatmap.Colormap, x, y, w, h int, lo, hi float64, norm func(float64) float64, f face, signedTicks bool) {
	for i := 0; i < h; i++ {
		v := lo + (hi-lo)*(1-float64(i)/float64(max(h-1, 1)))
		draw.Draw(img, image.Rect(x, y+i, x+w, y+i+1), image.NewUniform(cm.At(norm(v))), image.Point{}, draw.Src)
	}
	black := color.RGBA{0, 0, 0, 255}
	for _, t := range heatmap.Ticks(float32(100*lo), float32(100*hi), 5) {
		v := float64(t) / 100
		ty := y + int(math.Round((1-norm(v))*float64(h-1)))
		draw.Draw(img, image.Rect(x+w-6, ty, x+w+4, ty+2), image.NewUniform(black), image.Point{}, draw.Src)
		label := strconv.FormatFloat(float64(t), 'f', -1, 32)
		if signedTicks && t > 0 {
			label = "+" + label
		}
		drawText(img, f, x+w+8, ty+7, label, black)
	}
}

func outline(img *image.RGBA, r image.Rectangle, w int, c color.Color) {
	u := image.NewUniform(c)
	draw.Draw(img, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+w), u, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(r.Min.X, r.Max.Y-w, r.Max.X, r.Max.Y), u, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(r.Min.X, r.Min.Y, r.Min.X+w, r.Max.Y), u, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(r.Max.X-w, r.Min.Y, r.Max.X, r.Max.Y), u, image.Point{}, draw.Src)
}

func signed(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if v >= 0 {
		return "+" + s
	}
	return s
}

func metricLabel(m string) string {
	switch m {
	case "aas":
		return "AAS"
	case "cos":
		return "feature cosine"
	case "mse":
		return "MSE"
	}
	return m
}

func setLabel(set string) string {
	switch set {
	case bench.SetStyle:
		return "A: same style, other content; B: other style, A's content"
	case bench.SetContent:
		return "A: same content, other style; B: other content, A's style"
	}
	return "all decisions"
}
