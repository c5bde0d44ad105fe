package ui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
)

// conditioningFixed reports (in the status line) when the backend cannot switch prompts: a
// served model is loaded with one, and Caps.PromptFixed says why before anything is typed.
func (m *Model) conditioningFixed() bool {
	if why := m.info.Caps.PromptFixed; why != "" {
		m.note.err = promptError{errors.New(why)}
		return true
	}
	return false
}

// condState is the text conditioning: the one in use, and the switch to another in flight.
type condState struct {
	cur  api.Conditioning  // what scores are conditioned on now
	busy bool              // a SetConditioning is running
	want api.Conditioning  // what it asked for
	next *api.Conditioning // asked for while it ran; starts when it ends
	seq  int
}

// conditioningMsg answers a SetConditioning: cond is what was asked for.
type conditioningMsg struct {
	seq  int
	cond api.Conditioning
	err  error
}

// takesPrompt reports whether the model is conditioned on a text prompt (Caps.Prompt).
func (m *Model) takesPrompt() bool { return m.info.Caps.Prompt }

// openTextPrompt opens the prompt pre-filled with the current text prompt.
func (m *Model) openTextPrompt() tea.Cmd {
	if !m.takesPrompt() {
		m.note.text = "this model takes no prompt"
		return nil
	}
	if m.conditioningFixed() {
		return nil
	}
	m.pb.Open(promptText, m.wantedCond().Prompt)
	return nil
}

// toggleCFG switches classifier-free guidance on or off, keeping the prompt.
func (m *Model) toggleCFG() tea.Cmd {
	if !m.info.Caps.CFG {
		m.note.text = "this model takes no prompt"
		return nil
	}
	if m.conditioningFixed() {
		return nil
	}
	c := m.wantedCond()
	c.CFG = !c.CFG
	return m.setConditioning(c)
}

// wantedCond is the conditioning the user last asked for: the one waiting or in flight,
// else the one in use.
func (m *Model) wantedCond() api.Conditioning {
	switch {
	case m.cs.next != nil:
		return *m.cs.next
	case m.cs.busy:
		return m.cs.want
	}
	return m.cs.cur
}

// setConditioning asks the backend to switch to c, in the background. One switch runs at
// a time, so the session ends on the last one asked for: a request made while another
// runs waits, and replaces any other waiting request.
func (m *Model) setConditioning(c api.Conditioning) tea.Cmd {
	if !m.takesPrompt() {
		return nil
	}
	b := m.backend
	if m.cs.busy {
		if c == m.cs.want {
			m.cs.next = nil
		} else {
			m.cs.next = &c
		}
		return nil
	}
	if c == m.cs.cur {
		return nil
	}
	m.cs.seq++
	m.cs.busy, m.cs.want = true, c
	seq, ctx := m.cs.seq, m.ctx
	return func() tea.Msg {
		return conditioningMsg{seq: seq, cond: c, err: b.SetConditioning(ctx, c)}
	}
}

// conditioned takes the answer to a SetConditioning. On success every result of the old
// conditioning is stale: answers in flight are dropped (the generation changes) and the
// current view is run again.
func (m *Model) conditioned(msg conditioningMsg) tea.Cmd {
	if msg.seq != m.cs.seq || !m.cs.busy {
		return nil
	}
	m.cs.busy = false
	var cmds []tea.Cmd
	switch {
	case msg.err == nil:
		m.cs.cur = msg.cond
		if !m.pair.loading { // a load in flight resets everything when it lands
			m.rq.newGen()
			m.rq.forget()
			cmds = append(cmds, m.schedule(), m.renderCmd())
		}
	case errors.Is(msg.err, context.Canceled):
	default:
		m.note.err = promptError{fmt.Errorf("%q refused (kept %s): %w", msg.cond.Prompt, m.cs.cur, msg.err)}
	}
	if next := m.cs.next; next != nil {
		m.cs.next = nil
		cmds = append(cmds, m.setConditioning(*next))
	}
	return tea.Batch(cmds...)
}

// condLabel is the conditioning for the title: "" for models that take no prompt.
func (m *Model) condLabel() string {
	if !m.takesPrompt() {
		return ""
	}
	if m.cs.busy || m.cs.next != nil {
		return m.wantedCond().String() + " (encoding…)"
	}
	return m.cs.cur.String()
}
