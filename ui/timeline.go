package ui

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

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

func newTimeline(st Styles, timesteps bool) timeline {
	return timeline{st: st, timesteps: timesteps, points: map[int]float64{}}
}

func (p *timeline) SetSize(w, _ int)    { p.width = w }
func (p *timeline) SetStyles(st Styles) { p.st = st }

// SetData gives the timeline the shown timestep and the current layer's score at every
// timestep computed (NaN: meaningless); higher is the metric's direction.
func (p *timeline) SetData(t int, points map[int]float64, higher bool) {
	p.t, p.points, p.higher = t, points, higher
}

// The timeline has no keys of its own: the root's time keys move t.
func (p timeline) ShortHelp() []key.Binding  { return nil }
func (p timeline) FullHelp() [][]key.Binding { return nil }

// timeSelectMsg asks the root to show timestep t (a click or drag on the slider, or the
// wheel over it).
type timeSelectMsg struct{ t int }

// Update answers mouse events in the timeline's own coordinates: the slider is row 1.
func (p timeline) Update(msg tea.Msg) (timeline, tea.Cmd) {
	sel := func(t int) tea.Cmd {
		if !p.timesteps || t < 0 {
			return nil
		}
		t = min(t, maxT)
		return func() tea.Msg { return timeSelectMsg{t} }
	}
	switch msg := msg.(type) {
	case tea.MouseClickMsg:
		if msg.Button == tea.MouseLeft && msg.Y == 1 {
			return p, sel(p.timeAt(msg.X))
		}
	case tea.MouseMotionMsg:
		if msg.Button == tea.MouseLeft && msg.Y == 1 {
			return p, sel(p.timeAt(msg.X))
		}
	case tea.MouseWheelMsg:
		switch msg.Button {
		case tea.MouseWheelUp, tea.MouseWheelRight:
			return p, sel(p.t + fineStep)
		case tea.MouseWheelDown, tea.MouseWheelLeft:
			return p, sel(max(p.t-fineStep, 0))
		}
	}
	return p, nil
}

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
