package ui

import (
	"fmt"
	"math"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/calibration"
)

// barScale is what the layer bars' length measures against.
type barScale int

const (
	// scaleRelative spans the layers' own range at this t, so close scores still differ.
	scaleRelative barScale = iota
	// scaleAbsolute spans the metric's natural range (0–1 for cosines; 0–max for MSE), so
	// 0.9897 and 0.9902 look as alike as they are.
	scaleAbsolute
	barScales
)

func (s barScale) String() string { return [...]string{"relative", "absolute"}[s] }

// layerSelectMsg asks the root to show layer i (a click on the list, or the wheel over it).
type layerSelectMsg struct{ layer int }

// layersKeyMap are the layer list's own keys.
type layersKeyMap struct{ Scale key.Binding }

func defaultLayersKeys() layersKeyMap {
	return layersKeyMap{Scale: key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "bar scale"))}
}

func (k layersKeyMap) ShortHelp() []key.Binding  { return []key.Binding{k.Scale} }
func (k layersKeyMap) FullHelp() [][]key.Binding { return [][]key.Binding{{k.Scale}} }

// layerData is what the layer list shows that the root owns.
type layerData struct {
	scores   []api.LayerScore // at t under metric; nil: not computed yet
	selected int
	t        int
	metric   api.Metric
	// baseline, when rescaled is set, turns the bars into rescaled scores (0 = a typical
	// unrelated pair, 1 = identical), which compare across layers.
	baseline *calibration.Baseline
	rescaled bool
}

// layerList lists the layers with their scores at the current timestep as bars over a
// labelled axis. Bars grow with similarity whatever the metric's direction. Layers that
// cannot be scored (cross-attention on text: every pair scores 1) are folded into one line
// at the end unless selected, so a U-Net's 32 layers list as its 16 that mean something.
// It owns its scale and scrolling, and answers clicks and the wheel with a layerSelectMsg;
// the root owns which layer is selected, since every other view depends on it.
type layerList struct {
	st            Styles
	keys          layersKeyMap
	width, height int
	layers        []api.Layer
	d             layerData
	scale         barScale
}

func newLayerList(st Styles, layers []api.Layer) layerList {
	return layerList{st: st, keys: defaultLayersKeys(), layers: layers}
}

func (p *layerList) SetSize(w, h int)    { p.width, p.height = w, h }
func (p *layerList) SetStyles(st Styles) { p.st = st }

// SetData gives the list the scores at the shown timestep and the selected layer.
func (p *layerList) SetData(d layerData) { p.d = d }

func (p layerList) ShortHelp() []key.Binding  { return p.keys.ShortHelp() }
func (p layerList) FullHelp() [][]key.Binding { return p.keys.FullHelp() }

// scorable reports whether layer l carries image information in its keys and values.
func scorable(l api.Layer) bool { return l.ImageKV }

// visible are the layers listed, in order: the scorable ones and the selected one.
func (p layerList) visible() []int {
	var out []int
	for i, l := range p.layers {
		if scorable(l) || i == p.d.selected {
			out = append(out, i)
		}
	}
	return out
}

// folded is how many layers are folded into the last line.
func (p layerList) folded() int { return len(p.layers) - len(p.visible()) }

// Update takes the list's key, and mouse events in the list's own coordinates.
func (p layerList) Update(msg tea.Msg) (layerList, tea.Cmd) {
	sel := func(i int) tea.Cmd {
		if i < 0 || i >= len(p.layers) || i == p.d.selected {
			return nil
		}
		return func() tea.Msg { return layerSelectMsg{i} }
	}
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		if key.Matches(msg, p.keys.Scale) {
			p.scale = (p.scale + 1) % barScales
		}
	case tea.MouseClickMsg:
		if msg.Button == tea.MouseLeft {
			return p, sel(p.layerAt(msg.Y))
		}
	case tea.MouseWheelMsg:
		switch msg.Button {
		case tea.MouseWheelUp:
			return p, sel(nextScorable(p.layers, p.d.selected, -1))
		case tea.MouseWheelDown:
			return p, sel(nextScorable(p.layers, p.d.selected, 1))
		}
	}
	return p, nil
}

// nextScorable is the next layer from i in direction dir (±1) that can be scored, or i
// when there is none.
func nextScorable(layers []api.Layer, i, dir int) int {
	for j := i + dir; j >= 0 && j < len(layers); j += dir {
		if scorable(layers[j]) {
			return j
		}
	}
	return i
}

// layerListHead is the rows above the first layer: border, title, axis.
const layerListHead = 3

// window returns the first visible row shown and how many rows of layers fit, keeping the
// selection in view.
func (p layerList) window() (offset, rows int) {
	vis := p.visible()
	rows = max(p.height-layerListHead-1, 1)
	if p.folded() > 0 && len(vis) < rows {
		rows = len(vis) // the fold line goes under the last layer
	}
	sel := 0
	for k, i := range vis {
		if i == p.d.selected {
			sel = k
		}
	}
	offset = min(max(sel-rows/2, 0), max(len(vis)-rows, 0))
	return offset, rows
}

// layerAt returns the layer on screen row y of the panel (relative to its top), or -1.
func (p layerList) layerAt(y int) int {
	off, rows := p.window()
	vis := p.visible()
	i := y - layerListHead
	if i < 0 || i >= rows || off+i >= len(vis) {
		return -1
	}
	return vis[off+i]
}

// value is what layer i's bar shows: its score, or its rescaled score; ok is false when
// there is none (not computed, no image information, no baseline cell).
func (p layerList) value(i int) (float64, bool) {
	if i >= len(p.d.scores) || p.d.scores[i].Meaningless || math.IsNaN(p.d.scores[i].Score) {
		return 0, false
	}
	s := p.d.scores[i].Score
	if !p.rescaledOn() {
		return s, true
	}
	c, ok := p.d.baseline.Calibrate(i, p.d.t, string(p.d.metric), s)
	if !ok || math.IsNaN(c.Rescaled) {
		return 0, false
	}
	return c.Rescaled, true
}

func (p layerList) rescaledOn() bool { return p.d.rescaled && p.d.baseline != nil }

// higher is the direction of what the bars show: rescaled scores are higher-is-similar.
func (p layerList) higher() bool { return p.rescaledOn() || p.d.metric.HigherIsMoreSimilar() }

// scoreRange is the range of the values shown (lo > hi when there are none).
func (p layerList) scoreRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i := range p.d.scores {
		if v, ok := p.value(i); ok {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	return lo, hi
}

// axis returns the score range the bars span: the left end (least similar) and the right
// end (most similar).
func (p layerList) axis() (left, right float64, ok bool) {
	lo, hi := p.scoreRange()
	if !(hi >= lo) {
		return 0, 0, false
	}
	higher := p.higher()
	if p.scale == scaleAbsolute {
		if higher {
			lo, hi = min(lo, 0), max(hi, 1) // cosines, AAS and rescaled scores: 1 is identical
		} else {
			lo = 0 // MSE: 0 is identical
		}
	} else if hi-lo < 1e-9 {
		lo, hi = lo-0.5e-3, hi+0.5e-3
	}
	if higher {
		return lo, hi, true
	}
	return hi, lo, true
}

// listName is a layer's name in the list: the paper's short name (Up0, Down1.x), else its
// module path without the parts every U-Net layer repeats.
func listName(l api.Layer) string {
	if l.Short != "" {
		return l.Short
	}
	n := shortName(l)
	n = strings.Replace(n, ".0.attn", ".attn", 1) // transformer_blocks.0: SD 1.5 has one per block
	switch {
	case strings.HasSuffix(n, ".attn1"):
		n = strings.TrimSuffix(n, ".attn1")
	case strings.HasSuffix(n, ".attn2"):
		n = strings.TrimSuffix(n, ".attn2") + ".x"
	}
	return n
}

func (p layerList) View() string {
	st := p.st
	inner := p.width - 4
	lines := []string{p.header(inner)}
	vis := p.visible()
	left, right, ok := p.axis()
	lo, hi := p.scoreRange()
	vdec := 3 // the values: as many decimals as tell them apart
	if hi > lo {
		vdec = max(decimals(lo, hi), 3)
	}
	if p.rescaledOn() {
		vdec = 2
	}
	valW := 0
	for _, i := range vis {
		if v, ok := p.value(i); ok {
			valW = max(valW, len(fmt.Sprintf("%.*f", vdec, v)))
		}
	}
	// Names as long as the longest, leaving the bars at least four cells.
	nameW := 0
	for _, i := range vis {
		nameW = max(nameW, ansi.StringWidth(listName(p.layers[i])))
	}
	nameW = max(min(nameW, inner-2-1-1-valW-4), 4)
	barW := max(inner-2-nameW-1-1-valW, 3)
	frac := func(v float64) float64 { return (v - left) / (right - left) }
	axis := st.Dim.Render(strings.Repeat(" ", 2+nameW+1) + "scores not computed yet")
	if ok {
		// The axis under the bars: its ends, and which way is more similar.
		dec := max(decimals(min(left, right), max(left, right)), 3)
		if p.rescaledOn() {
			dec = 2
		}
		// The number under the bars' left end, the one at the right edge, and the scale and
		// the direction between them; fewer decimals rather than numbers cut or run together.
		lead := 2 + nameW + 1
		l, r := "", ""
		for d := dec; d >= 2; d-- {
			l, r = fmt.Sprintf("%.*f", d, left), fmt.Sprintf("%.*f", d, right)
			if l != r && lead+len(l)+1+len(r) <= inner {
				break
			}
			l, r = "", ""
		}
		mid := max(inner-lead-len(l)-len(r)-1, 0)
		sc := p.scale.String()
		arrow := firstFit(mid-1, sc+" scale · more similar →", sc+" · more similar →", "more similar →", sc+" →", "→")
		axis = strings.Repeat(" ", lead) + st.Label.Render(l) + " " +
			st.Dim.Render(padRight(arrow, mid)) + st.Label.Render(r)
	}
	lines = append(lines, ansi.Truncate(axis, inner, ""))
	off, rows := p.window()
	for k := off; k < min(off+rows, len(vis)); k++ {
		i := vis[k]
		l := p.layers[i]
		mark, nameStyle := "  ", st.Value
		if i == p.d.selected {
			mark, nameStyle = st.Selected.Render("▸ "), st.Selected
		}
		name := nameStyle.Render(padRight(ellipsize(listName(l), nameW), nameW))
		var rest string
		v, has := p.value(i)
		switch {
		case !scorable(l):
			rest = st.Meaningless.Render(fitWords("n/a: text keys", inner-2-nameW-1))
		case p.d.scores == nil || i >= len(p.d.scores):
			rest = st.Dim.Render(strings.Repeat("·", barW))
		case p.d.scores[i].Meaningless:
			rest = st.Meaningless.Render("n/a")
		case !has:
			rest = st.Dim.Render(fitWords("no baseline here", inner-2-nameW-1))
		default:
			rest = bar(st, frac(v), barW) + " " + st.Value.Render(fmt.Sprintf("%*.*f", valW, vdec, v))
		}
		lines = append(lines, mark+name+" "+rest)
	}
	if n := p.folded(); n > 0 && len(lines) < p.height-2 {
		layers := "layers"
		if n == 1 {
			layers = "layer"
		}
		lines = append(lines, st.Meaningless.Render(firstFit(inner,
			fmt.Sprintf("+ %d text cross-attention %s (n/a: every pair scores 1)", n, layers),
			fmt.Sprintf("+ %d text cross-attention %s: n/a", n, layers),
			fmt.Sprintf("+ %d text-keyed %s: n/a", n, layers),
			fmt.Sprintf("+ %d n/a", n))))
	}
	body := block(strings.Join(lines, "\n"), inner, p.height-2)
	return st.Panel.Width(p.width).Height(p.height).Render(body)
}

// header is the list's title line: what the bars show and which rows are in view, the
// less needed parts first to go.
func (p layerList) header(inner int) string {
	st := p.st
	what := metricName(p.d.metric)
	if p.rescaledOn() {
		what += " rescaled"
	}
	vis := p.visible()
	off, rows := p.window()
	scroll := ""
	if len(vis) > rows {
		scroll = fmt.Sprintf(" %d–%d of %d", off+1, min(off+rows, len(vis)), len(vis))
	}
	pending := ""
	if p.d.scores == nil {
		pending = " …"
	}
	dir, short := direction(p.d.metric), directionIn(p.d.metric, 0)
	if p.rescaledOn() {
		dir, short = "higher = more similar", "↑ similar"
	}
	for _, parts := range [][]string{
		{"  " + what, fmt.Sprintf(" t=%d", p.d.t), " (" + dir + ")", scroll, pending},
		{" " + what, fmt.Sprintf(" t=%d", p.d.t), " " + short, scroll, pending},
		{" " + what, fmt.Sprintf(" t=%d", p.d.t), scroll, pending},
		{" " + what, scroll, pending},
		{" " + what},
	} {
		s := strings.Join(parts, "")
		if len("layers")+ansi.StringWidth(s) <= inner {
			return st.PanelTitle.Render("layers") + st.Dim.Render(s)
		}
	}
	return st.PanelTitle.Render("layers")
}

var eighths = []rune(" ▏▎▍▌▋▊▉█")

// bar draws frac of w cells with eighth-block resolution.
func bar(st Styles, frac float64, w int) string {
	if math.IsNaN(frac) {
		frac = 0
	}
	frac = min(max(frac, 0), 1)
	n := int(math.Round(frac * float64(w) * 8))
	full, part := n/8, n%8
	s := strings.Repeat("█", full)
	rest := w - full
	if part > 0 {
		s += string(eighths[part])
		rest--
	}
	return st.Bar.Render(s) + st.BarMuted.Render(strings.Repeat("─", max(rest, 0)))
}
