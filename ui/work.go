package ui

import (
	"errors"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
)

// loadCmd loads a pair of images.
func (m *Model) loadCmd(pathA, pathB string) tea.Cmd {
	m.pair.loading = true
	b, gen := m.backend, m.rq.newGen()
	return func() tea.Msg {
		a, errA := b.Load(pathA)
		if errA != nil {
			errA = fmt.Errorf("image A: %w", errA)
		}
		bi, errB := b.Load(pathB)
		if errB != nil {
			errB = fmt.Errorf("image B: %w", errB)
		}
		if err := errors.Join(errA, errB); err != nil {
			return errMsg{loadError{gen: gen, err: err}}
		}
		return pairMsg{gen: gen, a: a, b: bi}
	}
}

// schedule starts whatever the current view needs next.
func (m *Model) schedule() tea.Cmd {
	if m.pair.a == nil || m.pair.b == nil {
		return nil
	}
	return m.rq.schedule(need{view: m.want(), ts: m.backgroundWanted()})
}

// backgroundWanted lists the timesteps whose layer scores the background fills, most
// wanted first.
func (m *Model) backgroundWanted() []int {
	ts := []int{m.sel.t}
	if !m.info.Timesteps {
		return ts
	}
	for _, d := range []int{fineStep, -fineStep, coarseStep, -coarseStep} {
		if t := m.sel.t + d; t >= 0 && t <= maxT {
			ts = append(ts, t)
		}
	}
	if m.sel.screen == screenSweep {
		sw := m.sw.Timesteps()
		// nearest to the current timestep first: that is where the eye is
		for len(sw) > 0 {
			best := 0
			for i, t := range sw {
				if abs(t-m.sel.t) < abs(sw[best]-m.sel.t) {
					best = i
				}
			}
			ts = append(ts, sw[best])
			sw = append(sw[:best], sw[best+1:]...)
		}
	}
	return ts
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// listenProgress relays the backend's progress reports, one message at a time; each
// message re-arms it.
func (m *Model) listenProgress() tea.Cmd {
	ch := m.opts.Progress
	if ch == nil {
		return nil
	}
	ctx := m.ctx
	return func() tea.Msg {
		select {
		case p, ok := <-ch:
			if !ok {
				return nil
			}
			return progressMsg(p)
		case <-ctx.Done():
			return nil
		}
	}
}

// splitPaths splits the path prompt into two paths; quotes keep spaces.
func splitPaths(s string) ([2]string, error) {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	if len(out) != 2 {
		return [2]string{}, fmt.Errorf("open: want two image paths, got %d (quote paths with spaces)", len(out))
	}
	return [2]string{out[0], out[1]}, nil
}

func quotePath(p string) string {
	if strings.ContainsAny(p, " \t'\"") {
		return "'" + p + "'"
	}
	return p
}

// statsInterval is how often the status line's counters are refreshed.
const statsInterval = 500 * time.Millisecond

// statsCmd fetches the backend's counters for the status line.
func (m *Model) statsCmd() tea.Cmd { return m.rq.statsCmd(m.pair.a, m.pair.b, m.sel.t) }

func statsTick() tea.Cmd {
	return tea.Tick(statsInterval, func(time.Time) tea.Msg { return statsTickMsg{} })
}
