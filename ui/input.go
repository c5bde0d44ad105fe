package ui

// Keys: the root routes each key to what has the keys (the prompt, the help page, the
// sweep, the pair view, the layer list), handles its own, and shows the active key map in
// the help line.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// handles reports whether msg is one of km's enabled keys.
func handles(km help.KeyMap, msg tea.KeyPressMsg) bool {
	for _, g := range km.FullHelp() {
		if key.Matches(msg, g...) {
			return true
		}
	}
	return false
}

func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	m.note = note{} // a note or an error answers the action before this one
	if m.pb.Active() {
		return m.promptKey(msg)
	}
	if m.sel.screen == screenPick && !m.hv.Open() {
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
	case m.hv.Open() && key.Matches(msg, k.Back):
		return m.toggleHelp()
	case m.hv.Open():
		return nil // the page covers the view its keys would act on
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
		m.pb.Open(promptPair, quotePath(m.pair.pathA)+" "+quotePath(m.pair.pathB))
		return nil
	case key.Matches(msg, k.Prompt):
		return m.openTextPrompt()
	case key.Matches(msg, k.CFG):
		return m.toggleCFG()
	case key.Matches(msg, k.TypeT):
		m.pb.Open(promptT, "")
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
		return m.setLayer(nextScorable(m.info.Layers, m.sel.layer, -1))
	case key.Matches(msg, k.LayerDown):
		return m.setLayer(nextScorable(m.info.Layers, m.sel.layer, 1))
	case handles(m.pv, msg):
		m.sync()
		var cmd tea.Cmd
		m.pv, cmd = m.pv.Update(msg)
		return cmd
	case key.Matches(msg, k.Metric):
		m.sel.metric = nextMetric(m.sel.metric)
		return tea.Batch(m.schedule(), m.renderCmd())
	case key.Matches(msg, k.Rescaled):
		m.sel.rescaled = !m.sel.rescaled
		return nil
	case handles(m.ll, msg):
		var cmd tea.Cmd
		m.ll, cmd = m.ll.Update(msg)
		return cmd
	case key.Matches(msg, k.Swap):
		return m.swap()
	case key.Matches(msg, k.Sweep):
		m.sel.screen = screenSweep
		m.sync()
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
	case has(k.Rescaled):
		m.note.text = "no baseline of unrelated pairs for this model and settings: diffsim baseline build DIR makes one"
	}
}

// toggleHelp opens the help page over the body, or folds it: the images leave the screen
// while it is open and come back when it folds.
func (m *Model) toggleHelp() tea.Cmd {
	m.hv.Toggle()
	m.place(false)
	if m.hv.Open() {
		return nil
	}
	return m.renderCmd()
}

// activeKeys is the key map of what has the keys now: the help line shows it.
func (m *Model) activeKeys() help.KeyMap {
	switch {
	case m.pb.Active():
		return m.pb
	case m.sel.screen == screenSweep:
		return m.sw
	case m.sel.screen == screenPick:
		return m.pk
	}
	return mainKeys{m.keys, m.ll}
}

// mainKeys is the main view's help: the root's keys and the layer list's.
type mainKeys struct {
	root   KeyMap
	layers help.KeyMap
}

func (k mainKeys) ShortHelp() []key.Binding { return k.root.ShortHelp() }

func (k mainKeys) FullHelp() [][]key.Binding {
	g := k.root.FullHelp()
	g[2] = append([]key.Binding{g[2][0]}, append(k.layers.ShortHelp(), g[2][1:]...)...)
	return g
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
