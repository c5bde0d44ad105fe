package ui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// screen is what the body of the explorer shows.
type screen int

const (
	screenMain screen = iota
	screenSweep
	screenHelp
)

// overlayMode is what is blended over the photographs.
type overlayMode int

const (
	overlayNone overlayMode = iota
	overlayCos              // A's and B's token cosine maps
	overlayAttn             // the selected token's attention over B
	overlayModes
)

func (o overlayMode) String() string {
	return [...]string{"off", "cosine maps", "attention"}[o]
}

// scoreKey names the layer scores of one timestep under one metric.
type scoreKey struct {
	t      int
	metric session.Metric
}

// Model is the explorer's root model. Create it with New; Run drives it.
type Model struct {
	firstShown bool // OnFirstImages was called

	ctx     context.Context
	backend Backend
	info    session.ModelInfo
	keys    KeyMap
	styles  Styles
	opts    Options
	proto   termgfx.Protocol
	placer  imagePlacer // nil unless images are placed outside the View
	caps    termgfx.Caps

	width, height int
	lay           layout

	pathA, pathB string
	a, b         *session.Image
	gen          int // bumped whenever the pair changes, to drop answers about the old one
	loading      bool
	loadErr      error

	layer, t int
	metric   session.Metric
	cx, cy   float64 // token cursor as a fraction of the grid: it survives a change of grid
	overlay  overlayMode
	screen   screen

	res    *session.Result // latest result for this pair; may answer an older request
	fg     job             // the Score for the current view
	bg     job             // one background job: layer scores or a prefetch
	jobID  int
	scores map[scoreKey][]session.LayerScore
	seen   map[int]bool // timesteps whose features were computed for this pair
	stats  statsMsg     // latest snapshot of the backend's counters

	render  *renderer
	pics    pictures
	picSeq  int // last render asked for
	picShow int // seq of the pictures shown

	clip  *Clip // nil unless exploring a clip
	frame int   // the clip's frame shown as image B

	prompting bool
	promptFor promptKind
	prompt    pathPrompt

	cond     features.Conditioning  // what scores are conditioned on now
	condBusy bool                   // a SetConditioning is running
	condWant features.Conditioning  // what it asked for
	condNext *features.Conditioning // asked for while it ran; starts when it ends
	condSeq  int
	help     help.Model
	spinner  spinner.Model
	progress session.Progress
	err      error  // last error, shown on the status line
	notice   string // last export or other note
	now      func() time.Time
}

// job is one piece of work in flight.
type job struct {
	busy   bool
	id     int
	t      int
	req    session.Request
	since  time.Time
	cancel context.CancelFunc
}

func (j *job) stop() {
	if j.cancel != nil {
		j.cancel()
	}
	*j = job{}
}

// New returns the explorer's model for the pair of paths. It does no work: Init loads
// the images.
func New(ctx context.Context, b Backend, pathA, pathB string, opts Options) *Model {
	info := b.Info()
	m := &Model{
		ctx: ctx, backend: b, info: info, keys: DefaultKeyMap(), opts: opts,
		pathA: pathA, pathB: pathB, loading: true,
		layer: info.DefaultLayer, t: info.DefaultT, metric: session.AAS,
		cx: 0.5, cy: 0.5, overlay: overlayCos,
		scores: map[scoreKey][]session.LayerScore{},
		seen:   map[int]bool{},
		help:   help.New(),
		render: newRenderer(),
		prompt: newPathPrompt(),
		now:    time.Now,
	}
	if opts.Layer >= 0 && opts.Layer < len(info.Layers) {
		m.layer = opts.Layer
	}
	if opts.T >= 0 {
		m.t = min(opts.T, maxT)
	}
	if opts.Metric != "" {
		m.metric = opts.Metric
	}
	m.caps = capsFor(opts)
	m.proto = m.caps.Protocol
	dark := true
	if opts.Dark != nil {
		dark = *opts.Dark
	}
	m.setStyles(dark)
	m.spinner = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(m.styles.Spinner))
	m.prompt.Prompt = "open A B › "
	m.prompt.Placeholder = "path/to/a.png path/to/b.png"
	if c, ok := m.conditioner(); ok {
		m.cond = c.Conditioning()
	}
	if opts.Clip != nil && len(opts.Clip.Frames) > 0 {
		m.clipMode(opts.Clip)
	}
	return m
}

func (m *Model) setStyles(dark bool) {
	m.styles = NewStyles(dark)
	m.help.Styles = help.DefaultStyles(dark)
	m.prompt.PromptStyle = m.styles.Prompt
	m.prompt.TextStyle = m.styles.Value
	m.prompt.DimStyle = m.styles.Dim
	m.prompt.CursorStyle = m.styles.Cursorline
}

// capsFor decides how to draw from the detected capabilities and the --graphics choice.
func capsFor(opts Options) termgfx.Caps {
	var c termgfx.Caps
	if opts.Caps != nil {
		c = *opts.Caps
	} else {
		c = termgfx.Caps{Protocol: termgfx.HalfBlock, TrueColor: true}
	}
	c = c.Force(opts.Graphics)
	if opts.CellW > 0 && opts.CellH > 0 {
		c.CellW, c.CellH = opts.CellW, opts.CellH
	}
	switch c.Protocol {
	case termgfx.Sixel, termgfx.Kitty, termgfx.None, termgfx.HalfBlock:
	default:
		c.Protocol = termgfx.HalfBlock
	}
	return c
}

// Init loads the pair, asks the terminal for its background and starts listening for
// progress.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.loadCmd(m.pathA, m.pathB), m.spinner.Tick, m.listenProgress(), statsTick()}
	if m.opts.Dark == nil {
		cmds = append(cmds, tea.RequestBackgroundColor)
	}
	return tea.Batch(cmds...)
}

// Update handles one message. It never waits for the network: every request leaves as a
// command and comes back as a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		resized := m.width != 0 && (m.width != msg.Width || m.height != msg.Height)
		m.width, m.height = msg.Width, msg.Height
		m.lay = computeLayout(m.width, m.height, m.cellAspect())
		m.help.SetWidth(m.width)
		m.prompt.SetWidth(max(m.width-len(m.prompt.Prompt)-2, 10))
		if resized {
			// The terminal reflows or crops what it shows on a resize, images included, so
			// the renderer's idea of the screen is stale: repaint all of it (the placement
			// writer sees the clear and redraws every image at its new cells).
			return m, tea.Batch(tea.ClearScreen, m.renderCmd())
		}
		return m, m.renderCmd()

	case tea.BackgroundColorMsg:
		m.setStyles(msg.IsDark())
		m.spinner.Style = m.styles.Spinner
		return m, m.renderCmd()

	case tea.KeyPressMsg:
		return m, m.handleKey(msg)

	case tea.MouseClickMsg:
		return m, m.handleClick(tea.Mouse(msg))

	case tea.MouseMotionMsg:
		return m, m.handleDrag(tea.Mouse(msg))

	case tea.MouseWheelMsg:
		return m, m.handleWheel(tea.Mouse(msg))

	case tea.PasteMsg:
		if m.prompting {
			var cmd tea.Cmd
			m.prompt, cmd = m.prompt.Update(msg)
			return m, cmd
		}
		return m, nil

	case pairMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.a, m.b, m.loading, m.loadErr, m.err = msg.a, msg.b, false, nil, nil
		m.pathA, m.pathB = msg.a.Path, msg.b.Path
		m.res = nil
		clear(m.scores)
		clear(m.seen)
		m.render.forget()
		return m, tea.Batch(m.schedule(), m.renderCmd())

	case scoreMsg:
		if msg.gen != m.gen || !m.fg.busy || !sameRequest(msg.res.Req, m.fg.req) {
			return m, nil
		}
		m.fg.stop()
		res := msg.res
		m.res = &res
		m.seen[res.Req.T] = true
		m.err = nil
		return m, tea.Batch(m.schedule(), m.renderCmd())

	case layerScoresMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.scores[scoreKey{msg.t, msg.metric}] = msg.scores
		m.seen[msg.t] = true
		if msg.id == m.bg.id {
			m.bg.stop()
		}
		return m, m.schedule()

	case prefetchMsg:
		if msg.gen == m.gen {
			m.seen[msg.t] = true
			if msg.id == m.bg.id {
				m.bg.stop()
			}
		}
		return m, m.schedule()

	case conditioningMsg:
		return m, m.conditioned(msg)

	case statsTickMsg:
		return m, tea.Batch(m.statsCmd(), statsTick())

	case statsMsg:
		m.stats = msg
		return m, nil

	case picturesMsg:
		if msg.seq > m.picShow {
			m.picShow = msg.seq
			m.pics = msg.pics
			m.place()
			if !m.firstShown && m.opts.OnFirstImages != nil && hasPhoto(m.pics.panes[paneA]) && hasPhoto(m.pics.panes[paneB]) {
				m.firstShown = true
				m.opts.OnFirstImages()
			}
		}
		return m, nil

	case progressMsg:
		m.progress = session.Progress(msg)
		return m, m.listenProgress()

	case exportMsg:
		m.notice = "exported " + joinPaths(msg.paths)
		return m, nil

	case errMsg:
		return m, m.handleError(msg)

	case spinner.TickMsg:
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return m, cmd
	}
	if m.prompting {
		var cmd tea.Cmd
		m.prompt, cmd = m.prompt.Update(msg)
		return m, cmd
	}
	return m, nil
}

func (m *Model) handleError(e errMsg) tea.Cmd {
	switch e.op {
	case "load":
		if e.gen != m.gen {
			return nil
		}
		m.loading = false
		m.loadErr = e.err
		m.err = e.err
		return nil
	case "score":
		if e.gen != m.gen || !m.fg.busy || !sameRequest(e.req, m.fg.req) {
			return nil
		}
		m.fg.stop()
	case "layers", "prefetch":
		if e.gen != m.gen || e.id != m.bg.id {
			return nil
		}
		m.bg.stop()
		if errors.Is(e.err, context.Canceled) {
			return m.schedule()
		}
		// A background failure is shown but not retried: the next change of view
		// schedules it again.
		m.err = e
		return nil
	}
	if errors.Is(e.err, context.Canceled) {
		return nil
	}
	m.err = e
	return nil
}

func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	m.notice = "" // a note answers the key before this one
	if m.prompting {
		switch {
		case key.Matches(msg, k.Cancel):
			m.prompting = false
			m.prompt.Blur()
			return nil
		case key.Matches(msg, k.Accept):
			m.prompting = false
			m.prompt.Blur()
			if m.promptFor == promptText {
				c := m.wantedCond()
				c.Prompt = m.prompt.Value()
				return m.setConditioning(c)
			}
			paths, err := splitPaths(m.prompt.Value())
			if err != nil {
				m.err = err
				return nil
			}
			return m.loadCmd(paths[0], paths[1])
		case key.Matches(msg, k.Interrupt):
			return m.quit()
		}
		var cmd tea.Cmd
		m.prompt, cmd = m.prompt.Update(msg)
		return cmd
	}
	if m.screen == screenHelp && !key.Matches(msg, k.Quit, k.Interrupt) {
		m.screen = screenMain // any key leaves the help view
		m.place()
		return m.renderCmd()
	}
	switch {
	case key.Matches(msg, k.Quit, k.Interrupt):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.screen = screenHelp
		m.place()
		return nil
	case key.Matches(msg, k.Open):
		m.openPrompt(promptPair, quotePath(m.pathA)+" "+quotePath(m.pathB))
		return nil
	case key.Matches(msg, k.Prompt):
		return m.openTextPrompt()
	case key.Matches(msg, k.CFG):
		return m.toggleCFG()
	case key.Matches(msg, k.FramePrev):
		return m.setFrame(m.frame - 1)
	case key.Matches(msg, k.FrameNext):
		return m.setFrame(m.frame + 1)
	case key.Matches(msg, k.TimeBack):
		return m.setT(m.t - fineStep)
	case key.Matches(msg, k.TimeFwd):
		return m.setT(m.t + fineStep)
	case key.Matches(msg, k.TimeBackFar):
		return m.setT(m.t - coarseStep)
	case key.Matches(msg, k.TimeFwdFar):
		return m.setT(m.t + coarseStep)
	case key.Matches(msg, k.LayerUp):
		return m.setLayer(m.layer - 1)
	case key.Matches(msg, k.LayerDown):
		return m.setLayer(m.layer + 1)
	case key.Matches(msg, k.Up):
		return m.moveToken(0, -1)
	case key.Matches(msg, k.Down):
		return m.moveToken(0, 1)
	case key.Matches(msg, k.Left):
		return m.moveToken(-1, 0)
	case key.Matches(msg, k.Right):
		return m.moveToken(1, 0)
	case key.Matches(msg, k.Metric):
		m.metric = nextMetric(m.metric)
		return m.schedule()
	case key.Matches(msg, k.Swap):
		return m.swap()
	case key.Matches(msg, k.Overlay):
		m.overlay = (m.overlay + 1) % overlayModes
		return m.renderCmd()
	case key.Matches(msg, k.Sweep):
		if m.screen == screenSweep {
			m.screen = screenMain
		} else {
			m.screen = screenSweep
		}
		m.place()
		return tea.Batch(m.schedule(), m.renderCmd())
	case key.Matches(msg, k.Export):
		return m.exportCmd()
	}
	return nil
}

func (m *Model) quit() tea.Cmd {
	m.stopWork()
	return tea.Quit
}

// stopWork cancels everything in flight; the backend's runs see their contexts end.
func (m *Model) stopWork() {
	m.fg.stop()
	m.bg.stop()
}

const maxT = 999

func (m *Model) setT(t int) tea.Cmd {
	if !m.info.Timesteps {
		m.notice = "this model has no timesteps"
		return nil
	}
	t = min(max(t, 0), maxT)
	if t == m.t {
		return nil
	}
	m.t = t
	return m.schedule()
}

func (m *Model) setLayer(l int) tea.Cmd {
	l = min(max(l, 0), len(m.info.Layers)-1)
	if l == m.layer || l < 0 {
		return nil
	}
	m.layer = l
	return tea.Batch(m.schedule(), m.renderCmd())
}

// grid returns the current layer's token grid (0×0 when it has none).
func (m *Model) grid() (w, h int) {
	if m.layer < 0 || m.layer >= len(m.info.Layers) {
		return 0, 0
	}
	l := m.info.Layers[m.layer]
	return l.GridW, l.GridH
}

// token returns the cursor's token in the current grid, and its index (-1 without a grid).
func (m *Model) token() (tx, ty, idx int) {
	w, h := m.grid()
	if w <= 0 || h <= 0 {
		return 0, 0, -1
	}
	tx = min(max(int(m.cx*float64(w)), 0), w-1)
	ty = min(max(int(m.cy*float64(h)), 0), h-1)
	return tx, ty, ty*w + tx
}

// setToken puts the cursor on token (tx, ty) of the current grid.
func (m *Model) setToken(tx, ty int) tea.Cmd {
	w, h := m.grid()
	if w <= 0 || h <= 0 {
		return nil
	}
	tx, ty = min(max(tx, 0), w-1), min(max(ty, 0), h-1)
	m.cx, m.cy = (float64(tx)+0.5)/float64(w), (float64(ty)+0.5)/float64(h)
	return tea.Batch(m.schedule(), m.renderCmd())
}

func (m *Model) moveToken(dx, dy int) tea.Cmd {
	tx, ty, idx := m.token()
	if idx < 0 {
		return nil
	}
	return m.setToken(tx+dx, ty+dy)
}

func (m *Model) swap() tea.Cmd {
	if m.a == nil || m.b == nil {
		return nil
	}
	m.gen++
	m.a, m.b = m.b, m.a
	m.pathA, m.pathB = m.pathB, m.pathA
	m.res = nil
	clear(m.scores)
	clear(m.seen)
	m.stopWork()
	return tea.Batch(m.schedule(), m.renderCmd())
}

func nextMetric(mt session.Metric) session.Metric {
	for i, x := range session.Metrics {
		if x == mt {
			return session.Metrics[(i+1)%len(session.Metrics)]
		}
	}
	return session.Metrics[0]
}

// currentLayer returns the selected layer's description.
func (m *Model) currentLayer() (features.Layer, bool) {
	if m.layer < 0 || m.layer >= len(m.info.Layers) {
		return features.Layer{}, false
	}
	return m.info.Layers[m.layer], true
}

// want is the request the current view shows.
func (m *Model) want() session.Request {
	_, _, idx := m.token()
	return session.Request{A: m.a, B: m.b, Layer: m.layer, T: m.t, Metric: m.metric, Token: idx}
}

func sameRequest(x, y session.Request) bool { return x == y }

// current reports whether the shown result answers the current view.
func (m *Model) current() bool { return m.res != nil && sameRequest(m.res.Req, m.want()) }

func joinPaths(ps []string) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += p
	}
	return s
}

// stepLabel is the reference code's step index for DDPM timestep t, as shown: "none" for a t
// no step gives (t = 0).
func stepLabel(t int) string {
	if step := features.TToStep(t); step > 0 {
		return fmt.Sprint(step)
	}
	return "none"
}

func fmtScore(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.4f", v)
}
