package ui

import (
	"fmt"
	"math"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/heatmap"
)

// sweepJumpMsg asks the explorer to show layer and t (Enter on a sweep cell, or a click).
type sweepJumpMsg struct{ layer, t int }

// closeViewMsg asks the root to go back to the main view (Esc in a sub-view).
type closeViewMsg struct{}

// sweepKeyMap are the sweep's own keys: arrows move its cursor, not the token's.
type sweepKeyMap struct {
	Up, Down, Left, Right, Home, End, Jump, Close key.Binding
}

func defaultSweepKeys() sweepKeyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return sweepKeyMap{
		Up:    b([]string{"up", "k"}, "↑/k", "layer up"),
		Down:  b([]string{"down", "j"}, "↓/j", "layer down"),
		Left:  b([]string{"left", "h"}, "←/h", "t earlier"),
		Right: b([]string{"right", "l"}, "→/l", "t later"),
		Home:  b([]string{"home"}, "home", "first t"),
		End:   b([]string{"end"}, "end", "last t"),
		Jump:  b([]string{"enter"}, "enter", "show this layer and t"),
		Close: b([]string{"esc", "w"}, "esc/w", "back"),
	}
}

func (k sweepKeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Jump, k.Close, k.Up, k.Down, k.Left, k.Right}
}

func (k sweepKeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.Up, k.Down, k.Left, k.Right}, {k.Home, k.End, k.Jump, k.Close}}
}

// sweepModel is a layer × timestep grid of scores, filled in as the background computes
// the timesteps, with its own cursor.
type sweepModel struct {
	st            Styles
	keys          sweepKeyMap
	width, height int
	layers        []api.Layer
	ts            []int
	scores        map[scoreKey][]api.LayerScore // the root's; read only
	metric        api.Metric
	layer, t      int // what the explorer shows
	row, col      int // the cursor: layer index, index into ts
}

func newSweep(st Styles, layers []api.Layer, ts []int) sweepModel {
	return sweepModel{st: st, keys: defaultSweepKeys(), layers: layers, ts: ts}
}

func (p *sweepModel) SetSize(w, h int) { p.width, p.height = w, h }

// SetData gives the sweep the scores to draw and the view the explorer shows.
func (p *sweepModel) SetData(scores map[scoreKey][]api.LayerScore, metric api.Metric, layer, t int) {
	p.scores, p.metric, p.layer, p.t = scores, metric, layer, t
}

// Focus puts the cursor on the explorer's layer and the grid's timestep nearest its t.
func (p *sweepModel) Focus() {
	p.row = min(max(p.layer, 0), max(len(p.layers)-1, 0))
	p.col = 0
	for i, t := range p.ts {
		if abs(t-p.t) < abs(p.ts[p.col]-p.t) {
			p.col = i
		}
	}
}

func (p sweepModel) Update(msg tea.Msg) (sweepModel, tea.Cmd) {
	km, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return p, nil
	}
	k := p.keys
	switch {
	case key.Matches(km, k.Up):
		p.row = max(p.row-1, 0)
	case key.Matches(km, k.Down):
		p.row = min(p.row+1, len(p.layers)-1)
	case key.Matches(km, k.Left):
		p.col = max(p.col-1, 0)
	case key.Matches(km, k.Right):
		p.col = min(p.col+1, len(p.ts)-1)
	case key.Matches(km, k.Home):
		p.col = 0
	case key.Matches(km, k.End):
		p.col = len(p.ts) - 1
	case key.Matches(km, k.Jump):
		if p.row < 0 || p.row >= len(p.layers) || p.col < 0 || p.col >= len(p.ts) {
			return p, nil
		}
		j := sweepJumpMsg{layer: p.row, t: p.ts[p.col]}
		return p, func() tea.Msg { return j }
	case key.Matches(km, k.Close):
		return p, func() tea.Msg { return closeViewMsg{} }
	}
	return p, nil
}

// Geometry. The grid fills the view: a name column, then equal cells across; rows as tall
// as the height allows, so a short list of layers (the built-in model has three) still
// fills the window.
const (
	sweepNameW = 16
	sweepHeadH = 2 // title and timestep header
	sweepFootH = 2 // legend and its labels
)

func (p sweepModel) geometry() (nameW, cellW, rowH int) {
	nameW = sweepNameW
	cellW = max((p.width-nameW-2)/max(len(p.ts), 1), 2)
	rowH = max((p.height-sweepHeadH-sweepFootH)/max(len(p.layers), 1), 1)
	return nameW, cellW, rowH
}

// window returns the first layer shown and how many fit, keeping the cursor in view.
func (p sweepModel) window() (off, rows int) {
	_, _, rowH := p.geometry()
	rows = max((p.height-sweepHeadH-sweepFootH)/rowH, 1)
	off = min(max(p.row-rows/2, 0), max(len(p.layers)-rows, 0))
	return off, rows
}

// scoreRange is the finite range of the scores computed so far, and how many of the
// grid's timesteps have them.
func (p sweepModel) scoreRange() (lo, hi float64, done int) {
	lo, hi = math.Inf(1), math.Inf(-1)
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
	return lo, hi, done
}

// decimals is how many decimals tell the values of a range apart (at least 2, at most 5).
func decimals(lo, hi float64) int {
	span := hi - lo
	if !(span > 0) {
		return 3
	}
	return min(max(int(math.Ceil(-math.Log10(span)))+2, 2), 5)
}

func (p sweepModel) View() string {
	st := p.st
	nameW, cellW, rowH := p.geometry()
	lo, hi, done := p.scoreRange()
	dec := decimals(lo, hi)
	cm := heatmap.Viridis()
	higher := p.metric.HigherIsMoreSimilar()
	frac := func(v float64) float64 {
		f := 0.5
		if hi > lo {
			f = (v - lo) / (hi - lo)
		}
		if !higher {
			f = 1 - f // bright = similar, whatever the metric
		}
		return f
	}
	mid := (rowH - 1) / 2
	cell := func(v float64, cursor, shown bool, r int) string {
		f := frac(v)
		text := ""
		if r == mid {
			switch {
			case cursor:
				if num := fitNumber(v, dec, cellW-2); num != "" {
					text = "[" + num + "]"
				} else if num := fitNumber(v, dec, cellW-1); num != "" {
					text = "▸" + num
				} else {
					text = "▸"
				}
			default:
				if num := fitNumber(v, dec, cellW-1); num != "" {
					text = " " + num
				}
			}
			if shown && text == "" {
				text = " ◆"
			} else if shown && len(text)+1 < cellW {
				text += "◆"
			}
		}
		return st.SweepCell(cm.At(f), f > 0.6, cursor && r == mid).Render(padRight(text, cellW))
	}
	var b strings.Builder
	head := st.PanelTitle.Render("sweep") + st.Dim.Render(fmt.Sprintf("  %s (%s) · layer × timestep · %d/%d timesteps computed",
		metricName(p.metric), direction(p.metric), done, len(p.ts)))
	if p.row >= 0 && p.row < len(p.layers) && p.col >= 0 && p.col < len(p.ts) {
		head += st.Dim.Render(fmt.Sprintf(" · cursor %s t=%d", shortName(p.layers[p.row]), p.ts[p.col]))
	}
	b.WriteString(" " + ansi.Truncate(head, p.width-1, "…") + "\n")
	b.WriteString(" " + strings.Repeat(" ", nameW+1))
	for i, t := range p.ts {
		label := fmt.Sprint(t)
		if len(label) >= cellW && i%2 == 1 && i != p.col {
			label = "" // narrow cells: every other label, so they do not run together
		}
		c := padRight(" "+label, cellW)
		switch {
		case i == p.col:
			b.WriteString(st.Selected.Render(c))
		default:
			b.WriteString(st.Dim.Render(c))
		}
	}
	b.WriteByte('\n')
	off, rows := p.window()
	for i := off; i < min(off+rows, len(p.layers)); i++ {
		l := p.layers[i]
		for r := range rowH {
			name := strings.Repeat(" ", nameW)
			mark := " "
			if r == mid {
				name = padRight(ansi.Truncate(shortName(l), nameW, "…"), nameW)
				if i == p.row {
					mark = "▸"
				}
			}
			if i == p.row {
				b.WriteString(st.Selected.Render(mark + name))
			} else {
				b.WriteString(" " + st.Value.Render(name))
			}
			b.WriteByte(' ')
			for c, t := range p.ts {
				cursor := i == p.row && c == p.col
				s, ok := p.scores[scoreKey{t, p.metric}]
				switch {
				case !ok || i >= len(s):
					txt := ""
					if r == mid {
						txt = " ·"
						if cursor {
							txt = "[·]"
						}
					}
					b.WriteString(st.Dim.Render(padRight(txt, cellW)))
				case s[i].Meaningless:
					txt := ""
					if r == mid {
						txt = " n/a"
						if cursor {
							txt = "[n/a]"
						}
					}
					b.WriteString(st.Meaningless.Render(padRight(ansi.Truncate(txt, cellW, ""), cellW)))
				default:
					b.WriteString(cell(s[i].Score, cursor, i == p.layer && t == p.t, r))
				}
			}
			b.WriteByte('\n')
		}
	}
	return block(b.String(), p.width, p.height-sweepFootH) + "\n" + p.legend(lo, hi, dec)
}

// legend is a colour ramp with real numbers under it: the ends and three ticks between.
func (p sweepModel) legend(lo, hi float64, dec int) string {
	st := p.st
	if !(hi >= lo) {
		return block(st.Dim.Render(" computing… · not computed · n/a no image information"), p.width, sweepFootH)
	}
	w := min(max(p.width-30, 20), 60)
	cm := heatmap.Viridis()
	higher := p.metric.HigherIsMoreSimilar()
	var ramp strings.Builder
	for i := range w {
		ramp.WriteString(st.Swatch(cm.At(float64(i) / float64(w-1))).Render(" "))
	}
	// value at ramp column c: the ramp runs from least to most similar
	at := func(c int) float64 {
		f := float64(c) / float64(w-1)
		if higher {
			return lo + f*(hi-lo)
		}
		return hi - f*(hi-lo)
	}
	labels := []byte(strings.Repeat(" ", w+2*8))
	put := func(c int, s string) {
		c += 8 - len(s)/2
		c = min(max(c, 0), len(labels)-len(s))
		copy(labels[c:], s)
	}
	for _, c := range []int{0, (w - 1) / 4, (w - 1) / 2, 3 * (w - 1) / 4, w - 1} {
		put(c, fmt.Sprintf("%.*f", dec, at(c)))
	}
	note := " less similar → more similar · · not computed · n/a no image information"
	line1 := strings.Repeat(" ", 9) + ramp.String() + st.Dim.Render(note)
	line2 := st.Dim.Render(" " + string(labels))
	return block(line1+"\n"+line2, p.width, sweepFootH)
}

// cellAt returns the layer and index into ts under (x, y) relative to the view, if any.
func (p sweepModel) cellAt(x, y int) (layer, col int, ok bool) {
	nameW, cellW, rowH := p.geometry()
	off, rows := p.window()
	if y < sweepHeadH || x < nameW+2 {
		return 0, 0, false
	}
	r := (y - sweepHeadH) / rowH
	c := (x - nameW - 2) / cellW
	if r >= rows || off+r >= len(p.layers) || c >= len(p.ts) {
		return 0, 0, false
	}
	return off + r, c, true
}

// fitNumber formats v in at most w columns: with dec decimals, or fewer (down to two), or
// without the leading zero (".974"); "" when nothing fits.
func fitNumber(v float64, dec, w int) string {
	for d := dec; d >= 2; d-- {
		s := fmt.Sprintf("%.*f", d, v)
		if len(s) <= w {
			return s
		}
		if t := strings.Replace(s, "0.", ".", 1); strings.HasPrefix(s, "0.") || strings.HasPrefix(s, "-0.") {
			if len(t) <= w {
				return t
			}
		}
	}
	return ""
}

// padRight pads plain text s with spaces to w columns (or cuts it).
func padRight(s string, w int) string {
	n := ansi.StringWidth(s)
	if n >= w {
		return ansi.Truncate(s, w, "")
	}
	return s + strings.Repeat(" ", w-n)
}
