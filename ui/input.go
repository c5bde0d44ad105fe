package ui

// Keys: the root routes each key to what has the keys (the prompt, the sweep, the layer
// list), handles its own, and lays the help bar out for the active key map.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	m.note.text = "" // a note answers the key before this one
	if m.pb.open {
		return m.promptKey(msg)
	}
	if m.sel.screen == screenPick {
		// Letters filter here, so only ctrl+c quits.
		if key.Matches(msg, k.Interrupt) {
			return m.quit()
		}
		var cmd tea.Cmd
		m.pk, cmd = m.pk.Update(msg)
		return cmd
	}
	switch {
	case key.Matches(msg, k.Quit, k.Interrupt):
		return m.quit()
	case key.Matches(msg, k.Help):
		return m.toggleHelp()
	case m.help.ShowAll && key.Matches(msg, k.Back):
		return m.toggleHelp()
	case m.sel.screen == screenSweep:
		var cmd tea.Cmd
		m.sw, cmd = m.sw.Update(msg)
		return cmd
	}
	switch {
	case key.Matches(msg, k.Open) && m.opts.Picker != nil:
		m.sel.screen = screenPick
		m.place(false)
		return m.pk.Open()
	case key.Matches(msg, k.Open):
		m.openPrompt(promptPair, quotePath(m.pair.pathA)+" "+quotePath(m.pair.pathB))
		return nil
	case key.Matches(msg, k.Prompt):
		return m.openTextPrompt()
	case key.Matches(msg, k.CFG):
		return m.toggleCFG()
	case key.Matches(msg, k.TypeT):
		m.openPrompt(promptT, "")
		return nil
	case key.Matches(msg, k.FramePrev):
		return m.setFrame(m.frame - 1)
	case key.Matches(msg, k.FrameNext):
		return m.setFrame(m.frame + 1)
	case key.Matches(msg, k.TimeBack):
		return m.setT(m.sel.t - fineStep)
	case key.Matches(msg, k.TimeFwd):
		return m.setT(m.sel.t + fineStep)
	case key.Matches(msg, k.TimeBackFar):
		return m.setT(m.sel.t - coarseStep)
	case key.Matches(msg, k.TimeFwdFar):
		return m.setT(m.sel.t + coarseStep)
	case key.Matches(msg, k.TimeFirst):
		return m.setT(0)
	case key.Matches(msg, k.TimeLast):
		return m.setT(maxT)
	case key.Matches(msg, k.LayerUp):
		return m.setLayer(m.sel.layer - 1)
	case key.Matches(msg, k.LayerDown):
		return m.setLayer(m.sel.layer + 1)
	case key.Matches(msg, m.pv.keys.Up, m.pv.keys.Down, m.pv.keys.Left, m.pv.keys.Right, m.pv.keys.Overlay):
		m.syncPair()
		var cmd tea.Cmd
		m.pv, cmd = m.pv.Update(msg)
		return cmd
	case key.Matches(msg, k.Metric):
		m.sel.metric = nextMetric(m.sel.metric)
		return m.schedule()
	case key.Matches(msg, m.ll.keys.Scale):
		var cmd tea.Cmd
		m.ll, cmd = m.ll.Update(msg)
		return cmd
	case key.Matches(msg, k.Swap):
		return m.swap()
	case key.Matches(msg, k.Sweep):
		m.sel.screen = screenSweep
		m.sw.SetData(m.rq.scores, m.sel.metric, m.sel.layer, m.sel.t)
		m.sw.Focus()
		m.place(false)
		return tea.Batch(m.schedule(), m.renderCmd())
	case key.Matches(msg, k.Export):
		return m.exportCmd()
	}
	m.explainDisabled(msg)
	return nil
}

// explainDisabled says why a key the help does not offer does nothing here.
func (m *Model) explainDisabled(msg tea.KeyPressMsg) {
	k := m.keys
	has := func(b key.Binding) bool { return !b.Enabled() && slices.Contains(b.Keys(), msg.String()) }
	switch {
	case has(k.Prompt), has(k.CFG):
		m.note.text = "this model takes no prompt"
	case has(k.TimeBack), has(k.TimeFwd), has(k.TimeBackFar), has(k.TimeFwdFar), has(k.TypeT), has(k.TimeFirst), has(k.TimeLast):
		m.note.text = "this model has no timesteps"
	}
}

// toggleHelp expands the help bar in place, or folds it back: the images stay on screen,
// the body shrinks by the rows the help takes.
func (m *Model) toggleHelp() tea.Cmd {
	m.help.ShowAll = !m.help.ShowAll
	return m.relayout()
}

// helpHeight is the rows the help bar takes: one, or the expanded help's tallest column
// and its note.
func (m *Model) helpHeight() int {
	if !m.help.ShowAll {
		return 1
	}
	return lipgloss.Height(m.help.FullHelpView(fitColumns(m.activeKeys().FullHelp(), m.lay.W))) + 1
}

// activeKeys is the key map of what has the keys now: the help bar shows it.
func (m *Model) activeKeys() help.KeyMap {
	switch {
	case m.pb.open:
		return m.pb.keys
	case m.sel.screen == screenSweep:
		return m.sw.keys
	case m.sel.screen == screenPick:
		return m.pk.keys
	}
	return mainKeys{m.keys, m.ll.keys}
}

// mainKeys is the main view's help: the root's keys and the layer list's.
type mainKeys struct {
	root   KeyMap
	layers layersKeyMap
}

func (k mainKeys) ShortHelp() []key.Binding { return k.root.ShortHelp() }

func (k mainKeys) FullHelp() [][]key.Binding {
	g := k.root.FullHelp()
	g[2] = append([]key.Binding{g[2][0]}, append(k.layers.ShortHelp(), g[2][1:]...)...)
	return g
}

// relayout recomputes the layout for the present size and help height, and redraws.
func (m *Model) relayout() tea.Cmd {
	if m.lay.W == 0 {
		return nil
	}
	lay := computeLayout(m.lay.W, m.lay.H, m.pv.cellAspect(), m.helpHeight())
	if lay == m.lay {
		return nil
	}
	m.lay = lay
	m.syncComponents()
	m.place(false)
	return m.renderCmd()
}

// closeView goes back to the main view from a sub-view.
func (m *Model) closeView() tea.Cmd {
	if m.sel.screen == screenMain {
		return nil
	}
	m.sel.screen = screenMain
	m.place(false)
	return tea.Batch(m.schedule(), m.renderCmd())
}

// promptKey hands a key to the open prompt bar; ctrl+c still quits.
func (m *Model) promptKey(msg tea.KeyPressMsg) tea.Cmd {
	if key.Matches(msg, m.keys.Interrupt) {
		return m.quit()
	}
	var cmd tea.Cmd
	m.pb, cmd = m.pb.Update(msg)
	if !m.pb.open {
		m.relayout()
	}
	return cmd
}

// promptDone acts on an accepted prompt.
func (m *Model) promptDone(msg promptDoneMsg) tea.Cmd {
	switch msg.kind {
	case promptText:
		c := m.wantedCond()
		c.Prompt = msg.value
		return m.setConditioning(c)
	case promptT:
		t, err := parseT(msg.value)
		if err != nil {
			m.note.err = err
			return nil
		}
		return m.setT(t)
	}
	paths, err := splitPaths(msg.value)
	if err != nil {
		m.note.err = err
		return nil
	}
	return m.loadCmd(paths[0], paths[1])
}

// parseT reads a typed timestep.
func parseT(s string) (int, error) {
	s = strings.TrimSpace(s)
	t, err := strconv.Atoi(s)
	if err != nil || t < 0 || t > maxT {
		return 0, fmt.Errorf("t %q: want a whole number from 0 to %d", s, maxT)
	}
	return t, nil
}
