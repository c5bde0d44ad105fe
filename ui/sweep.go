package ui

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/session"
)

// sweepView is a layer × timestep heatmap of scores, filled in as the background computes
// the timesteps.
type sweepView struct {
	st            Styles
	width, height int
	layers        []features.Layer
	ts            []int
	scores        map[scoreKey][]session.LayerScore
	metric        session.Metric
	layer, t      int
}

func (p *sweepView) SetSize(w, h int) { p.width, p.height = w, h }

// geometry sizes the grid: cells as wide as fit (2–5 columns) and, when the layers are
// few, up to 3 rows tall, so a short list still reads as a heatmap.
func (p sweepView) geometry() (nameW, cellW, rowH int) {
	nameW = 16
	cellW = min(max((p.width-nameW-3)/max(len(p.ts), 1), 2), 5)
	rowH = min(max((p.height-4)/max(len(p.layers), 1), 1), 3)
	return nameW, cellW, rowH
}

// window returns the first layer shown and how many fit.
func (p sweepView) window() (off, rows int) {
	_, _, rowH := p.geometry()
	rows = max((p.height-4)/rowH, 1)
	off = min(max(p.layer-rows/2, 0), max(len(p.layers)-rows, 0))
	return off, rows
}

func (p sweepView) View() string {
	st := p.st
	nameW, cellW, rowH := p.geometry()
	lo, hi := math.Inf(1), math.Inf(-1)
	done := 0
	for _, t := range p.ts {
		s, ok := p.scores[scoreKey{t, p.metric}]
		if !ok {
			continue
		}
		done++
		for _, x := range s {
			if !x.Meaningless && !math.IsNaN(x.Score) {
				lo, hi = min(lo, x.Score), max(hi, x.Score)
			}
		}
	}
	cm := heatmap.Viridis()
	colour := func(v float64, here bool) string {
		f := 0.5
		if hi > lo {
			f = (v - lo) / (hi - lo)
		}
		if !p.metric.HigherIsMoreSimilar() {
			f = 1 - f // bright = similar, whatever the metric
		}
		if here {
			// the view's own layer and t: a mark in the colour's opposite lightness
			mark := color.Color(color.White)
			if f > 0.6 {
				mark = color.Black
			}
			return st.Swatch(cm.At(f)).Foreground(mark).Render(fmt.Sprintf("%-*s", cellW, " ◆"))
		}
		return st.Swatch(cm.At(f)).Render(strings.Repeat(" ", cellW))
	}
	var b strings.Builder
	title := st.PanelTitle.Render("sweep") + st.Dim.Render(fmt.Sprintf("  %s · layer × timestep · %d/%d timesteps computed", metricName(p.metric), done, len(p.ts)))
	b.WriteString(" " + title + "\n")
	// header: timesteps
	// header: the timesteps that fit, the current one highlighted
	b.WriteString(" " + strings.Repeat(" ", nameW+1))
	for i, t := range p.ts {
		label := ""
		if i%2 == 0 || cellW >= 4 || t == p.t {
			label = fmt.Sprint(t)
		}
		cell := fmt.Sprintf("%-*s", cellW, label)
		if len(label) > cellW {
			cell = label[:cellW]
		}
		if t == p.t {
			b.WriteString(st.Selected.Render(cell))
		} else {
			b.WriteString(st.Dim.Render(cell))
		}
	}
	b.WriteByte('\n')
	off, rows := p.window()
	for i := off; i < min(off+rows, len(p.layers)); i++ {
		l := p.layers[i]
		for r := range rowH {
			name := strings.Repeat(" ", nameW)
			if r == (rowH-1)/2 {
				name = fmt.Sprintf("%-*s", nameW, ansi.Truncate(shortName(l), nameW, "…"))
			}
			if i == p.layer {
				mark := " "
				if r == (rowH-1)/2 {
					mark = "▸"
				}
				b.WriteString(st.Selected.Render(mark + name))
			} else {
				b.WriteString(" " + st.Value.Render(name))
			}
			b.WriteByte(' ')
			for _, t := range p.ts {
				s, ok := p.scores[scoreKey{t, p.metric}]
				switch {
				case !ok || i >= len(s):
					b.WriteString(st.Dim.Render(fmt.Sprintf("%-*s", cellW, " ·")))
				case s[i].Meaningless:
					b.WriteString(st.Meaningless.Render(fmt.Sprintf("%-*s", cellW, " –")))
				default:
					b.WriteString(colour(s[i].Score, i == p.layer && t == p.t && r == (rowH-1)/2))
				}
			}
			b.WriteByte('\n')
		}
	}
	// legend
	leg := ""
	if hi >= lo {
		var sw strings.Builder
		for i := range 16 {
			f := float64(i) / 15
			sw.WriteString(st.Swatch(cm.At(f)).Render(" "))
		}
		a, z := lo, hi
		if !p.metric.HigherIsMoreSimilar() {
			a, z = hi, lo
		}
		leg = st.Dim.Render(fmt.Sprintf(" %.3f ", a)) + sw.String() + st.Dim.Render(fmt.Sprintf(" %.3f  (bright = more similar) · – no image information · · not computed", z))
	} else {
		leg = st.Dim.Render(" computing… · not computed")
	}
	return block(b.String(), p.width, p.height-1) + "\n" + block(leg, p.width, 1)
}

// cellAt returns the layer and timestep under (x, y) relative to the view, if any.
func (p sweepView) cellAt(x, y int) (layer, t int, ok bool) {
	nameW, cellW, rowH := p.geometry()
	off, rows := p.window()
	if y < 2 || x < nameW+2 {
		return 0, 0, false
	}
	r := (y - 2) / rowH
	c := (x - nameW - 2) / cellW
	if r >= rows || off+r >= len(p.layers) || c >= len(p.ts) {
		return 0, 0, false
	}
	return off + r, p.ts[c], true
}
