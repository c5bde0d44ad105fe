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

	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// View draws the explorer. Images are either half-block text inside it or, for sixel,
// blank cells the placer draws over after the frame.
func (m *Model) View() tea.View {
	v := tea.NewView(m.content())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "diffsim " + filepath.Base(m.pathA) + " ⇄ " + filepath.Base(m.pathB)
	return v
}

func (m *Model) content() string {
	if m.width == 0 || m.height == 0 {
		return ""
	}
	if m.lay.tooSmall {
		msg := fmt.Sprintf("The terminal is %d×%d: diffsim needs at least %d×%d.\nEnlarge the window, or press q to quit.",
			m.width, m.height, minWidth, minHeight)
		msg = m.styles.Warn.Width(min(m.width, 60)).Align(lipgloss.Center).Render(msg)
		return block(lipgloss.Place(m.width, m.height, lipgloss.Center, lipgloss.Center, msg), m.width, m.height)
	}
	l := m.lay
	var body string
	switch {
	case m.a == nil:
		body = block(m.waitView(l.body.W, l.body.H), l.body.W, l.body.H)
	case m.screen == screenSweep:
		m.sw.SetData(m.scores, m.metric, m.layer, m.t)
		body = block(m.sw.View(), l.body.W, l.body.H)
	default:
		left := m.leftLines()
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
		block(m.titleView(), m.width, 1),
		body,
		tl.View(),
		st.View(),
		m.helpBar(),
	}, "\n")
}

// helpBar is the bottom line: the active view's keys, or the prompt; expanded in place by ?.
func (m *Model) helpBar() string {
	h := m.lay.helpH
	if m.prompting {
		return block(" "+m.prompt.View(), m.width, 1) + strings.Repeat("\n"+strings.Repeat(" ", m.width), max(h-1, 0))
	}
	km := m.activeKeys()
	if !m.help.ShowAll {
		return block(" "+m.help.ShortHelpView(km.ShortHelp()), m.width, 1)
	}
	note := m.styles.Dim.Render(fmt.Sprintf(" t is the DDPM timestep 0–%d (reference step = 1001 − t) · overlay: off → cosine maps → attention · click a photo for a token, a layer, the slider · ? or esc folds this", maxT))
	full := lipgloss.NewStyle().PaddingLeft(1).Render(m.help.FullHelpView(fitColumns(km.FullHelp(), m.width)))
	return block(full+"\n"+note, m.width, h)
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
		fmt.Sprintf("   overlay: %s · graphics: %s ", m.overlay, m.proto),
		fmt.Sprintf("   overlay: %s ", m.overlay),
		fmt.Sprintf("  %s ", m.overlay),
		"",
	}
	for _, nameW := range []int{40, 24, 16, 10} {
		name := func(p string) string { return ellipsize(filepath.Base(p), nameW) }
		head := st.Title.Render(" diffsim ") +
			st.TitleDim.Render(" A ") + st.Title.Render(name(m.pathA)) +
			st.TitleDim.Render("  ⇄  B ") + st.Title.Render(name(m.pathB)) + cond
		for _, tail := range tails {
			if s := head + st.TitleDim.Render(tail); lipgloss.Width(s) <= m.width {
				return st.TitleDim.Width(m.width).Render(s)
			}
		}
	}
	return ansi.Truncate(st.Title.Render(" diffsim "), m.width, "")
}

func (m *Model) waitView(w, h int) string {
	st := m.styles
	var msg string
	switch {
	case m.loadErr != nil:
		msg = st.Error.Render("Could not open the images") + "\n\n" + st.Value.Render(m.loadErr.Error()) +
			"\n\n" + st.Dim.Render("Press p to open another pair, q to quit.")
	default:
		msg = m.spinner.View() + " " + st.Value.Render("loading "+filepath.Base(m.pathA)+" and "+filepath.Base(m.pathB)+"…")
	}
	return lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, lipgloss.NewStyle().Width(min(w-4, 90)).Render(msg))
}

// leftLines draws the photos and the maps with their captions, one string per row of
// exactly the column's width. The half-block rows are known to be their pane's width, so
// nothing here measures them: measuring ANSI text is what makes a View slow.
func (m *Model) leftLines() []string {
	l := m.lay
	st := m.styles
	w := l.left.W
	pa, pb := l.panes[paneA], l.panes[paneB]
	tx, ty, _ := m.token()
	rows := make([]string, 0, l.left.H)
	pad := func(used int) string { return strings.Repeat(" ", max(w-used, 0)) }
	rows = append(rows, block(st.Caption.Render("A "+filepath.Base(m.pathA)+rangeNote(m.pics.panes[paneA])), pa.W, 1)+" "+
		block(st.Caption.Render("B "+filepath.Base(m.pathB)+rangeNote(m.pics.panes[paneB])), pb.W, 1)+pad(pa.W+pb.W+1))
	for i := range pa.H {
		rows = append(rows, m.paneLine(paneA, i)+" "+m.paneLine(paneB, i)+pad(pa.W+pb.W+1))
	}
	maps := []pane{paneMapA, paneMapB, paneAttn}
	titles := []string{"cos A (self vs cross)", "cos B", fmt.Sprintf("attention of A %d,%d over B", tx, ty)}
	if l.panes[paneMapA].W < 24 {
		// Short titles, so that narrow panes keep them apart and whole.
		titles = []string{"cos A", "cos B", fmt.Sprintf("attn A %d,%d → B", tx, ty)}
	}
	var capRow strings.Builder
	used := 0
	for i, p := range maps {
		if i > 0 {
			capRow.WriteByte(' ')
			used++
		}
		capRow.WriteString(block(st.Caption.Render(titles[i]), l.panes[p].W, 1))
		used += l.panes[p].W
	}
	rows = append(rows, capRow.String()+pad(used))
	for i := range l.panes[paneMapA].H {
		rows = append(rows, m.paneLine(paneMapA, i)+" "+m.paneLine(paneMapB, i)+" "+m.paneLine(paneAttn, i)+pad(used))
	}
	for len(rows) < l.left.H {
		rows = append(rows, pad(0))
	}
	return rows[:l.left.H]
}

func rangeNote(p picture) string {
	if !p.ok {
		return ""
	}
	return " " + fmtRange(float64(p.lo), float64(p.hi))
}

// fmtRange prints lo–hi with enough decimals to tell them apart.
func fmtRange(lo, hi float64) string {
	d := 2
	if span := hi - lo; span > 0 {
		d = min(max(int(math.Ceil(-math.Log10(span)))+1, 2), 5)
	}
	return fmt.Sprintf("%.*f–%.*f", d, lo, d, hi)
}

// paneLine returns row i of pane p, exactly its width.
func (m *Model) paneLine(p pane, i int) string {
	r := m.lay.panes[p]
	pic := m.pics.panes[p]
	switch {
	case !m.showImages():
	case m.proto == termgfx.None:
		if (p == paneA || p == paneB) && i == 1 {
			return block(m.styles.Dim.Render(" images off (--graphics none)"), r.W, 1)
		}
	case (m.proto == termgfx.HalfBlock || m.proto == termgfx.Kitty) && pic.rect == r && i < len(pic.lines):
		return pic.lines[i]
	}
	return strings.Repeat(" ", r.W)
}

// showImages reports whether the main screen with its images is showing.
func (m *Model) showImages() bool {
	return m.screen == screenMain && m.a != nil && !m.lay.tooSmall && m.width > 0
}

func (m *Model) rightView() string {
	l := m.lay
	tx, ty, _ := m.token()
	layer, _ := m.currentLayer()
	sp := scorePanel{st: m.styles, info: m.info, layer: layer, res: m.res, current: m.current(), t: m.t, metric: m.metric, tx: tx, ty: ty}
	if m.res != nil && m.res.Req.Layer != m.layer {
		sp.res = nil
	}
	sp.SetSize(l.score.W, l.score.H)
	ll := m.layerList()
	return lipgloss.JoinVertical(lipgloss.Left, sp.View(), ll.View())
}

func (m *Model) layerList() layerList {
	ll := layerList{st: m.styles, layers: m.info.Layers, scores: m.scores[scoreKey{m.t, m.metric}], selected: m.layer, t: m.t, metric: m.metric, scale: m.scale}
	ll.SetSize(m.lay.layers.W, m.lay.layers.H)
	return ll
}

func (m *Model) timeline() timeline {
	tl := timeline{st: m.styles, t: m.t, points: map[int]float64{}, higher: m.metric.HigherIsMoreSimilar(), timesteps: m.info.Timesteps}
	for k, s := range m.scores {
		if k.metric != m.metric || m.layer >= len(s) {
			continue
		}
		v := s[m.layer].Score
		if s[m.layer].Meaningless {
			v = math.NaN()
		}
		tl.points[k.t] = v
	}
	tl.SetSize(m.width, 3)
	return tl
}

func (m *Model) clipPanel() clipPanel {
	p := clipPanel{st: m.styles, clip: m.clip, frame: m.frame}
	p.SetSize(m.width, 3)
	return p
}

func (m *Model) statusBar() statusBar {
	sb := statusBar{st: m.styles, spinner: m.spinner.View(), err: m.err, notice: m.notice}
	now := m.now()
	switch {
	case m.loading:
		sb.working = "loading images…"
	case m.a == nil:
		sb.working = "no images"
	case m.fg.busy:
		sb.working = fmt.Sprintf("scoring %s t=%d (%s)", m.layerLabel(m.fg.req.Layer), m.fg.req.T, elapsed(now, m.fg.since))
		if m.progress.What != "" && !m.seen[m.fg.req.T] {
			sb.working += " · " + progressText(m.progress)
		}
		if slow := now.Sub(m.fg.since); slow > slowRun && m.info.Size > 256 && !strings.HasPrefix(m.info.Device, "cuda") {
			// A real U-Net takes seconds per timestep on a CPU; say what would help.
			sb.working += fmt.Sprintf(" · slow on CPU: --size 256 is ~%d× faster", (m.info.Size*m.info.Size)/(256*256))
		}
	case m.bg.busy:
		what := "layer scores"
		if m.bg.t != m.t {
			what = "ahead"
		}
		sb.working = fmt.Sprintf("%s t=%d (%s)", what, m.bg.t, elapsed(now, m.bg.since))
	}
	stats := m.stats.stats
	// Timesteps computed for this pair under any metric: switching the metric or the order
	// of A and B reuses their features, so the count does not drop.
	computed := map[int]bool{}
	if m.a != nil {
		for k := range m.scores {
			computed[k.t] = true
		}
		for t := range m.seen {
			computed[t] = true
		}
	}
	cache := fmt.Sprintf("%d t computed · %d runs", len(computed), stats.Forwards)
	if stats.CacheBudget > 0 {
		cache += fmt.Sprintf(" · cache %d/%d MiB", stats.CacheBytes>>20, stats.CacheBudget>>20)
	}
	if m.a != nil && (m.seen[m.t] || (m.stats.tCached && m.stats.t == m.t && m.stats.gen == m.gen)) {
		cache = "t cached · " + cache
	}
	sb.cache = cache + " "
	sb.SetSize(m.width, 1)
	return sb
}

func (m *Model) layerLabel(i int) string {
	if i < 0 || i >= len(m.info.Layers) {
		return "?"
	}
	return shortName(m.info.Layers[i])
}

func progressText(p session.Progress) string {
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

// handleClick selects a token (photos, A's map), a layer (the list, the sweep) or a
// timestep (the slider).
func (m *Model) handleClick(ms tea.Mouse) tea.Cmd {
	if m.lay.tooSmall || m.prompting || ms.Button != tea.MouseLeft {
		return nil
	}
	l := m.lay
	if m.screen == screenSweep {
		if layer, col, ok := m.sw.cellAt(ms.X-l.body.X, ms.Y-l.body.Y); ok {
			// A click moves the sweep's cursor, a second click on it jumps there.
			if m.sw.row == layer && m.sw.col == col {
				return func() tea.Msg { return sweepJumpMsg{layer: layer, t: m.sw.ts[col]} }
			}
			m.sw.row, m.sw.col = layer, col
		}
		return nil
	}
	if m.screen == screenMain && m.a != nil {
		for _, p := range []pane{paneA, paneB, paneMapA} {
			if r := l.panes[p]; r.contains(ms.X, ms.Y) {
				return m.clickToken(p, ms.X-r.X, ms.Y-r.Y)
			}
		}
		if l.layers.contains(ms.X, ms.Y) {
			if i := m.layerList().layerAt(ms.Y - l.layers.Y); i >= 0 {
				return m.setLayer(i)
			}
		}
	}
	if l.timeline.contains(ms.X, ms.Y) && m.clip != nil {
		if i := m.clipPanel().frameAt(ms.X); i >= 0 {
			return m.setFrame(i)
		}
		return nil
	}
	if l.timeline.contains(ms.X, ms.Y) && ms.Y == l.timeline.Y+1 {
		if t := m.timeline().timeAt(ms.X); t >= 0 {
			return m.setT(t)
		}
	}
	return nil
}

// clickToken picks the token under cell (cx, cy) of pane p, through the same fitting the
// renderer used.
func (m *Model) clickToken(p pane, cx, cy int) tea.Cmd {
	gw, gh := m.grid()
	if gw <= 0 || gh <= 0 {
		return nil
	}
	r := m.lay.panes[p]
	pw, ph := r.W, 2*r.H
	sx, sy := 1.0, 2.0
	if m.pixelImages() {
		cw, ch := m.cellSize()
		pw, ph, sx, sy = r.W*cw, r.H*ch, float64(cw), float64(ch)
	}
	var fr = fitRect(gw, gh, pw, ph)
	switch p {
	case paneA:
		fr = fitRect(m.a.W, m.a.H, pw, ph)
	case paneB:
		fr = fitRect(m.b.W, m.b.H, pw, ph)
	}
	px, py := (float64(cx)+0.5)*sx, (float64(cy)+0.5)*sy
	if px < float64(fr.Min.X) || py < float64(fr.Min.Y) || px >= float64(fr.Max.X) || py >= float64(fr.Max.Y) {
		return nil
	}
	tx := int((px - float64(fr.Min.X)) * float64(gw) / float64(fr.Dx()))
	ty := int((py - float64(fr.Min.Y)) * float64(gh) / float64(fr.Dy()))
	return m.setToken(tx, ty)
}

// handleDrag scrubs t while the left button is held on the slider, and moves the token
// while it is held on a picture.
func (m *Model) handleDrag(ms tea.Mouse) tea.Cmd {
	if ms.Button != tea.MouseLeft {
		return nil
	}
	return m.handleClick(ms)
}

func (m *Model) handleWheel(ms tea.Mouse) tea.Cmd {
	if m.lay.tooSmall || m.prompting {
		return nil
	}
	if m.screen == screenSweep {
		return nil
	}
	if m.lay.layers.contains(ms.X, ms.Y) {
		switch ms.Button {
		case tea.MouseWheelUp:
			return m.setLayer(m.layer - 1)
		case tea.MouseWheelDown:
			return m.setLayer(m.layer + 1)
		}
	}
	if m.lay.timeline.contains(ms.X, ms.Y) && m.clip != nil {
		switch ms.Button {
		case tea.MouseWheelUp, tea.MouseWheelRight:
			return m.setFrame(m.frame + 1)
		case tea.MouseWheelDown, tea.MouseWheelLeft:
			return m.setFrame(m.frame - 1)
		}
	}
	if m.lay.timeline.contains(ms.X, ms.Y) {
		switch ms.Button {
		case tea.MouseWheelUp, tea.MouseWheelRight:
			return m.setT(m.t + fineStep)
		case tea.MouseWheelDown, tea.MouseWheelLeft:
			return m.setT(m.t - fineStep)
		}
	}
	return nil
}
