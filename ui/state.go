package ui

// The view's state: layer, timestep, token and pair, and what the view asks the backend.

import (
	"fmt"
	"math"

	tea "charm.land/bubbletea/v2"
	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/schedule"
)

func (m *Model) quit() tea.Cmd {
	m.stopWork()
	return tea.Quit
}

// stopWork cancels everything in flight; the backend's runs see their contexts end.
func (m *Model) stopWork() { m.rq.stop() }

const maxT = 999

func (m *Model) setT(t int) tea.Cmd {
	if !m.info.Timesteps {
		m.note.text = "this model has no timesteps"
		return nil
	}
	t = min(max(t, 0), maxT)
	if t == m.sel.t {
		return nil
	}
	m.sel.t = t
	return tea.Batch(m.schedule(), m.renderCmd())
}

func (m *Model) setLayer(l int) tea.Cmd {
	l = min(max(l, 0), len(m.info.Layers)-1)
	if l == m.sel.layer || l < 0 {
		return nil
	}
	m.sel.layer = l
	return tea.Batch(m.schedule(), m.renderCmd())
}

// grid returns the current layer's token grid (0×0 when it has none).
func (m *Model) grid() (w, h int) {
	if m.sel.layer < 0 || m.sel.layer >= len(m.info.Layers) {
		return 0, 0
	}
	l := m.info.Layers[m.sel.layer]
	return l.GridW, l.GridH
}

// token returns the cursor's token in the current grid, and its index (-1 without a grid).
func (m *Model) token() (tx, ty, idx int) { return m.pv.Token(m.grid()) }

func (m *Model) swap() tea.Cmd {
	if m.pair.a == nil || m.pair.b == nil {
		return nil
	}
	m.rq.newGen()
	m.pair.a, m.pair.b = m.pair.b, m.pair.a
	m.pair.pathA, m.pair.pathB = m.pair.pathB, m.pair.pathA
	m.rq.dropResult()
	return tea.Batch(m.schedule(), m.renderCmd())
}

func nextMetric(mt api.Metric) api.Metric {
	for i, x := range api.Metrics {
		if x == mt {
			return api.Metrics[(i+1)%len(api.Metrics)]
		}
	}
	return api.Metrics[0]
}

// currentLayer returns the selected layer's description.
func (m *Model) currentLayer() (api.Layer, bool) {
	if m.sel.layer < 0 || m.sel.layer >= len(m.info.Layers) {
		return api.Layer{}, false
	}
	return m.info.Layers[m.sel.layer], true
}

// want is the request the current view shows.
func (m *Model) want() api.Request {
	_, _, idx := m.token()
	return api.Request{A: m.pair.a, B: m.pair.b, Layer: m.sel.layer, T: m.sel.t, Metric: m.sel.metric, Token: idx}
}

// current reports whether the shown result answers the current view.
func (m *Model) current() bool { return m.rq.current(m.want()) }

// stepLabel is the reference code's step index for DDPM timestep t, as shown: "none" for a t
// no step gives (t = 0).
func stepLabel(t int) string {
	if step := schedule.TToStep(t); step > 0 {
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
