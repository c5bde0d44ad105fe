package ui

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/diffsim/diffsim/api"
)

// View draws the explorer. Images are either half-block text inside it or, for sixel,
// blank cells the placer draws over after the frame.
func (m *Model) View() tea.View {
	v := tea.NewView(m.content())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "diffsim " + filepath.Base(m.pair.pathA) + " ⇄ " + filepath.Base(m.pair.pathB)
	return v
}

func (m *Model) content() string {
	if m.lay.W == 0 || m.lay.H == 0 {
		return ""
	}
	l := m.lay
	if l.tooSmall {
		msg := fmt.Sprintf("The terminal is %d×%d: diffsim needs at least %d×%d.\nEnlarge the window, or press q to quit.",
			l.W, l.H, minWidth, minHeight)
		msg = m.styles.Warn.Width(min(l.W, 60)).Align(lipgloss.Center).Render(msg)
		return block(lipgloss.Place(l.W, l.H, lipgloss.Center, lipgloss.Center, msg), l.W, l.H)
	}
	m.sync()
	title := block(m.title.View(), l.W, 1)
	if m.hv.Open() {
		// The help page takes everything between the title and the help line.
		return strings.Join([]string{title, m.hv.Page(m.activeKeys()), m.helpLine()}, "\n")
	}
	var body string
	switch {
	case m.sel.screen == screenPick:
		body = block(m.pk.View(), l.body.W, l.body.H)
	case m.pair.a == nil:
		body = block(m.waitView(l.body.W, l.body.H), l.body.W, l.body.H)
	case m.sel.screen == screenSweep:
		body = block(m.sw.View(), l.body.W, l.body.H)
	default:
		left := m.pv.lines()
		right := strings.Split(block(m.sp.View()+"\n"+m.ll.View(), l.score.W, l.body.H), "\n")
		for i := range left {
			left[i] += " " + right[i]
		}
		body = strings.Join(left, "\n")
	}
	return strings.Join([]string{title, body, m.bottom(), m.helpLine()}, "\n")
}

// bottom is the timeline (or the clip strip) and the status line; a status message too
// long for its line takes the timeline's rows until the next action clears it.
func (m *Model) bottom() string {
	l := m.lay
	rows := l.timeline.H + l.status.H
	st := m.sb.Lines()
	if len(st) > 1 {
		return block(strings.Repeat("\n", max(rows-len(st), 0))+strings.Join(st, "\n"), l.W, rows)
	}
	tl := m.tl.View()
	if m.clip != nil {
		tl = m.cp.View()
	}
	return block(tl, l.W, l.timeline.H) + "\n" + st[0]
}

// timelineShown reports whether the timeline is on screen (a long status message may
// cover it).
func (m *Model) timelineShown() bool { return !m.hv.Open() && len(m.sb.Lines()) <= 1 }

// helpLine is the bottom line: the active view's keys, or the prompt.
func (m *Model) helpLine() string {
	if m.pb.Active() {
		return block(" "+m.pb.View(), m.lay.W, 1)
	}
	return m.hv.Line(m.activeKeys())
}

// resize hands every component its size from the layout.
func (m *Model) resize() {
	l := m.lay
	m.title.SetSize(l.W, 1)
	m.pv.SetOrigin(l.left.X, l.left.Y)
	m.pv.SetSize(l.left.W, l.left.H)
	m.sp.SetSize(l.score.W, l.score.H)
	m.ll.SetSize(l.layers.W, l.layers.H)
	m.sw.SetSize(l.body.W, l.body.H)
	m.pk.SetSize(l.body.W, l.body.H)
	m.tl.SetSize(l.W, l.timeline.H)
	m.cp.SetSize(l.W, l.timeline.H)
	m.sb.SetSize(l.W, 1)
	m.hv.SetSize(l.W, l.H-2)
	m.pb.SetSize(l.W, 1)
}

// sync hands the components the root's state they draw: the pair, the selection and
// what the backend answered, which the root owns because every request depends on them.
func (m *Model) sync() {
	res := m.shownResult()
	layer, _ := m.currentLayer()
	m.title.SetData(titleData{pathA: m.pair.pathA, pathB: m.pair.pathB, cond: m.condLabel(), overlay: m.pv.Overlay(), protocol: m.pv.Protocol()})
	m.pv.SetData(pairData{a: m.pair.a, b: m.pair.b, pathA: m.pair.pathA, pathB: m.pair.pathB,
		layer: layer, t: m.sel.t, res: res, show: m.showImages()})
	sd := scoreData{info: m.info, served: m.served, layer: layer, t: m.sel.t, metric: m.sel.metric, baseline: m.baseline}
	if res != nil && res.Req.Metric == m.sel.metric {
		sd.res = res
	}
	m.sp.SetData(sd)
	m.ll.SetData(layerData{scores: m.rq.layerScores(m.sel.t, m.sel.metric), selected: m.sel.layer, t: m.sel.t,
		metric: m.sel.metric, baseline: m.baseline, rescaled: m.sel.rescaled})
	m.sw.SetData(sweepData{scores: m.rq.allScores(), metric: m.sel.metric, layer: m.sel.layer, t: m.sel.t,
		baseline: m.baseline, rescaled: m.sel.rescaled})
	m.tl.SetData(m.sel.t, m.timelinePoints(), m.sel.metric.HigherIsMoreSimilar())
	m.cp.SetFrame(m.frame)
	m.sb.SetData(m.statusData())
}

// shownResult is the latest result when it answers the pair, layer and timestep shown
// (its token or metric may differ); nil while they compute, so no component shows a
// number or a map of another layer or t.
func (m *Model) shownResult() *api.Result {
	r := m.rq.result()
	if r == nil || r.Req.A != m.pair.a || r.Req.B != m.pair.b || r.Req.Layer != m.sel.layer || r.Req.T != m.sel.t {
		return nil
	}
	return r
}

// showImages reports whether the main screen with its images is showing.
func (m *Model) showImages() bool {
	return m.sel.screen == screenMain && m.pair.a != nil && !m.lay.tooSmall && m.lay.W > 0 && !m.hv.Open()
}

// renderCmd asks the pair view for new pictures of the current state.
func (m *Model) renderCmd() tea.Cmd {
	m.sync()
	return m.pv.RenderCmd()
}

// place hands the pair view's pictures to the placer (placement.go).
func (m *Model) place(flush bool) {
	m.sync()
	m.pv.Place(flush)
}

func (m *Model) waitView(w, h int) string {
	st := m.styles
	var msg string
	switch {
	case m.pair.loadErr != nil:
		msg = st.Error.Render("Could not open the images") + "\n\n" + st.Value.Render(m.pair.loadErr.Error()) +
			"\n\n" + st.Dim.Render("Press p to open another pair, q to quit.")
	default:
		msg = m.spinner.View() + " " + st.Value.Render("loading "+filepath.Base(m.pair.pathA)+" and "+filepath.Base(m.pair.pathB)+"…")
	}
	return lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, lipgloss.NewStyle().Width(min(w-4, 90)).Render(msg))
}

// timelinePoints are the current layer's scores at every timestep computed.
func (m *Model) timelinePoints() map[int]float64 {
	points := map[int]float64{}
	for k, s := range m.rq.allScores() {
		if k.metric != m.sel.metric || m.sel.layer >= len(s) {
			continue
		}
		v := s[m.sel.layer].Score
		if s[m.sel.layer].Meaningless {
			v = math.NaN()
		}
		points[k.t] = v
	}
	return points
}

func (m *Model) statusData() statusData {
	d := statusData{spinner: m.spinner.View(), err: m.note.err, notice: m.note.text}
	now := m.now()
	switch {
	case m.pair.loading:
		d.working = "loading images…"
	case m.pair.a == nil && m.sel.screen == screenPick:
		// Picking the first pair: nothing runs, and nothing is missing.
	case m.pair.a == nil:
		d.working = "no images"
	default:
		what, since := m.rq.working(m.layerLabel, m.sel.t)
		if what != "" {
			d.working = what + " (" + elapsed(now, since) + ")"
		}
		if p, ok := m.rq.runningNetwork(); ok {
			d.working += " · " + progressText(p)
		}
		if what != "" && now.Sub(since) > slowRun && m.info.Size > 256 && !strings.HasPrefix(m.info.Device, "cuda") {
			// A real U-Net takes seconds per timestep on a CPU; say what would help.
			d.working += fmt.Sprintf(" · slow on CPU: --size 256 is ~%d× faster", (m.info.Size*m.info.Size)/(256*256))
		}
	}
	stats := m.rq.stats.stats
	cache := fmt.Sprintf("%d t computed · %d runs", m.rq.computedCount(), stats.Forwards)
	if stats.CacheBudget > 0 {
		cache += fmt.Sprintf(" · cache %d/%d MiB", stats.CacheBytes>>20, stats.CacheBudget>>20)
	}
	if m.pair.a != nil && m.rq.cachedAt(m.sel.t) {
		cache = "t cached · " + cache
	}
	if m.served != "" {
		cache = m.served + " · " + cache
	}
	d.cache = cache + " "
	return d
}

func (m *Model) layerLabel(i int) string {
	if i < 0 || i >= len(m.info.Layers) {
		return "?"
	}
	return listName(m.info.Layers[i])
}

func progressText(p api.Progress) string {
	if p.Total > 0 {
		return fmt.Sprintf("%s %d/%d", p.What, p.Done, p.Total)
	}
	return p.What
}

// slowRun is how long a network run may take before the status line suggests a smaller size.
const slowRun = 5 * time.Second

func elapsed(now, since time.Time) string {
	d := now.Sub(since)
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
