package ui

import (
	"fmt"
	"math"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
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
	return layersKeyMap{Scale: key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "bars relative/absolute"))}
}

func (k layersKeyMap) ShortHelp() []key.Binding  { return []key.Binding{k.Scale} }
func (k layersKeyMap) FullHelp() [][]key.Binding { return [][]key.Binding{{k.Scale}} }

// layerList lists every layer with its score at the current timestep as a bar over a
// labelled axis. Bars grow with similarity whatever the metric's direction. It owns its
// scale and answers clicks and the wheel with a layerSelectMsg; the root owns which layer
// is selected, since every other view depends on it.
type layerList struct {
	st            Styles
	keys          layersKeyMap
	width, height int
	layers        []api.Layer
	scores        []api.LayerScore // nil: not computed yet
	selected      int
	t             int
	metric        api.Metric
	scale         barScale
}

func newLayerList(st Styles, layers []api.Layer) layerList {
	return layerList{st: st, keys: defaultLayersKeys(), layers: layers}
}

func (p *layerList) SetSize(w, h int) { p.width, p.height = w, h }

// SetData gives the list the scores at the shown timestep and the selected layer.
func (p *layerList) SetData(scores []api.LayerScore, selected, t int, metric api.Metric) {
	p.scores, p.selected, p.t, p.metric = scores, selected, t, metric
}

// Update takes the list's key, and mouse events in the list's own coordinates.
func (p layerList) Update(msg tea.Msg) (layerList, tea.Cmd) {
	sel := func(i int) tea.Cmd {
		if i < 0 || i >= len(p.layers) || i == p.selected {
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
			return p, sel(p.selected - 1)
		case tea.MouseWheelDown:
			return p, sel(p.selected + 1)
		}
	}
	return p, nil
}

// layerListHead is the rows above the first layer: border, title, axis.
const layerListHead = 3

// window returns the first layer shown and how many fit, keeping the selection in view.
func (p layerList) window() (offset, rows int) {
	rows = max(p.height-layerListHead-1, 1)
	offset = min(max(p.selected-rows/2, 0), max(len(p.layers)-rows, 0))
	return offset, rows
}

// layerAt returns the layer on screen row y of the panel (relative to its top), or -1.
func (p layerList) layerAt(y int) int {
	off, rows := p.window()
	i := y - layerListHead
	if i < 0 || i >= rows || off+i >= len(p.layers) {
		return -1
	}
	return off + i
}

// scoreRange is the range of the meaningful scores (lo > hi when there are none).
func (p layerList) scoreRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range p.scores {
		if !s.Meaningless && !math.IsNaN(s.Score) {
			lo, hi = min(lo, s.Score), max(hi, s.Score)
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
	higher := p.metric.HigherIsMoreSimilar()
	if p.scale == scaleAbsolute {
		if higher {
			lo, hi = min(lo, 0), max(hi, 1) // cosines and AAS live in [−1, 1], mostly [0, 1]
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

func (p layerList) View() string {
	st := p.st
	inner := p.width - 4
	what := fmt.Sprintf("  %s t=%d", metricName(p.metric), p.t)
	dir := " (" + direction(p.metric) + ")"
	if len("layers")+ansi.StringWidth(what+dir) > inner {
		what, dir = fmt.Sprintf(" %s t=%d", metricName(p.metric), p.t), " "+directionIn(p.metric, 0)
	}
	header := st.PanelTitle.Render("layers") + st.Dim.Render(what+dir)
	if p.scores == nil {
		header += st.Dim.Render("  …")
	}
	lines := []string{ansi.Truncate(header, inner, "")}
	nameW := min(14, inner/3)
	barW := max(inner-nameW-2-8, 3)
	left, right, ok := p.axis()
	dec := max(decimals(min(left, right), max(left, right)), 3) // the axis ends
	vdec := dec                                                 // the values: as many decimals as tell them apart
	if lo, hi := p.scoreRange(); hi > lo {
		vdec = max(decimals(lo, hi), 3)
	}
	frac := func(v float64) float64 { return (v - left) / (right - left) }
	axis := st.Dim.Render(strings.Repeat(" ", 2+nameW+1) + "scores not computed yet")
	if ok {
		// The axis under the bars: its ends, and which way is more similar.
		l, r := fmt.Sprintf("%.*f", dec, left), fmt.Sprintf("%.*f", dec, right)
		mid := max(barW-len(l)-len(r), 1)
		arrow := " more similar →"
		if len(arrow)+1 > mid {
			arrow = " →"
		}
		axis = st.Dim.Render(padRight("  "+p.scale.String(), 2+nameW+1)) + st.Label.Render(l) +
			st.Dim.Render(padRight(arrow, mid)) + st.Label.Render(r)
	}
	lines = append(lines, ansi.Truncate(axis, inner, ""))
	off, rows := p.window()
	for i := off; i < min(off+rows, len(p.layers)); i++ {
		l := p.layers[i]
		mark, nameStyle := "  ", st.Value
		if i == p.selected {
			mark, nameStyle = st.Selected.Render("▸ "), st.Selected
		}
		name := nameStyle.Render(fmt.Sprintf("%-*s", nameW, ansi.Truncate(shortName(l), nameW, "…")))
		var rest string
		switch {
		case !l.ImageKV && l.Kind == api.CrossAttention:
			rest = st.Meaningless.Render("n/a: text keys")
		case p.scores == nil || i >= len(p.scores):
			rest = st.Dim.Render(strings.Repeat("·", barW))
		case p.scores[i].Meaningless:
			rest = st.Meaningless.Render("n/a")
		default:
			s := p.scores[i].Score
			rest = bar(st, frac(s), barW) + " " + st.Value.Render(fmt.Sprintf("%.*f", vdec, s))
		}
		lines = append(lines, mark+name+" "+rest)
	}
	body := block(strings.Join(lines, "\n"), inner, p.height-2)
	return st.Panel.Width(p.width).Height(p.height).Render(body)
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
