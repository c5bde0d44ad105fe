package ui

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/calibration"
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

// sweepData is what the sweep shows that the root owns.
type sweepData struct {
	scores   map[scoreKey][]api.LayerScore // the root's; read only
	metric   api.Metric
	layer, t int // what the explorer shows
	// baseline, when rescaled is set, colours and labels the cells with rescaled scores,
	// which compare across layers.
	baseline *calibration.Baseline
	rescaled bool
}

// sweepModel is a layer × timestep grid of scores, filled in as the background computes
// the timesteps, with its own cursor. Layers that cannot be scored (cross-attention on
// text) are left out, as in the layer list.
type sweepModel struct {
	st            Styles
	keys          sweepKeyMap
	width, height int
	layers        []api.Layer
	ts            []int
	d             sweepData
	row, col      int // the cursor: layer index, index into ts
	labels        sweepLabels
}

// sweepLabels are the sweep's words where its grid shows something else than a pair's scores
// (a benchmark's accuracy); a zero title keeps the sweep's own.
type sweepLabels struct {
	title string   // "sweep"
	what  string   // "AAS (higher = more similar) · layer × timestep"
	ramp  string   // the words beside the colour ramp: "less → more similar"
	notes []string // the legend's notes: "· not computed", …
}

func newSweep(st Styles, layers []api.Layer, ts []int) sweepModel {
	return sweepModel{st: st, keys: defaultSweepKeys(), layers: layers, ts: ts}
}

func (p *sweepModel) SetSize(w, h int)    { p.width, p.height = w, h }
func (p *sweepModel) SetStyles(st Styles) { p.st = st }

// SetData gives the sweep the scores to draw and the view the explorer shows.
func (p *sweepModel) SetData(d sweepData) { p.d = d }

func (p sweepModel) ShortHelp() []key.Binding  { return p.keys.ShortHelp() }
func (p sweepModel) FullHelp() [][]key.Binding { return p.keys.FullHelp() }

// Timesteps are the sweep's timesteps (a copy).
func (p sweepModel) Timesteps() []int { return slices.Clone(p.ts) }

// Focus puts the cursor on the explorer's layer and the grid's timestep nearest its t.
func (p *sweepModel) Focus() {
	p.row = min(max(p.d.layer, 0), max(len(p.layers)-1, 0))
	p.col = 0
	for i, t := range p.ts {
		if abs(t-p.d.t) < abs(p.ts[p.col]-p.d.t) {
			p.col = i
		}
	}
}

// visible are the layers the grid has rows for: the scorable ones and the explorer's.
func (p sweepModel) visible() []int {
	var out []int
	for i, l := range p.layers {
		if scorable(l) || i == p.d.layer || i == p.row {
			out = append(out, i)
		}
	}
	return out
}

// Update moves the cursor by keys and clicks (in the sweep's own coordinates): Enter, or a
// second click on the cursor's cell, shows that layer and t.
func (p sweepModel) Update(msg tea.Msg) (sweepModel, tea.Cmd) {
	if mc, ok := msg.(tea.MouseClickMsg); ok {
		layer, col, ok := p.cellAt(mc.X, mc.Y)
		if !ok || mc.Button != tea.MouseLeft {
			return p, nil
		}
		if p.row == layer && p.col == col {
			j := sweepJumpMsg{layer: layer, t: p.ts[col]}
			return p, func() tea.Msg { return j }
		}
		p.row, p.col = layer, col
		return p, nil
	}
	km, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return p, nil
	}
	k := p.keys
	switch {
	case key.Matches(km, k.Up):
		p.row = nextScorable(p.layers, p.row, -1)
	case key.Matches(km, k.Down):
		p.row = nextScorable(p.layers, p.row, 1)
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
	nameW = 4
	for _, i := range p.visible() {
		nameW = max(nameW, ansi.StringWidth(listName(p.layers[i])))
	}
	nameW = min(nameW, sweepNameW)
	cellW = max((p.width-nameW-2)/max(len(p.ts), 1), 2)
	rowH = max((p.height-sweepHeadH-sweepFootH)/max(len(p.visible()), 1), 1)
	return nameW, cellW, rowH
}

// window returns the first visible row shown and how many fit, keeping the cursor in view.
func (p sweepModel) window() (off, rows int) {
	_, _, rowH := p.geometry()
	vis := p.visible()
	rows = max((p.height-sweepHeadH-sweepFootH)/rowH, 1)
	cur := max(slices.Index(vis, p.row), 0)
	off = min(max(cur-rows/2, 0), max(len(vis)-rows, 0))
	return off, rows
}

// value is what cell (layer i, timestep t) shows: the score, or its rescaled value; ok is
// false when there is none.
func (p sweepModel) value(i, t int, s api.LayerScore) (float64, bool) {
	if s.Meaningless || math.IsNaN(s.Score) {
		return 0, false
	}
	if !p.rescaledOn() {
		return s.Score, true
	}
	c, ok := p.d.baseline.Calibrate(i, t, string(p.d.metric), s.Score)
	if !ok || math.IsNaN(c.Rescaled) {
		return 0, false
	}
	return c.Rescaled, true
}

func (p sweepModel) rescaledOn() bool { return p.d.rescaled && p.d.baseline != nil }

// scoreRange is the finite range of the scores computed so far, and how many of the
// grid's timesteps have them.
func (p sweepModel) scoreRange() (lo, hi float64, done int) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, t := range p.ts {
		s, ok := p.d.scores[scoreKey{t, p.d.metric}]
		if !ok {
			continue
		}
		done++
		for i, x := range s {
			if v, ok := p.value(i, t, x); ok {
				lo, hi = min(lo, v), max(hi, v)
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
	if p.rescaledOn() {
		dec = 2
	}
	cm := heatmap.Viridis()
	higher := p.rescaledOn() || p.d.metric.HigherIsMoreSimilar()
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
	b.WriteString(" " + p.header(done) + "\n")
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
	vis := p.visible()
	for _, i := range vis[off:min(off+rows, len(vis))] {
		l := p.layers[i]
		for r := range rowH {
			name := strings.Repeat(" ", nameW)
			mark := " "
			if r == mid {
				name = padRight(ellipsize(listName(l), nameW), nameW)
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
				s, ok := p.d.scores[scoreKey{t, p.d.metric}]
				var v float64
				has := false
				if ok && i < len(s) {
					v, has = p.value(i, t, s[i])
				}
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
				case !has:
					txt := ""
					if r == mid {
						txt = " n/a"
						if cursor {
							txt = "[n/a]"
						}
					}
					b.WriteString(st.Meaningless.Render(padRight(fitWords(txt, cellW), cellW)))
				default:
					b.WriteString(cell(v, cursor, i == p.d.layer && t == p.d.t, r))
				}
			}
			b.WriteByte('\n')
		}
	}
	return block(b.String(), p.width, p.height-sweepFootH) + "\n" + p.legend(lo, hi, dec)
}

// header is the title line: what the cells show, how far the background got, where the
// cursor is; the less needed parts go first when the line is short.
func (p sweepModel) header(done int) string {
	st := p.st
	if p.labels.title != "" {
		s := "  " + p.labels.what
		if p.row >= 0 && p.row < len(p.layers) && p.col >= 0 && p.col < len(p.ts) {
			s += fmt.Sprintf(" · cursor %s t=%d", listName(p.layers[p.row]), p.ts[p.col])
		}
		return ansi.Truncate(st.PanelTitle.Render(p.labels.title)+st.Dim.Render(s), p.width-1, "…")
	}
	what := metricName(p.d.metric)
	dir, short := direction(p.d.metric), directionIn(p.d.metric, 0)
	if p.rescaledOn() {
		what += " rescaled"
		dir, short = "higher = more similar", "↑ similar"
	}
	progress := fmt.Sprintf(" · %d/%d timesteps computed", done, len(p.ts))
	cursor := ""
	if p.row >= 0 && p.row < len(p.layers) && p.col >= 0 && p.col < len(p.ts) {
		cursor = fmt.Sprintf(" · cursor %s t=%d", listName(p.layers[p.row]), p.ts[p.col])
	}
	hidden := ""
	if n := len(p.layers) - len(p.visible()); n > 0 {
		hidden = fmt.Sprintf(" · %d text cross-attention layers hidden", n)
	}
	for _, parts := range [][]string{
		{"  ", what, " (", dir, ") · layer × timestep", progress, cursor, hidden},
		{"  ", what, " (", dir, ") · layer × timestep", progress, cursor},
		{"  ", what, " (", dir, ") · layer × timestep", progress},
		{"  ", what, " ", short, " · layer × timestep", fmt.Sprintf(" · %d/%d t", done, len(p.ts))},
		{"  ", what, " ", short, fmt.Sprintf(" · %d/%d t", done, len(p.ts))},
		{"  ", what},
	} {
		s := strings.Join(parts, "")
		if len("sweep")+ansi.StringWidth(s) <= p.width-1 {
			return st.PanelTitle.Render("sweep") + st.Dim.Render(s)
		}
	}
	return st.PanelTitle.Render("sweep")
}

// legend is a colour ramp with real numbers under it: the ends and three ticks between,
// and what the marks mean, as much as fits.
func (p sweepModel) legend(lo, hi float64, dec int) string {
	st := p.st
	notes := []string{"· not computed", "n/a no image information", "◆ shown"}
	rampWords := "less → more similar"
	if p.labels.title != "" {
		notes, rampWords = p.labels.notes, p.labels.ramp
	}
	if !(hi >= lo) {
		return block(" "+st.Dim.Render(fitNotes("computing…", notes, p.width-1)), p.width, sweepFootH)
	}
	w := min(max(p.width-30, 20), 60)
	cm := heatmap.Viridis()
	higher := p.rescaledOn() || p.d.metric.HigherIsMoreSimilar()
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
	room := p.width - 9 - w - 1
	line1 := strings.Repeat(" ", 9) + ramp.String() + " " + st.Dim.Render(fitNotes(rampWords, nil, room))
	line2 := st.Dim.Render(" " + strings.TrimRight(string(labels), " "))
	if rest := p.width - ansi.StringWidth(line2) - 2; rest > 10 {
		line2 += "  " + st.Dim.Render(fitNotes("", notes, rest))
	}
	return block(line1+"\n"+line2, p.width, sweepFootH)
}

// fitNotes joins head and as many of notes as fit in w columns, whole, with " · ".
func fitNotes(head string, notes []string, w int) string {
	out := head
	if ansi.StringWidth(out) > w {
		return fitWords(out, w)
	}
	for _, n := range notes {
		next := n
		if out != "" {
			next = out + " · " + n
		}
		if ansi.StringWidth(next) > w {
			break
		}
		out = next
	}
	return out
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
	vis := p.visible()
	if r >= rows || off+r >= len(vis) || c >= len(p.ts) {
		return 0, 0, false
	}
	return vis[off+r], c, true
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
