package ui

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
)

// The panels are small view components built from the root model's state for each frame:
// they hold no state of their own beyond their size, so there is nothing to keep in sync.

// block normalises s to exactly w columns × h lines: long lines are cut, short ones padded.
func block(s string, w, h int) string {
	if w <= 0 || h <= 0 {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	pad := strings.Repeat(" ", w)
	for i, l := range lines {
		lw := ansi.StringWidth(l)
		switch {
		case lw > w:
			lines[i] = ansi.Truncate(l, w, "")
		case lw < w:
			lines[i] = l + pad[:w-lw]
		}
	}
	for len(lines) < h {
		lines = append(lines, pad)
	}
	return strings.Join(lines, "\n")
}

// ellipsize shortens s to w columns, cutting the middle: layer names differ at both ends.
func ellipsize(s string, w int) string {
	if ansi.StringWidth(s) <= w || w < 5 {
		return ansi.Truncate(s, max(w, 0), "")
	}
	r := []rune(s)
	head := (w - 1) / 2
	tail := w - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// shortName abbreviates a module path for the layer list:
// down_blocks.0.attentions.1.transformer_blocks.0.attn2 → down0.1.0.attn2.
func shortName(l features.Layer) string {
	if l.Short != "" {
		suffix := ""
		if i := strings.LastIndex(l.Name, "."); i >= 0 {
			suffix = " " + l.Name[i+1:]
		}
		return l.Short + suffix
	}
	r := strings.NewReplacer("down_blocks.", "down", "up_blocks.", "up", "mid_block.", "mid.",
		".attentions.", ".", "attentions.", "", ".transformer_blocks.", ".", "encoder.layers.", "L", "encoder.layer.", "L",
		".self_attn", "", ".attention", "")
	return r.Replace(l.Name)
}

func metricName(m session.Metric) string {
	switch m {
	case session.AAS:
		return "AAS"
	case session.Cosine:
		return "feature cos"
	case session.MSE:
		return "MSE"
	}
	return string(m)
}

func direction(m session.Metric) string {
	if m.HigherIsMoreSimilar() {
		return "higher = more similar"
	}
	return "lower = more similar"
}

func fmtMaybe(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.3f", v)
}

// scorePanel shows the numbers of the current view.
type scorePanel struct {
	st            Styles
	width, height int
	info          session.ModelInfo
	layer         features.Layer
	res           *session.Result
	current       bool // res answers the current view
	t             int
	metric        session.Metric
	tx, ty        int
}

func (p *scorePanel) SetSize(w, h int) { p.width, p.height = w, h }

func (p scorePanel) View() string {
	st := p.st
	inner := p.width - 4
	lab := func(s string) string { return st.Label.Render(s) }
	val := func(s string) string { return st.Value.Render(s) }
	var lines []string
	switch {
	case p.res == nil:
		lines = append(lines, st.Big.Render(metricName(p.metric))+"  "+st.Dim.Render("computing…"), "", "")
	case p.res.Meaningless != "":
		lines = append(lines,
			st.Big.Render(metricName(p.metric))+"  "+st.Meaningless.Render("n/a: no image information"),
			st.Meaningless.Render(ansi.Truncate(p.res.Meaningless, inner, "…")), "")
	default:
		r := p.res
		head := st.Big.Render(metricName(r.Metric)+" "+fmtScore(r.Score)) + "  " + st.Dim.Render(direction(r.Metric))
		if !p.current {
			head = st.Dim.Render(metricName(r.Metric)+" "+fmtScore(r.Score)) + "  " + st.Dim.Render("(updating…)")
		}
		lines = append(lines, head,
			lab("A→B ")+val(fmtScore(r.AtoB))+lab("  B→A ")+val(fmtScore(r.BtoA)),
			lab("cos ")+val(fmtMaybe(r.FeatureCosine))+lab("  mse ")+val(fmtMaybe(r.MSE))+lab("  global ")+val(fmtMaybe(r.Global)))
	}
	l := p.layer
	short := l.Short
	if short == "" {
		short = "#" + fmt.Sprint(l.Index)
	} else {
		short += " #" + fmt.Sprint(l.Index)
	}
	geom := fmt.Sprintf("%s %d×%d", l.Kind, l.GridW, l.GridH)
	lines = append(lines,
		lab("layer ")+st.Selected.Render(short)+lab("  "+geom),
		st.Value.Render(ellipsize(l.Name, inner)))
	if p.info.Timesteps {
		lines = append(lines, lab("t ")+val(fmt.Sprint(p.t))+lab(" (reference step ")+val(stepLabel(p.t))+lab(")"))
	} else {
		lines = append(lines, lab("no timesteps (t does not apply)"))
	}
	lines = append(lines, lab("model ")+val(p.info.Name)+lab(" on ")+val(p.info.Device))
	setup := val(fmt.Sprintf("%d px", p.info.Size)) + lab(" · seed ") + val(fmt.Sprint(p.info.Seed))
	if r := p.res; r != nil && p.current {
		took, how := "<1ms", "network run"
		if r.Elapsed >= time.Millisecond {
			took = r.Elapsed.Round(time.Millisecond).String()
		}
		if r.Cached {
			how = "cached"
		}
		setup += lab(" · ") + val(took) + lab(" "+how)
	}
	lines = append(lines, setup)
	if p.info.Notice != "" {
		lines = append(lines, st.Notice.Render(p.info.Notice))
	} else {
		lines = append(lines, st.Dim.Render(p.info.Description))
	}
	for i := range lines {
		lines[i] = ansi.Truncate(lines[i], inner, "…")
	}
	body := block(strings.Join(lines, "\n"), inner, p.height-2)
	return st.Panel.Width(p.width).Height(p.height).Render(body)
}

// layerList lists every layer with its score at the current timestep as a bar.
type layerList struct {
	st            Styles
	width, height int
	layers        []features.Layer
	scores        []session.LayerScore // nil: not computed yet
	selected      int
	t             int
	metric        session.Metric
}

func (p *layerList) SetSize(w, h int) { p.width, p.height = w, h }

// rows is how many layers fit; offset the first one shown, keeping the selection in view.
func (p layerList) window() (offset, rows int) {
	rows = max(p.height-3, 1) // border and header
	offset = min(max(p.selected-rows/2, 0), max(len(p.layers)-rows, 0))
	return offset, rows
}

// layerAt returns the layer on screen row y of the panel (relative to its top), or -1.
func (p layerList) layerAt(y int) int {
	off, rows := p.window()
	i := y - 2
	if i < 0 || i >= rows || off+i >= len(p.layers) {
		return -1
	}
	return off + i
}

func (p layerList) View() string {
	st := p.st
	inner := p.width - 4
	header := st.PanelTitle.Render("layers") + st.Dim.Render(fmt.Sprintf("  %s at t=%d", metricName(p.metric), p.t))
	if p.scores == nil {
		header += st.Dim.Render("  …")
	}
	lines := []string{ansi.Truncate(header, inner, "")}
	// Bars span the layers' range at this t, so differences show even when every score
	// is close to 1 (the shortest bar keeps a stub, so it still reads as a bar).
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range p.scores {
		if !s.Meaningless && !math.IsNaN(s.Score) {
			lo, hi = min(lo, s.Score), max(hi, s.Score)
		}
	}
	frac := func(v float64) float64 {
		if !(hi-lo > 1e-9) {
			return 1
		}
		return 0.1 + 0.9*(v-lo)/(hi-lo)
	}
	format := "%.3f"
	if hi > lo && hi-lo < 0.01 {
		format = "%.4f"
	}
	nameW := min(14, inner/3)
	barW := max(inner-nameW-2-8, 3)
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
		case !l.ImageKV && l.Kind == features.CrossAttention:
			rest = st.Meaningless.Render("n/a: text keys")
		case p.scores == nil || i >= len(p.scores):
			rest = st.Dim.Render(strings.Repeat("·", barW))
		case p.scores[i].Meaningless:
			rest = st.Meaningless.Render("n/a")
		default:
			s := p.scores[i].Score
			rest = bar(st, frac(s), barW) + " " + st.Value.Render(fmt.Sprintf(format, s))
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

// timeline is the timestep slider with the current layer's score at every timestep
// computed so far, as a sparkline above it.
type timeline struct {
	st        Styles
	width     int
	t         int
	points    map[int]float64 // t → score of the current layer; NaN: meaningless
	higher    bool
	timesteps bool
}

func (p *timeline) SetSize(w, _ int) { p.width = w }

// column maps t to a column of the track, and back.
func (p timeline) track() (x0, w int) { return 9, max(p.width-9-16, 10) }

func (p timeline) column(t int) int {
	x0, w := p.track()
	return x0 + t*(w-1)/maxT
}

// timeAt returns the timestep under column x, or -1.
func (p timeline) timeAt(x int) int {
	x0, w := p.track()
	if x < x0 || x >= x0+w {
		return -1
	}
	return (x - x0) * maxT / (w - 1)
}

var sparks = []rune("▁▂▃▄▅▆▇█")

func (p timeline) View() string {
	st := p.st
	if !p.timesteps {
		return block(st.Dim.Render(" t        this model has no timesteps"), p.width, 3)
	}
	x0, w := p.track()
	// Sparkline: each column shows the computed timestep nearest its centre, if any falls
	// in the column; values share the range of the points.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range p.points {
		if !math.IsNaN(v) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	col := make([]float64, w)
	has := make([]bool, w)
	// Several timesteps may share a column: the current one wins, then the latest, so the
	// line does not depend on map order.
	ts := slices.Sorted(maps.Keys(p.points))
	for _, t := range ts {
		v := p.points[t]
		c := p.column(t) - x0
		if c < 0 || c >= w || math.IsNaN(v) || (has[c] && p.column(p.t)-x0 == c && t != p.t && col[c] == p.points[p.t]) {
			continue
		}
		col[c], has[c] = v, true
	}
	if v, ok := p.points[p.t]; ok && !math.IsNaN(v) {
		if c := p.column(p.t) - x0; c >= 0 && c < w {
			col[c], has[c] = v, true
		}
	}
	var spark, trackS strings.Builder
	cur := p.column(p.t) - x0
	for c := range w {
		switch {
		case has[c]:
			f := 0.5
			if hi > lo {
				f = (col[c] - lo) / (hi - lo)
			}
			r := string(sparks[min(int(f*float64(len(sparks)-1)+0.5), len(sparks)-1)])
			if c == cur {
				spark.WriteString(st.Marker.Render(r))
			} else {
				spark.WriteString(st.Bar.Render(r))
			}
		default:
			spark.WriteByte(' ')
		}
		switch {
		case c == cur:
			trackS.WriteString(st.Marker.Render("●"))
		case has[c]:
			trackS.WriteString(st.Slider.Render("┿"))
		default:
			trackS.WriteString(st.Slider.Render("━"))
		}
	}
	rng := st.Dim.Render(" no scores yet")
	if hi >= lo {
		rng = st.Dim.Render(" " + fmtRange(lo, hi))
	}
	label := st.Label.Render(" score   ")
	line1 := label + spark.String() + rng
	line2 := st.Label.Render(" t ") + st.Selected.Render(fmt.Sprintf("%-4d", p.t)) + "  " + trackS.String()
	axis := []byte(strings.Repeat(" ", w))
	put := func(c int, s string) {
		if c >= 0 && c+len(s) <= w {
			copy(axis[c:], s)
		}
	}
	for _, t := range []int{0, 250, 500, 750} {
		put(p.column(t)-x0, fmt.Sprint(t))
	}
	put(w-3, "999")
	line3 := st.Dim.Render(strings.Repeat(" ", x0) + string(axis))
	return block(strings.Join([]string{line1, line2, line3}, "\n"), p.width, 3)
}

// statusBar is the bottom line: background work, cache, and the last error or note.
type statusBar struct {
	st      Styles
	width   int
	spinner string
	working string // what is running, "" when idle
	cache   string
	err     error
	notice  string
}

func (p *statusBar) SetSize(w, _ int) { p.width = w }

func (p statusBar) View() string {
	st := p.st
	var left string
	if p.working != "" {
		left = p.spinner + " " + st.Warn.Render(p.working)
	} else {
		left = st.OK.Render("● ready")
	}
	right := st.Dim.Render(p.cache)
	mid := ""
	switch {
	case p.err != nil:
		mid = st.Error.Render("✗ " + oneLine(p.err.Error()))
	case p.notice != "":
		mid = st.Notice.Render(p.notice)
	}
	gap := p.width - lipgloss.Width(left) - lipgloss.Width(right) - 2
	mid = ansi.Truncate(mid, max(gap-2, 0), "…")
	pad := max(gap-lipgloss.Width(mid)-1, 0)
	return block(" "+left+"  "+mid+strings.Repeat(" ", pad)+right, p.width, 1)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func ansiWidth(s string) int { return ansi.StringWidth(s) }
