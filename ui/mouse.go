package ui

// Mouse routing: the root finds the component under the pointer and hands it the event in
// the component's own coordinates; the component answers with a message (a token, a layer,
// a timestep, a sweep cell) that the root acts on.

import (
	tea "charm.land/bubbletea/v2"
)

// handleClick selects a token (photos, A's map), a layer (the list, the sweep) or a
// timestep (the slider). A click is an action: it clears the last note.
func (m *Model) handleClick(ms tea.Mouse) tea.Cmd {
	if m.lay.tooSmall || m.pb.Active() || m.hv.Open() || ms.Button != tea.MouseLeft {
		return nil
	}
	m.note = note{}
	m.sync()
	l := m.lay
	switch {
	case m.sel.screen == screenSweep && l.body.contains(ms.X, ms.Y):
		var cmd tea.Cmd
		m.sw, cmd = m.sw.Update(tea.MouseClickMsg{X: ms.X - l.body.X, Y: ms.Y - l.body.Y, Button: ms.Button})
		return cmd
	case m.sel.screen == screenMain && m.pair.a != nil && l.left.contains(ms.X, ms.Y):
		var cmd tea.Cmd
		m.pv, cmd = m.pv.Update(tea.MouseClickMsg{X: ms.X - l.left.X, Y: ms.Y - l.left.Y, Button: ms.Button})
		return cmd
	case m.sel.screen == screenMain && m.pair.a != nil && l.layers.contains(ms.X, ms.Y):
		var cmd tea.Cmd
		m.ll, cmd = m.ll.Update(tea.MouseClickMsg{X: ms.X - l.layers.X, Y: ms.Y - l.layers.Y, Button: ms.Button})
		return cmd
	case l.timeline.contains(ms.X, ms.Y) && m.timelineShown() && m.clip != nil:
		var cmd tea.Cmd
		m.cp, cmd = m.cp.Update(tea.MouseClickMsg{X: ms.X - l.timeline.X, Y: ms.Y - l.timeline.Y, Button: ms.Button})
		return cmd
	case l.timeline.contains(ms.X, ms.Y) && m.timelineShown():
		var cmd tea.Cmd
		m.tl, cmd = m.tl.Update(tea.MouseClickMsg{X: ms.X - l.timeline.X, Y: ms.Y - l.timeline.Y, Button: ms.Button})
		return cmd
	}
	return nil
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
	if m.lay.tooSmall || m.pb.Active() || m.hv.Open() || m.sel.screen == screenSweep {
		return nil
	}
	m.sync()
	l := m.lay
	switch {
	case l.layers.contains(ms.X, ms.Y):
		var cmd tea.Cmd
		m.ll, cmd = m.ll.Update(tea.MouseWheelMsg{X: ms.X - l.layers.X, Y: ms.Y - l.layers.Y, Button: ms.Button})
		return cmd
	case l.timeline.contains(ms.X, ms.Y) && m.timelineShown() && m.clip != nil:
		var cmd tea.Cmd
		m.cp, cmd = m.cp.Update(tea.MouseWheelMsg{X: ms.X - l.timeline.X, Y: ms.Y - l.timeline.Y, Button: ms.Button})
		return cmd
	case l.timeline.contains(ms.X, ms.Y) && m.timelineShown():
		var cmd tea.Cmd
		m.tl, cmd = m.tl.Update(tea.MouseWheelMsg{X: ms.X - l.timeline.X, Y: ms.Y - l.timeline.Y, Button: ms.Button})
		return cmd
	}
	return nil
}
