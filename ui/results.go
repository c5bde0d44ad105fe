package ui

// The results explorer (diffsim explore --results): a benchmark's accuracy matrix, a cell's
// failed decisions, and a decision's images in the explorer.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/bench"
)

// Results is a benchmark's results for RunResults.
type Results struct {
	Path   string       // the results file or folder, read again for a cell's decisions
	Report bench.Report // its accuracy matrices
	Root   string       // the benchmark's folder, which the decisions' image paths are relative to
}

// RunResults shows a benchmark's accuracy matrix (layers × t, one per decision set and
// metric) until the user quits: Enter on a cell lists the decisions the metric got wrong
// there, worst margin first; Enter on one opens its reference and candidates in the explorer
// at that layer, t and metric. The model behind b must be the one the results were made with.
// The terminal is restored on every way out, as Run says.
func RunResults(ctx context.Context, b Backend, r Results, opts Options) error {
	if b == nil {
		return errors.New("ui: no backend")
	}
	var rm *resultsModel
	_, err := runProgram(ctx, opts, func(ctx context.Context, opts Options, out imagePlacer) tea.Model {
		rm = newResultsModel(ctx, b, r, opts)
		rm.placer = out
		return rm
	})
	if rm != nil && rm.ex != nil {
		rm.ex.stopWork()
	}
	return err
}

// resultsScreen is what the results explorer shows.
type resultsScreen int

const (
	resultsMatrix resultsScreen = iota
	resultsList
	resultsPair
)

// screenAway is the embedded explorer's screen while the results explorer shows something
// else: not the main screen, so the explorer places no images over the matrix or the list.
const screenAway screen = -1

// resultsKeyMap are the keys of the results explorer besides its components' own.
type resultsKeyMap struct {
	Set, Metric, Quit, Help       key.Binding
	Other, Next, Prev, BackToList key.Binding
}

func defaultResultsKeys() resultsKeyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return resultsKeyMap{
		Set:        b([]string{"s", "tab"}, "s/tab", "next decision set"),
		Metric:     b([]string{"m"}, "m", "next metric"),
		Quit:       b([]string{"q", "ctrl+c"}, "q", "quit"),
		Help:       b([]string{"?"}, "?", "more keys"),
		Other:      b([]string{"x", "tab"}, "x/tab", "other candidate"),
		Next:       b([]string{"n"}, "n", "next decision"),
		Prev:       b([]string{"N"}, "N", "previous decision"),
		BackToList: b([]string{"esc"}, "esc", "back to the list"),
	}
}

// resultsModel is the root of the results explorer. Its explorer is made when the first
// decision is opened and kept, so its caches and background work carry over between
// decisions; while the matrix or the list shows, it is told to be away.
type resultsModel struct {
	ctx    context.Context
	b      Backend
	res    Results
	opts   Options
	st     Styles
	keys   resultsKeyMap
	help   help.Model
	w, h   int
	screen resultsScreen
	set    int // the matrix's decision set and metric: indices into the settings
	metric int
	mx     sweepModel
	list   failuresModel
	ex     *Model // the explorer, nil until a decision is opened
	placer imagePlacer
	open   int // the decision shown: index into list.rows
	cand   int // 0: the explorer's image B is candidate A; 1: candidate B
	err    error
	gen    int // bumped with each cell asked for, to drop the answers of older ones
}

func newResultsModel(ctx context.Context, b Backend, r Results, opts Options) *resultsModel {
	dark := true
	if opts.Dark != nil {
		dark = *opts.Dark
	}
	st := NewStyles(dark)
	g := r.Report.Settings
	layers := make([]api.Layer, len(g.Layers))
	for i, l := range g.Layers {
		layers[i] = api.Layer{Index: i, Name: l.Name, Short: l.Short, ImageKV: !l.Meaningless}
	}
	m := &resultsModel{ctx: ctx, b: b, res: r, opts: opts, st: st, keys: defaultResultsKeys(), help: help.New()}
	m.help.Styles = help.DefaultStyles(dark)
	m.mx = newSweep(st, layers, g.T)
	m.mx.keys.Jump.SetHelp("enter", "failed decisions")
	m.mx.keys.Close.SetEnabled(false) // the matrix is the top: q quits
	m.list = newFailuresModel(st)
	m.syncMatrix()
	// the cursor starts on the best cell
	m.mx.Focus()
	return m
}

// Init asks the terminal for its background colour, as the explorer does.
func (m *resultsModel) Init() tea.Cmd {
	if m.opts.Dark == nil {
		return tea.RequestBackgroundColor
	}
	return nil
}

// syncMatrix hands the sweep component the accuracies of the current set and metric, with
// the best cell as the one "shown".
func (m *resultsModel) syncMatrix() {
	rep := m.res.Report
	g := rep.Settings
	scores := map[scoreKey][]api.LayerScore{}
	bestRow, bestT := -1, -1
	for ti, t := range g.T {
		row := make([]api.LayerScore, len(g.Layers))
		for li := range g.Layers {
			c := rep.At(m.set, m.metric, li, ti)
			row[li] = api.LayerScore{Layer: li, T: t, Score: float64(c.Accuracy), Meaningless: c.Meaningless || c.N == 0}
			if c.Best {
				bestRow, bestT = li, t
			}
		}
		scores[scoreKey{t, api.AAS}] = row
	}
	m.mx.SetData(sweepData{scores: scores, metric: api.AAS, layer: bestRow, t: bestT})
	set, metric := g.Sets[m.set], g.Metrics[m.metric]
	m.mx.labels = sweepLabels{
		title: "accuracy",
		what:  fmt.Sprintf("%s set · %s · layer × timestep", set, metricName(api.Metric(metric))),
		ramp:  "lower → higher accuracy",
		notes: []string{"◆ best cell", "n/a no decisions or no image information"},
	}
}

func (m *resultsModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		m.help.SetWidth(m.w)
		m.mx.SetSize(m.w, max(m.h-3, 1))
		m.list.SetSize(m.w, max(m.h-3, 1))
		if m.ex != nil {
			_, cmd := m.ex.Update(tea.WindowSizeMsg{Width: m.w, Height: max(m.h-1, 1)})
			return m, cmd
		}
		return m, nil
	case tea.BackgroundColorMsg:
		m.st = NewStyles(msg.IsDark())
		m.mx.SetStyles(m.st)
		m.list.st = m.st
		m.help.Styles = help.DefaultStyles(msg.IsDark())
		if m.ex != nil {
			_, cmd := m.ex.Update(msg)
			return m, cmd
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case cellMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.err = msg.err
		if msg.err == nil {
			m.list.SetData(msg.cell, msg.rows)
		}
		return m, nil
	case sweepJumpMsg:
		if m.screen == resultsMatrix {
			return m, m.openCell(msg.layer, msg.t)
		}
	case closeViewMsg:
		if m.screen == resultsMatrix {
			return m, nil // the matrix is the top: q quits
		}
	case failureOpenMsg:
		return m, m.openDecision(msg.row)
	}
	if m.ex != nil {
		_, cmd := m.ex.Update(msg)
		return m, cmd
	}
	return m, nil
}

func (m *resultsModel) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch m.screen {
	case resultsMatrix:
		switch {
		case key.Matches(msg, k.Quit):
			return tea.Quit
		case key.Matches(msg, k.Help):
			m.help.ShowAll = !m.help.ShowAll
			return nil
		case key.Matches(msg, k.Set):
			m.set = (m.set + 1) % len(m.res.Report.Settings.Sets)
			m.syncMatrix()
			return nil
		case key.Matches(msg, k.Metric):
			m.metric = (m.metric + 1) % len(m.res.Report.Settings.Metrics)
			m.syncMatrix()
			return nil
		}
		var cmd tea.Cmd
		m.mx, cmd = m.mx.Update(msg)
		return cmd
	case resultsList:
		switch {
		case key.Matches(msg, k.Quit):
			return tea.Quit
		case key.Matches(msg, m.list.keys.Back):
			m.screen = resultsMatrix
			return nil
		}
		var cmd tea.Cmd
		m.list, cmd = m.list.Update(msg)
		return cmd
	}
	// the explorer has the keys, but for the ones that leave it or move between decisions,
	// while it shows its main screen with nothing typed
	ex := m.ex
	if ex.sel.screen == screenMain && !ex.pb.Active() && !ex.hv.Open() {
		switch {
		case key.Matches(msg, k.BackToList):
			m.screen = resultsList
			return m.away()
		case key.Matches(msg, k.Other):
			m.cand = 1 - m.cand
			return m.showDecision()
		case key.Matches(msg, k.Next):
			return m.openDecision(min(m.open+1, len(m.list.rows)-1))
		case key.Matches(msg, k.Prev):
			return m.openDecision(max(m.open-1, 0))
		}
	}
	_, cmd := ex.Update(msg)
	return cmd
}

// away tells the explorer it no longer has the screen: its images come off.
func (m *resultsModel) away() tea.Cmd {
	if m.ex == nil {
		return nil
	}
	m.ex.sel.screen = screenAway
	m.ex.place(true)
	return nil
}

// cellMsg answers a cell's decisions.
type cellMsg struct {
	gen  int
	cell cellRef
	rows []bench.Decision
	err  error
}

// cellRef names a cell of the report: set, metric, layer and timestep, as indices.
type cellRef struct{ set, metric, layer, t int }

// openCell lists the failed decisions of the matrix's cell at layer row li and timestep t,
// read from the results off the UI goroutine.
func (m *resultsModel) openCell(li, t int) tea.Cmd {
	g := m.res.Report.Settings
	ti := g.TIndex(t)
	if li < 0 || li >= len(g.Layers) || ti < 0 {
		return nil
	}
	m.gen++
	m.screen = resultsList
	c := cellRef{set: m.set, metric: m.metric, layer: li, t: ti}
	m.list.Loading(c, m.describe(c))
	gen, path, set := m.gen, m.res.Path, g.Sets[m.set]
	return func() tea.Msg {
		_, ds, err := bench.CellDecisions(path, set, li, ti, c.metric)
		return cellMsg{gen: gen, cell: c, rows: bench.Disagreements(ds), err: err}
	}
}

// describe names a cell for headings: "style · AAS · Up0 attn1 · t=101 (step 900)".
func (m *resultsModel) describe(c cellRef) string {
	g := m.res.Report.Settings
	return fmt.Sprintf("%s · %s · %s · %s", g.Sets[c.set], metricName(api.Metric(g.Metrics[c.metric])),
		g.Layers[c.layer].Label, bench.TimestepLabel(g.T[c.t], g.Step[c.t]))
}

// openDecision opens row i of the list in the explorer, candidate A first.
func (m *resultsModel) openDecision(i int) tea.Cmd {
	if i < 0 || i >= len(m.list.rows) {
		return nil
	}
	m.open, m.cand = i, 0
	m.list.SetCursor(i)
	return m.showDecision()
}

// showDecision shows the open decision's reference and current candidate in the explorer at
// the cell's layer, t and metric, making the explorer on first use.
func (m *resultsModel) showDecision() tea.Cmd {
	d := m.list.rows[m.open]
	c := m.list.cell
	g := m.res.Report.Settings
	layer, t, metric := g.Layers[c.layer].Index, g.T[c.t], api.Metric(g.Metrics[c.metric])
	ref, cand := m.path(d.Ref), m.path(d.A)
	if m.cand == 1 {
		cand = m.path(d.B)
	}
	m.screen = resultsPair
	if m.ex == nil {
		opts := m.opts
		opts.Layer, opts.T, opts.Metric = layer, t, metric
		m.ex = New(m.ctx, m.b, ref, cand, opts)
		m.ex.pv.SetPlacer(m.placer)
		_, size := m.ex.Update(tea.WindowSizeMsg{Width: m.w, Height: max(m.h-1, 1)})
		return tea.Batch(m.ex.Init(), size)
	}
	ex := m.ex
	ex.sel.layer = min(max(layer, 0), len(ex.info.Layers)-1)
	if ex.info.Timesteps {
		ex.sel.t = t
	}
	ex.sel.metric = metric
	ex.pair.pathA, ex.pair.pathB = ref, cand
	return tea.Batch(ex.loadCmd(ref, cand), ex.closeView())
}

// path resolves a decision's image path against the benchmark's folder.
func (m *resultsModel) path(p string) string {
	if filepath.IsAbs(p) || m.res.Root == "" {
		return p
	}
	return filepath.Join(m.res.Root, p)
}

func (m *resultsModel) View() tea.View {
	var content string
	switch {
	case m.w == 0 || m.h == 0:
	case m.screen == resultsPair && m.ex != nil:
		content = m.ex.content() + "\n" + block(m.decisionLine(), m.w, 1)
	default:
		content = m.resultsView()
	}
	v := tea.NewView(content)
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "diffsim results " + filepath.Base(m.res.Path)
	return v
}

func (m *resultsModel) resultsView() string {
	g := m.res.Report.Settings
	st := m.st
	head := st.PanelTitle.Render(" "+filepath.Base(m.res.Path)) + st.Dim.Render(fmt.Sprintf("  %s, model %s, %d decisions", g.Layout, g.Model, g.Total))
	if !m.res.Report.Complete() {
		head += st.Warn.Render(fmt.Sprintf("  INCOMPLETE: %d of %d recorded", m.res.Report.Records, m.res.Report.Expected))
	}
	var body, status string
	var km help.KeyMap
	bodyH := max(m.h-3, 1)
	switch m.screen {
	case resultsMatrix:
		body = m.mx.View()
		status = m.cursorLine()
		km = matrixKeys{m.keys, m.mx.keys}
	default:
		body = m.list.View()
		switch {
		case m.err != nil:
			status = st.Error.Render(" " + oneLineErr(m.err))
		default:
			status = st.Dim.Render(" " + m.list.status())
		}
		km = m.list.keys
	}
	helpLine := " " + m.help.ShortHelpView(km.ShortHelp())
	if m.help.ShowAll {
		helpLine = " " + m.help.FullHelpView(km.FullHelp())
	}
	return strings.Join([]string{
		block(ansi.Truncate(head, m.w, "…"), m.w, 1),
		block(body, m.w, bodyH),
		block(ansi.Truncate(status, m.w, "…"), m.w, 1),
		block(ansi.Truncate(helpLine, m.w, "…"), m.w, 1),
	}, "\n")
}

// cursorLine describes the matrix's cell under the cursor: its interval and where it stands
// against the best.
func (m *resultsModel) cursorLine() string {
	g := m.res.Report.Settings
	li, ti := m.mx.row, m.mx.col
	if li < 0 || li >= len(g.Layers) || ti < 0 || ti >= len(g.T) {
		return ""
	}
	c := m.res.Report.At(m.set, m.metric, li, ti)
	s := fmt.Sprintf(" %s %s: ", c.LayerLabel, bench.TimestepLabel(c.T, c.Step))
	switch {
	case c.Meaningless:
		return m.st.Dim.Render(s + "cross-attention on text: every decision is a tie")
	case c.N == 0:
		return m.st.Dim.Render(s + "no decisions")
	}
	s += fmt.Sprintf("%.1f%% [%.1f, %.1f] · %d of %d right", 100*float64(c.Accuracy), 100*float64(c.Low), 100*float64(c.High), c.Correct, c.N)
	switch {
	case c.Best:
		s += " · the best cell"
	case c.Indistinguishable:
		s += fmt.Sprintf(" · not distinguishable from the best (McNemar p = %.2g)", float64(c.PBest))
	case !math.IsNaN(float64(c.PBest)):
		s += fmt.Sprintf(" · worse than the best (McNemar p = %.2g)", float64(c.PBest))
	}
	return m.st.Value.Render(s) + m.st.Dim.Render(" · enter: its failed decisions")
}

// decisionLine is the line under the explorer: the decision, the recorded scores of the
// reference against each candidate, and which one the metric and the label chose.
func (m *resultsModel) decisionLine() string {
	d := m.list.rows[m.open]
	st := m.st
	a, b := pairText(float64(d.ScoreA), float64(d.ScoreB))
	shown, other := "A", "B"
	if m.cand == 1 {
		shown, other = "B", "A"
	}
	s := fmt.Sprintf(" %d/%d · decision %d: reference vs A %s, vs B %s · the metric chose %s, the label %s · showing %s",
		m.open+1, len(m.list.rows), d.Index, a, b, strings.ToUpper(d.Choice), strings.ToUpper(d.Human), shown)
	return st.Warn.Render(s) + st.Dim.Render(fmt.Sprintf(" · x: show %s · n/N: next/prev · esc: list", other))
}

// matrixKeys is the help of the matrix screen: its own keys and the sweep component's.
type matrixKeys struct {
	r resultsKeyMap
	s sweepKeyMap
}

func (k matrixKeys) ShortHelp() []key.Binding {
	return []key.Binding{k.s.Jump, k.r.Set, k.r.Metric, k.s.Up, k.s.Down, k.s.Left, k.s.Right, k.r.Quit}
}

func (k matrixKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.s.Up, k.s.Down, k.s.Left, k.s.Right, k.s.Home, k.s.End}, {k.s.Jump, k.r.Set, k.r.Metric, k.r.Help, k.r.Quit}}
}

func oneLineErr(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
