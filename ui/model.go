package ui

import (
	"context"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// screen is what the body of the explorer shows.
type screen int

const (
	screenMain screen = iota
	screenSweep
	screenPick // the picker over Options.Picker's images
)

// Model is the explorer's root model. Create it with New; Run drives it. It owns the
// state every request depends on (the pair, the selection, the conditioning), hands the
// components what they draw (sync), and routes keys and mouse events to them; the
// components keep their own state (cursors, scales, scrolling, the overlay) behind
// methods.
type Model struct {
	ctx     context.Context
	backend Backend
	info    api.ModelInfo
	served  string // what the status line says when the backend runs in another process (Caps.Served); "" here
	// onFirstScore is Options.OnFirstScore until it has been called.
	onFirstScore func()
	// onFirstLayerScores is Options.OnFirstLayerScores until it has been called.
	onFirstLayerScores func()
	keys               KeyMap
	styles             Styles
	opts               Options
	// baseline is the model's baseline of unrelated pairs (Info().Baseline): the score
	// panel adds the rescaled score and percentile, r turns the bars and the sweep to
	// rescaled scores; nil: none.
	baseline *calibration.Baseline

	lay  layout    // where everything goes; its W and H are the terminal's size
	pair pairState // the images compared, and their load
	sel  selection // what the view shows: the requests and the components follow it
	rq   requests  // what has been asked of the backend, and what it answered

	title   titleBar
	pv      pairView // the photos and maps, the token cursor and the overlay
	sp      scorePanel
	ll      layerList
	sw      sweepModel // the sweep view; its cursor survives closing it
	tl      timeline
	cp      clipPanel // the clip strip, in the timeline's place (clips only)
	sb      statusBar
	hv      helpView
	pb      promptBar // the one-line prompt at the bottom
	pk      picker    // the images to pick a pair from, when Options.Picker offers some
	spinner spinner.Model

	clip  *Clip // nil unless exploring a clip
	frame int   // the clip's frame shown as image B

	cs   condState // the text conditioning: in use, and the switch in flight
	note note      // the status line's last error or note
	now  func() time.Time
}

// selection is what the view shows of the pair: the layer, the timestep and the metric
// the backend is asked for, the screen, and whether bars show rescaled scores.
type selection struct {
	layer, t int
	metric   api.Metric
	screen   screen
	rescaled bool
}

// note is what the status line says besides the work in flight; the next action clears
// it.
type note struct {
	err  error  // last error
	text string // last export or other note
}

// pairState is the pair of images compared, and its load.
type pairState struct {
	pathA, pathB string
	a, b         *api.Image
	loading      bool
	loadErr      error
}

// New returns the explorer's model for the pair of paths. It does no work: Init loads
// the images.
func New(ctx context.Context, b Backend, pathA, pathB string, opts Options) *Model {
	info := b.Info()
	dark := true
	if opts.Dark != nil {
		dark = *opts.Dark
	}
	st := NewStyles(dark)
	m := &Model{
		ctx: ctx, backend: b, info: info, keys: DefaultKeyMap(), opts: opts, styles: st,
		baseline: info.Baseline,
		pair:     pairState{pathA: pathA, pathB: pathB, loading: true},
		sel:      selection{layer: info.DefaultLayer, t: info.DefaultT, metric: api.AAS},
		title:    newTitleBar(st),
		sp:       newScorePanel(st),
		sb:       newStatusBar(st),
		hv:       newHelpView(st, dark),
		pb:       newPromptBar(DefaultKeyMap(), st),
		now:      time.Now,
	}
	m.rq = newRequests(ctx, b, func() time.Time { return m.now() }) // tests set m.now after New
	if info.Caps.Served {
		m.served = "served"
	}
	if opts.Remote != nil && opts.Remote.Status != "" {
		m.served = opts.Remote.Status
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
	m.onFirstScore, m.onFirstLayerScores = opts.OnFirstScore, opts.OnFirstLayerScores
	m.spinner = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(st.Spinner))
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
	m.sw = newSweep(st, info.Layers, ts)
	m.ll = newLayerList(st, info.Layers)
	m.tl = newTimeline(st, info.Timesteps)
	m.offerKeys()
	// After offerKeys: a clip rebinds ← and →, which the pair view's keys follow.
	m.pv = newPairView(st, pairKeys(m.keys), capsFor(opts), opts.OverlayOn, opts.OnFirstImages)
	if opts.Picker != nil {
		m.pk = newPicker(st, opts.Picker, capsFor(opts).TrueColor)
		if pathA == "" && pathB == "" {
			m.sel.screen, m.pair.loading = screenPick, false
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
	k.Rescaled.SetEnabled(m.baseline != nil)
}

// setStyles restyles every component for a dark or light background.
func (m *Model) setStyles(dark bool) {
	st := NewStyles(dark)
	m.styles = st
	m.title.SetStyles(st)
	m.pv.SetStyles(st)
	m.sp.SetStyles(st)
	m.ll.SetStyles(st)
	m.sw.SetStyles(st)
	m.tl.SetStyles(st)
	m.cp.SetStyles(st)
	m.sb.SetStyles(st)
	m.hv.SetStyles(st, dark)
	m.pb.SetStyles(st)
	m.pk.SetStyles(st)
	m.spinner.Style = st.Spinner
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
	cmds := []tea.Cmd{m.spinner.Tick, m.listenProgress(), statsTick()}
	if m.sel.screen == screenPick {
		cmds = append(cmds, m.pk.Open())
	} else {
		cmds = append(cmds, m.loadCmd(m.pair.pathA, m.pair.pathB))
	}
	if m.opts.Dark == nil {
		cmds = append(cmds, tea.RequestBackgroundColor)
	}
	return tea.Batch(cmds...)
}

// Update handles one message. It never waits for the network: every request leaves as a
// command and comes back as a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.sync()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		resized := m.lay.W != 0 && (m.lay.W != msg.Width || m.lay.H != msg.Height)
		m.lay = computeLayout(msg.Width, msg.Height)
		m.resize()
		if resized {
			// The terminal reflows or crops what it shows on a resize, images included, so
			// the renderer's idea of the screen is stale: repaint all of it (the placement
			// writer sees the clear and redraws every image at its new cells).
			return tea.Batch(tea.ClearScreen, m.renderCmd())
		}
		return m.renderCmd()

	case tea.BackgroundColorMsg:
		m.setStyles(msg.IsDark())
		return m.renderCmd()

	case tea.KeyPressMsg:
		return m.handleKey(msg)

	case layerSelectMsg:
		return m.setLayer(msg.layer)

	case timeSelectMsg:
		return m.setT(msg.t)

	case frameSelectMsg:
		return m.setFrame(msg.frame)

	case sweepJumpMsg:
		m.sel.layer = min(max(msg.layer, 0), len(m.info.Layers)-1)
		if m.info.Timesteps {
			m.sel.t = min(max(msg.t, 0), maxT)
		}
		return m.closeView()

	case closeViewMsg:
		return m.closeView()

	case tea.MouseClickMsg:
		return m.handleClick(tea.Mouse(msg))

	case tea.MouseMotionMsg:
		return m.handleDrag(tea.Mouse(msg))

	case tea.MouseWheelMsg:
		return m.handleWheel(tea.Mouse(msg))

	case tea.PasteMsg:
		var cmd tea.Cmd
		m.pb, cmd = m.pb.Update(msg)
		return cmd

	case promptDoneMsg:
		return m.promptDone(msg)

	case pickListMsg, pickThumbMsg:
		var cmd tea.Cmd
		m.pk, cmd = m.pk.Update(msg)
		return cmd

	case pickedMsg:
		m.sel.screen = screenMain
		m.place(false)
		return tea.Batch(m.loadCmd(msg.a, msg.b), m.renderCmd())

	case pickCancelMsg:
		if m.pair.a == nil {
			m.note.text = "pick two images (enter on each), or ctrl+c to leave"
			return nil
		}
		return m.closeView()

	case pairMsg:
		if msg.gen != m.rq.gen {
			return nil
		}
		m.pair.a, m.pair.b, m.pair.loading, m.pair.loadErr, m.note.err = msg.a, msg.b, false, nil, nil
		m.pair.pathA, m.pair.pathB = msg.a.Path, msg.b.Path
		m.rq.forget()
		m.pv.Forget()
		return tea.Batch(m.schedule(), m.renderCmd())

	case scoreMsg:
		if !m.rq.takeScore(msg) {
			return nil
		}
		if f := m.onFirstScore; f != nil {
			m.onFirstScore = nil
			f()
		}
		return tea.Batch(m.schedule(), m.renderCmd())

	case layerScoresMsg:
		if m.rq.takeLayerScores(msg) {
			if f := m.onFirstLayerScores; f != nil {
				m.onFirstLayerScores = nil
				f()
			}
		}
		return m.schedule()

	case prefetchMsg:
		m.rq.takePrefetch(msg)
		return m.schedule()

	case conditioningMsg:
		return m.conditioned(msg)

	case statsTickMsg:
		return tea.Batch(m.statsCmd(), statsTick())

	case statsMsg:
		m.rq.takeStats(msg)
		return nil

	case picturesMsg:
		m.sync()
		m.pv, _ = m.pv.Update(msg)
		return nil

	case tokenMsg:
		return tea.Batch(m.schedule(), m.renderCmd())

	case progressMsg:
		m.rq.takeProgress(api.Progress(msg))
		return m.listenProgress()

	case exportMsg:
		m.note.text = msg.String()
		return nil

	case errMsg:
		return m.handleError(msg)

	case spinner.TickMsg:
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return cmd
	}
	var cmd tea.Cmd
	m.pb, cmd = m.pb.Update(msg)
	return cmd
}

func (m *Model) handleError(msg errMsg) tea.Cmd {
	if e, ok := msg.err.(loadError); ok {
		if e.gen != m.rq.gen {
			return nil
		}
		m.pair.loading = false
		m.pair.loadErr = e.err
		m.note.err = e.err
		return nil
	}
	show, retry := m.rq.takeError(msg.err)
	if show != nil {
		m.note.err = show
	}
	if retry {
		return m.schedule()
	}
	return nil
}
