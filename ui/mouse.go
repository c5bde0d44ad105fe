package ui

// Mouse routing: the root finds the component under the pointer and hands it the event in
// the component's own coordinates; the component answers with a message (a layer, a
// timestep, a sweep cell) that the root acts on.

import (
	tea "charm.land/bubbletea/v2"
)

// handleClick selects a token (photos, A's map), a layer (the list, the sweep) or a
// timestep (the slider).
func (m *Model) handleClick(ms tea.Mouse) tea.Cmd {
	m.syncComponents()
	if m.lay.tooSmall || m.pb.open || ms.Button != tea.MouseLeft {
		return nil
	}
	l := m.lay
	if m.sel.screen == screenSweep {
		if layer, col, ok := m.sw.cellAt(ms.X-l.body.X, ms.Y-l.body.Y); ok {
			// A click moves the sweep's cursor, a second click on it jumps there.
			if m.sw.row == layer && m.sw.col == col {
				return func() tea.Msg { return sweepJumpMsg{layer: layer, t: m.sw.ts[col]} }
			}
			m.sw.row, m.sw.col = layer, col
		}
		return nil
	}
	if m.sel.screen == screenMain && m.pair.a != nil {
		if l.left.contains(ms.X, ms.Y) {
			m.syncPair()
			var cmd tea.Cmd
			m.pv, cmd = m.pv.Update(tea.MouseClickMsg{X: ms.X - l.left.X, Y: ms.Y - l.left.Y, Button: ms.Button})
			return cmd
		}
		if l.layers.contains(ms.X, ms.Y) {
			var cmd tea.Cmd
			m.ll, cmd = m.ll.Update(tea.MouseClickMsg{X: ms.X - l.layers.X, Y: ms.Y - l.layers.Y, Button: ms.Button})
			return cmd
		}
	}
	if r := l.timeline; r.contains(ms.X, ms.Y) && m.clip != nil {
		_, cmd := m.clipPanel().Update(tea.MouseClickMsg{X: ms.X - r.X, Y: ms.Y - r.Y, Button: ms.Button})
		return cmd
	}
	if r := l.timeline; r.contains(ms.X, ms.Y) {
		var cmd tea.Cmd
		tl := m.timeline()
		_, cmd = tl.Update(tea.MouseClickMsg{X: ms.X - r.X, Y: ms.Y - r.Y, Button: ms.Button})
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
	m.syncComponents()
	if m.lay.tooSmall || m.pb.open {
		return nil
	}
	if m.sel.screen == screenSweep {
		return nil
	}
	if l := m.lay.layers; l.contains(ms.X, ms.Y) {
		var cmd tea.Cmd
		m.ll, cmd = m.ll.Update(tea.MouseWheelMsg{X: ms.X - l.X, Y: ms.Y - l.Y, Button: ms.Button})
		return cmd
	}
	if r := m.lay.timeline; r.contains(ms.X, ms.Y) && m.clip != nil {
		_, cmd := m.clipPanel().Update(tea.MouseWheelMsg{X: ms.X - r.X, Y: ms.Y - r.Y, Button: ms.Button})
		return cmd
	}
	if r := m.lay.timeline; r.contains(ms.X, ms.Y) {
		_, cmd := m.timeline().Update(tea.MouseWheelMsg{X: ms.X - r.X, Y: ms.Y - r.Y, Button: ms.Button})
		return cmd
	}
	return nil
}
