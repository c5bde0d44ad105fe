package ui

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
)

// Clip opens the explorer on a video clip (`diffsim video --explore`): image A is the
// first frame, image B the frame under the clip cursor, and the timeline becomes the
// clip's two consistency curves with that cursor.
type Clip struct {
	Frames []ClipFrame
	// Metric and Settings say what the curves were computed with ("Up1 t=201"): they stay
	// as computed while the explorer's own layer, timestep and metric change.
	Metric   api.Metric
	Settings string
}

// ClipFrame is one frame of a clip: where its image is, and its two scores (NaN when it
// has none: the first frame has no previous one).
type ClipFrame struct {
	Path       string
	Name       string
	Frame      int // frame number in the input
	ToFirst    float64
	ToPrevious float64
}

// clipMode adapts the model to a clip: the pair is the first frame and the second one,
// ←/→ move between frames, and the keys that would break the pairing (swap, open) are
// off.
func (m *Model) clipMode(c *Clip) {
	m.clip = c
	m.frame = min(1, len(c.Frames)-1)
	m.cp = newClipPanel(m.styles, c, m.frame)
	m.pair.pathA, m.pair.pathB = c.Frames[0].Path, c.Frames[m.frame].Path
	k := &m.keys
	k.Left.SetKeys("h")
	k.Left.SetHelp("h", "token left")
	k.Right.SetKeys("l")
	k.Right.SetHelp("l", "token right")
	k.FramePrev.SetEnabled(true)
	k.FrameNext.SetEnabled(true)
	k.Swap.SetEnabled(false)
	k.Open.SetEnabled(false)
}

// setFrame puts the clip cursor on frame i and loads it as image B.
func (m *Model) setFrame(i int) tea.Cmd {
	if m.clip == nil {
		return nil
	}
	i = min(max(i, 0), len(m.clip.Frames)-1)
	if i == m.frame {
		return nil
	}
	m.frame = i
	return m.loadCmd(m.clip.Frames[0].Path, m.clip.Frames[i].Path)
}

// clipPanel draws the clip's curves over its frames, in the timeline's three rows: the
// score to the first frame, the cursor's track, and the score to the previous frame.
type clipPanel struct {
	st    Styles
	width int
	clip  *Clip
	frame int
}

func newClipPanel(st Styles, c *Clip, frame int) clipPanel {
	return clipPanel{st: st, clip: c, frame: frame}
}

func (p *clipPanel) SetSize(w, _ int)    { p.width = w }
func (p *clipPanel) SetStyles(st Styles) { p.st = st }

// SetFrame puts the strip's cursor on frame i.
func (p *clipPanel) SetFrame(i int) { p.frame = i }

// The strip has no keys of its own: the root's frame keys move it.
func (p clipPanel) ShortHelp() []key.Binding  { return nil }
func (p clipPanel) FullHelp() [][]key.Binding { return nil }

// frameSelectMsg asks the root to show frame i of the clip as image B.
type frameSelectMsg struct{ frame int }

// Update answers mouse events in the strip's own coordinates: a click or drag picks the
// frame nearest the pointer, the wheel steps through frames.
func (p clipPanel) Update(msg tea.Msg) (clipPanel, tea.Cmd) {
	sel := func(i int) tea.Cmd {
		if i < 0 || i >= len(p.clip.Frames) || i == p.frame {
			return nil
		}
		return func() tea.Msg { return frameSelectMsg{i} }
	}
	switch msg := msg.(type) {
	case tea.MouseClickMsg:
		if msg.Button == tea.MouseLeft {
			return p, sel(p.frameAt(msg.X))
		}
	case tea.MouseWheelMsg:
		switch msg.Button {
		case tea.MouseWheelUp, tea.MouseWheelRight:
			return p, sel(p.frame + 1)
		case tea.MouseWheelDown, tea.MouseWheelLeft:
			return p, sel(p.frame - 1)
		}
	}
	return p, nil
}

func (p clipPanel) track() (x0, w int) { return 10, max(p.width-10-18, 10) }

func (p clipPanel) column(i int) int {
	x0, w := p.track()
	n := len(p.clip.Frames)
	if n <= 1 {
		return x0
	}
	return x0 + i*(w-1)/(n-1)
}

// frameAt returns the frame nearest column x of the track, or -1 off the track.
func (p clipPanel) frameAt(x int) int {
	x0, w := p.track()
	if x < x0 || x >= x0+w {
		return -1
	}
	best := -1
	for i := range p.clip.Frames {
		if best < 0 || abs(p.column(i)-x) < abs(p.column(best)-x) {
			best = i
		}
	}
	return best
}

func (p clipPanel) View() string {
	st := p.st
	x0, w := p.track()
	fs := p.clip.Frames
	// Both curves share one range, so they can be compared.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, f := range fs {
		for _, v := range []float64{f.ToFirst, f.ToPrevious} {
			if !math.IsNaN(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	spark := func(value func(ClipFrame) float64) string {
		col := make([]float64, w)
		has := make([]bool, w)
		for i, f := range fs {
			if c := p.column(i) - x0; c >= 0 && c < w && !math.IsNaN(value(f)) && !(has[c] && c == p.column(p.frame)-x0 && i != p.frame) {
				col[c], has[c] = value(f), true
			}
		}
		var b strings.Builder
		cur := p.column(p.frame) - x0
		for c := range w {
			if !has[c] {
				b.WriteByte(' ')
				continue
			}
			f := 0.5
			if hi > lo {
				f = (col[c] - lo) / (hi - lo)
			}
			r := string(sparks[min(int(f*float64(len(sparks)-1)+0.5), len(sparks)-1)])
			if c == cur {
				b.WriteString(st.Marker.Render(r))
			} else {
				b.WriteString(st.Bar.Render(r))
			}
		}
		return b.String()
	}
	var trk strings.Builder
	cur := p.column(p.frame) - x0
	marks := make([]bool, w)
	for i := range fs {
		if c := p.column(i) - x0; c >= 0 && c < w {
			marks[c] = true
		}
	}
	for c := range w {
		switch {
		case c == cur:
			trk.WriteString(st.Marker.Render("●"))
		case marks[c]:
			trk.WriteString(st.Slider.Render("┿"))
		default:
			trk.WriteString(st.Slider.Render("━"))
		}
	}
	f := fs[p.frame]
	rng := " no scores"
	if hi >= lo {
		rng = " of " + fmtRange(lo, hi)
	}
	line1 := st.Label.Render(" to first ") + spark(func(f ClipFrame) float64 { return f.ToFirst }) +
		" " + st.Value.Render(fmtMaybe(f.ToFirst)) + st.Dim.Render(rng)
	line2 := st.Label.Render(" frame ") + st.Selected.Render(fmt.Sprintf("%-3d", p.frame)) + trk.String() +
		" " + st.Value.Render(filepath.Base(f.Name))
	line3 := st.Label.Render(" to prev  ") + spark(func(f ClipFrame) float64 { return f.ToPrevious }) +
		" " + st.Value.Render(fmtMaybe(f.ToPrevious)) + st.Dim.Render(" "+metricName(p.clip.Metric)+" "+p.clip.Settings)
	return block(strings.Join([]string{line1, line2, line3}, "\n"), p.width, 3)
}
