package ui

import (
	"context"
	"errors"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// screen is what the body of the explorer shows.
type screen int

const (
	screenMain screen = iota
	screenSweep
)

// scoreKey names the layer scores of one timestep under one metric.
type scoreKey struct {
	t      int
	metric api.Metric
}

// Model is the explorer's root model. Create it with New; Run drives it.
type Model struct {
	ctx     context.Context
	backend Backend
	info    api.ModelInfo
	served  string // what the status line says when the backend runs in another process (Caps.Served); "" here
	// onFirstScore is Options.OnFirstScore until it has been called.
	onFirstScore func()
	keys         KeyMap
	styles       Styles
	opts         Options

	lay layout // where everything goes; its W and H are the terminal's size

	pair pairState // the images compared, and their load

	sel selection // what the view shows: the requests and the components follow it

	rq requests // what has been asked of the backend, and what it answered

	sw sweepModel // the sweep view; its cursor survives closing it
	ll layerList  // the layer list; its scale survives everything

	pv pairView // the photos and maps, the token cursor and the overlay

	clip  *Clip // nil unless exploring a clip
	frame int   // the clip's frame shown as image B

	pb promptBar // the one-line prompt at the bottom

	cs      condState // the text conditioning: in use, and the switch in flight
	help    help.Model
	spinner spinner.Model
	note    note // the status line's last error or note
	now     func() time.Time
}

// selection is what the view shows of the pair: the layer, the timestep and the metric
// the backend is asked for, and the screen.
type selection struct {
	layer, t int
	metric   api.Metric
	screen   screen
}

// note is what the status line says besides the work in flight.
type note struct {
	err  error  // last error
	text string // last export or other note; a key press clears it
}

// pairState is the pair of images compared, and its load.
type pairState struct {
	pathA, pathB string
	a, b         *api.Image
	gen          int // bumped whenever the pair changes, to drop answers about the old one
	loading      bool
	loadErr      error
}

// New returns the explorer's model for the pair of paths. It does no work: Init loads
// the images.
func New(ctx context.Context, b Backend, pathA, pathB string, opts Options) *Model {
	info := b.Info()
	m := &Model{
		ctx: ctx, backend: b, info: info, keys: DefaultKeyMap(), opts: opts,
		pair: pairState{pathA: pathA, pathB: pathB, loading: true},
		sel:  selection{layer: info.DefaultLayer, t: info.DefaultT, metric: api.AAS},
		rq:   newRequests(),
		help: help.New(),
		pb:   newPromptBar(DefaultKeyMap()),
		now:  time.Now,
	}
	if info.Caps.Served {
		m.served = "served"
	}
	if opts.Layer >= 0 && opts.Layer < len(info.Layers) {
		m.sel.layer = opts.Layer
	}
	if opts.T >= 0 {
		m.sel.t = min(opts.T, maxT)
	}
	if opts.Metric != "" {
		m.sel.metric = opts.Metric
	}
	m.pv = newPairView(m.styles, pairKeys(m.keys), capsFor(opts))
	m.pv.onFirst = opts.OnFirstImages
	m.onFirstScore = opts.OnFirstScore
	dark := true
	if opts.Dark != nil {
		dark = *opts.Dark
	}
	m.setStyles(dark)
	m.spinner = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(m.styles.Spinner))
	if info.Caps.Prompt {
		m.cs.cur = b.Conditioning()
	}
	if opts.Clip != nil && len(opts.Clip.Frames) > 0 {
		m.clipMode(opts.Clip)
	}
	ts := schedule.SweepTimesteps()
	if !info.Timesteps {
		ts = []int{m.sel.t}
	}
	m.sw = newSweep(m.styles, info.Layers, ts)
	m.ll = newLayerList(m.styles, info.Layers)
	m.offerKeys()
	m.pv.keys = pairKeys(m.keys) // a clip rebinds ← and →
	if opts.OverlayOn != nil {
		m.pv.overlay = overlayNone
		if *opts.OverlayOn {
			m.pv.overlay = overlayCos
		}
	}
	return m
}

// offerKeys disables the keys this model cannot use, so the help does not offer them.
func (m *Model) offerKeys() {
	k := &m.keys
	k.Prompt.SetEnabled(m.info.Caps.Prompt)
	k.CFG.SetEnabled(m.info.Caps.CFG)
	if !m.info.Timesteps {
		for _, b := range []*key.Binding{&k.TimeBack, &k.TimeFwd, &k.TimeBackFar, &k.TimeFwdFar, &k.TimeFirst, &k.TimeLast, &k.TypeT} {
			b.SetEnabled(false)
		}
	}
}

func (m *Model) setStyles(dark bool) {
	m.styles = NewStyles(dark)
	m.sw.st, m.ll.st = m.styles, m.styles
	m.pv.SetStyles(m.styles)
	m.help.Styles = help.DefaultStyles(dark)
	m.pb.SetStyles(m.styles)
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
	case termgfx.Sixel, termgfx.Kitty, termgfx.None, termgfx.HalfBlock, termgfx.Quadrant:
	default:
		c.Protocol = termgfx.HalfBlock
	}
	return c
}

// Init loads the pair, asks the terminal for its background and starts listening for
// progress.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.loadCmd(m.pair.pathA, m.pair.pathB), m.spinner.Tick, m.listenProgress(), statsTick()}
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
		resized := m.lay.W != 0 && (m.lay.W != msg.Width || m.lay.H != msg.Height)
		// The size first: the help's height, which the layout takes, depends on the width.
		m.lay.W, m.lay.H = msg.Width, msg.Height
		m.help.SetWidth(m.lay.W)
		m.pb.SetSize(m.lay.W, 1)
		m.lay = computeLayout(m.lay.W, m.lay.H, m.pv.cellAspect(), m.helpHeight())
		m.syncComponents()
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

	case layerSelectMsg:
		return m, m.setLayer(msg.layer)

	case timeSelectMsg:
		return m, m.setT(msg.t)

	case frameSelectMsg:
		return m, m.setFrame(msg.frame)

	case sweepJumpMsg:
		m.sel.layer = min(max(msg.layer, 0), len(m.info.Layers)-1)
		if m.info.Timesteps {
			m.sel.t = min(max(msg.t, 0), maxT)
		}
		return m, m.closeView()

	case closeViewMsg:
		return m, m.closeView()

	case tea.MouseClickMsg:
		return m, m.handleClick(tea.Mouse(msg))

	case tea.MouseMotionMsg:
		return m, m.handleDrag(tea.Mouse(msg))

	case tea.MouseWheelMsg:
		return m, m.handleWheel(tea.Mouse(msg))

	case tea.PasteMsg:
		var cmd tea.Cmd
		m.pb, cmd = m.pb.Update(msg)
		return m, cmd

	case promptDoneMsg:
		return m, m.promptDone(msg)

	case pairMsg:
		if msg.gen != m.pair.gen {
			return m, nil
		}
		m.pair.a, m.pair.b, m.pair.loading, m.pair.loadErr, m.note.err = msg.a, msg.b, false, nil, nil
		m.pair.pathA, m.pair.pathB = msg.a.Path, msg.b.Path
		m.rq.res = nil
		m.rq.forget()
		m.pv.render.forget()
		return m, tea.Batch(m.schedule(), m.renderCmd())

	case scoreMsg:
		if msg.gen != m.pair.gen || !m.rq.fg.busy || !sameRequest(msg.res.Req, m.rq.fg.req) {
			return m, nil
		}
		m.rq.fg.stop()
		res := msg.res
		m.rq.res = &res
		m.rq.seen[res.Req.T] = true
		m.note.err = nil
		if f := m.onFirstScore; f != nil {
			m.onFirstScore = nil
			f()
		}
		return m, tea.Batch(m.schedule(), m.renderCmd())

	case layerScoresMsg:
		if msg.gen != m.pair.gen {
			return m, nil
		}
		m.rq.scores[scoreKey{msg.t, msg.metric}] = msg.scores
		m.rq.seen[msg.t] = true
		if msg.id == m.rq.bg.id {
			m.rq.bg.stop()
		}
		return m, m.schedule()

	case prefetchMsg:
		if msg.gen == m.pair.gen {
			m.rq.seen[msg.t] = true
			if msg.id == m.rq.bg.id {
				m.rq.bg.stop()
			}
		}
		return m, m.schedule()

	case conditioningMsg:
		return m, m.conditioned(msg)

	case statsTickMsg:
		return m, tea.Batch(m.statsCmd(), statsTick())

	case statsMsg:
		m.rq.stats = msg
		return m, nil

	case picturesMsg:
		m.syncPair()
		m.pv, _ = m.pv.Update(msg)
		return m, nil

	case tokenMsg:
		return m, tea.Batch(m.schedule(), m.renderCmd())

	case progressMsg:
		m.rq.progress = api.Progress(msg)
		return m, m.listenProgress()

	case exportMsg:
		m.note.text = "exported " + joinPaths(msg.paths)
		return m, nil

	case errMsg:
		return m, m.handleError(msg)

	case spinner.TickMsg:
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return m, cmd
	}
	var cmd tea.Cmd
	m.pb, cmd = m.pb.Update(msg)
	return m, cmd
}

func (m *Model) handleError(msg errMsg) tea.Cmd {
	switch e := msg.err.(type) {
	case loadError:
		if e.gen != m.pair.gen {
			return nil
		}
		m.pair.loading = false
		m.pair.loadErr = e.err
		m.note.err = e.err
		return nil
	case scoreError:
		if e.gen != m.pair.gen || !m.rq.fg.busy || !sameRequest(e.req, m.rq.fg.req) {
			return nil
		}
		m.rq.fg.stop()
	case backgroundError:
		if e.gen != m.pair.gen || e.id != m.rq.bg.id {
			return nil
		}
		m.rq.bg.stop()
		if errors.Is(e, context.Canceled) {
			return m.schedule()
		}
		// A background failure is shown but not retried: the next change of view
		// schedules it again.
		m.note.err = e
		return nil
	}
	if errors.Is(msg, context.Canceled) {
		return nil
	}
	m.note.err = msg.err
	return nil
}
