package ui

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

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
	if m.lay.tooSmall {
		msg := fmt.Sprintf("The terminal is %d×%d: diffsim needs at least %d×%d.\nEnlarge the window, or press q to quit.",
			m.lay.W, m.lay.H, minWidth, minHeight)
		msg = m.styles.Warn.Width(min(m.lay.W, 60)).Align(lipgloss.Center).Render(msg)
		return block(lipgloss.Place(m.lay.W, m.lay.H, lipgloss.Center, lipgloss.Center, msg), m.lay.W, m.lay.H)
	}
	l := m.lay
	var body string
	switch {
	case m.pair.a == nil:
		body = block(m.waitView(l.body.W, l.body.H), l.body.W, l.body.H)
	case m.sel.screen == screenSweep:
		m.syncComponents()
		body = block(m.sw.View(), l.body.W, l.body.H)
	default:
		m.syncPair()
		left := m.pv.lines()
		right := strings.Split(block(m.rightView(), l.score.W, l.body.H), "\n")
		for i := range left {
			left[i] += " " + right[i]
		}
		body = strings.Join(left, "\n")
	}
	var tl interface{ View() string } = m.timeline()
	if m.clip != nil {
		tl = m.clipPanel()
	}
	st := m.statusBar()
	return strings.Join([]string{
		block(m.titleView(), m.lay.W, 1),
		body,
		tl.View(),
		st.View(),
		m.helpBar(),
	}, "\n")
}

// syncComponents hands the components the root's state they draw: sizes from the layout,
// and the scores, layer, timestep and metric, which the root owns because the requests
// to the backend depend on them.
func (m *Model) syncComponents() {
	l := m.lay
	m.pv.setOrigin(l.left.X, l.left.Y)
	m.pv.SetSize(l.left.W, l.left.H)
	m.ll.SetSize(l.layers.W, l.layers.H)
	m.ll.SetData(m.rq.scores[scoreKey{m.sel.t, m.sel.metric}], m.sel.layer, m.sel.t, m.sel.metric)
	m.sw.SetSize(l.body.W, l.body.H)
	m.sw.SetData(m.rq.scores, m.sel.metric, m.sel.layer, m.sel.t)
}

// syncPair hands the pair view what the root owns, before the view draws or acts.
func (m *Model) syncPair() {
	d := pairData{a: m.pair.a, b: m.pair.b, pathA: m.pair.pathA, pathB: m.pair.pathB, res: m.rq.res, show: m.showImages()}
	d.layer, _ = m.currentLayer()
	if m.rq.res != nil && m.rq.res.Req.Layer != m.sel.layer {
		d.res = nil // maps of another grid would mislead
	}
	m.pv.SetData(d)
}

// showImages reports whether the main screen with its images is showing.
func (m *Model) showImages() bool {
	return m.sel.screen == screenMain && m.pair.a != nil && !m.lay.tooSmall && m.lay.W > 0
}

// renderCmd asks the pair view for new pictures of the current state.
func (m *Model) renderCmd() tea.Cmd {
	m.syncPair()
	return m.pv.renderCmd()
}

// place hands the pair view's pictures to the placer (placement.go).
func (m *Model) place(flush bool) {
	m.syncPair()
	m.pv.place(flush)
}

// helpBar is the bottom line: the active view's keys, or the prompt; expanded in place by ?.
func (m *Model) helpBar() string {
	h := m.lay.helpH
	if m.pb.open {
		return block(" "+m.pb.View(), m.lay.W, 1) + strings.Repeat("\n"+strings.Repeat(" ", m.lay.W), max(h-1, 0))
	}
	km := m.activeKeys()
	if !m.help.ShowAll {
		return block(" "+m.help.ShortHelpView(km.ShortHelp()), m.lay.W, 1)
	}
	note := m.styles.Dim.Render(fmt.Sprintf(" t is the DDPM timestep 0–%d (reference step = 1001 − t) · overlay: off → cosine maps → attention · click a photo for a token, a layer, the slider · ? or esc folds this", maxT))
	full := m.styles.Indent().Render(m.help.FullHelpView(fitColumns(km.FullHelp(), m.lay.W)))
	return block(full+"\n"+note, m.lay.W, h)
}

// helpColumnW is about the width of one column of the expanded help.
const helpColumnW = 28

// fitColumns regroups help columns into as many as fit in width, so that the expanded help
// never cuts keys off on the right.
func fitColumns(groups [][]key.Binding, width int) [][]key.Binding {
	var all []key.Binding
	for _, g := range groups {
		for _, b := range g {
			if b.Enabled() {
				all = append(all, b)
			}
		}
	}
	cols := max(min(width/helpColumnW, len(groups)), 1)
	rows := (len(all) + cols - 1) / cols
	if cols == len(groups) {
		return groups
	}
	var out [][]key.Binding
	for len(all) > 0 {
		n := min(rows, len(all))
		out = append(out, all[:n])
		all = all[n:]
	}
	return out
}

// titleView is the top line. At 80 columns the less needed parts go first (the graphics
// protocol, then the word "overlay"), and long file names are shortened in the middle, so
// the line is never cut mid-word.
func (m *Model) titleView() string {
	st := m.styles
	cond := ""
	if c := m.condLabel(); c != "" {
		cond = st.TitleDim.Render("   ") + st.Title.Render(c)
	}
	tails := []string{
		fmt.Sprintf("   overlay: %s · graphics: %s ", m.pv.overlay, m.pv.caps.Protocol),
		fmt.Sprintf("   overlay: %s ", m.pv.overlay),
		fmt.Sprintf("  %s ", m.pv.overlay),
		"",
	}
	for _, nameW := range []int{40, 24, 16, 10} {
		name := func(p string) string { return ellipsize(filepath.Base(p), nameW) }
		head := st.Title.Render(" diffsim ") +
			st.TitleDim.Render(" A ") + st.Title.Render(name(m.pair.pathA)) +
			st.TitleDim.Render("  ⇄  B ") + st.Title.Render(name(m.pair.pathB)) + cond
		for _, tail := range tails {
			if s := head + st.TitleDim.Render(tail); lipgloss.Width(s) <= m.lay.W {
				return st.TitleDim.Width(m.lay.W).Render(s)
			}
		}
	}
	return ansi.Truncate(st.Title.Render(" diffsim "), m.lay.W, "")
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

func (m *Model) rightView() string {
	l := m.lay
	tx, ty, _ := m.token()
	layer, _ := m.currentLayer()
	sp := scorePanel{st: m.styles, info: m.info, served: m.served, layer: layer, res: m.rq.res, current: m.current(), t: m.sel.t, metric: m.sel.metric, tx: tx, ty: ty}
	if m.rq.res != nil && m.rq.res.Req.Layer != m.sel.layer {
		sp.res = nil
	}
	sp.SetSize(l.score.W, l.score.H)
	m.syncComponents()
	return lipgloss.JoinVertical(lipgloss.Left, sp.View(), m.ll.View())
}

func (m *Model) timeline() timeline {
	tl := timeline{st: m.styles, t: m.sel.t, points: map[int]float64{}, higher: m.sel.metric.HigherIsMoreSimilar(), timesteps: m.info.Timesteps}
	for k, s := range m.rq.scores {
		if k.metric != m.sel.metric || m.sel.layer >= len(s) {
			continue
		}
		v := s[m.sel.layer].Score
		if s[m.sel.layer].Meaningless {
			v = math.NaN()
		}
		tl.points[k.t] = v
	}
	tl.SetSize(m.lay.W, 3)
	return tl
}

func (m *Model) clipPanel() clipPanel {
	p := clipPanel{st: m.styles, clip: m.clip, frame: m.frame}
	p.SetSize(m.lay.W, 3)
	return p
}

func (m *Model) statusBar() statusBar {
	sb := statusBar{st: m.styles, spinner: m.spinner.View(), err: m.note.err, notice: m.note.text}
	now := m.now()
	switch {
	case m.pair.loading:
		sb.working = "loading images…"
	case m.pair.a == nil:
		sb.working = "no images"
	case m.rq.fg.busy:
		sb.working = fmt.Sprintf("scoring %s t=%d (%s)", m.layerLabel(m.rq.fg.req.Layer), m.rq.fg.req.T, elapsed(now, m.rq.fg.since))
		if m.rq.progress.What != "" && !m.rq.seen[m.rq.fg.req.T] {
			sb.working += " · " + progressText(m.rq.progress)
		}
		if slow := now.Sub(m.rq.fg.since); slow > slowRun && m.info.Size > 256 && !strings.HasPrefix(m.info.Device, "cuda") {
			// A real U-Net takes seconds per timestep on a CPU; say what would help.
			sb.working += fmt.Sprintf(" · slow on CPU: --size 256 is ~%d× faster", (m.info.Size*m.info.Size)/(256*256))
		}
	case m.rq.bg.busy:
		what := "layer scores"
		if m.rq.bg.t != m.sel.t {
			what = "ahead"
		}
		sb.working = fmt.Sprintf("%s t=%d (%s)", what, m.rq.bg.t, elapsed(now, m.rq.bg.since))
	}
	stats := m.rq.stats.stats
	// Timesteps computed for this pair under any metric: switching the metric or the order
	// of A and B reuses their features, so the count does not drop.
	computed := map[int]bool{}
	if m.pair.a != nil {
		for k := range m.rq.scores {
			computed[k.t] = true
		}
		for t := range m.rq.seen {
			computed[t] = true
		}
	}
	cache := fmt.Sprintf("%d t computed · %d runs", len(computed), stats.Forwards)
	if stats.CacheBudget > 0 {
		cache += fmt.Sprintf(" · cache %d/%d MiB", stats.CacheBytes>>20, stats.CacheBudget>>20)
	}
	if m.pair.a != nil && (m.rq.seen[m.sel.t] || (m.rq.stats.tCached && m.rq.stats.t == m.sel.t && m.rq.stats.gen == m.pair.gen)) {
		cache = "t cached · " + cache
	}
	if m.served != "" {
		cache = m.served + " · " + cache
	}
	sb.cache = cache + " "
	sb.SetSize(m.lay.W, 1)
	return sb
}

func (m *Model) layerLabel(i int) string {
	if i < 0 || i >= len(m.info.Layers) {
		return "?"
	}
	return shortName(m.info.Layers[i])
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
