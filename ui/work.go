package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
)

// Scheduling. At most one Score (the current view) and one background job run at a time.
// The Score always goes first: a background job for another timestep is cancelled when
// the view needs a network run, and background work starts only when the view is
// answered. Background work, in order: the layer scores at the current timestep (one
// network run serves every layer), the neighbouring timesteps (prefetched, then scored
// for the timeline), and the sweep's timesteps while the sweep is open.

// requests is the root's bookkeeping of the backend: the jobs in flight, the layer scores
// and timesteps it has answered for the pair, and its latest counters and progress. The
// root owns it because every request depends on the whole view (pair, layer, t, token,
// metric), which no component has.
type requests struct {
	res      *api.Result // latest result for this pair; may answer an older request
	fg       job         // the Score for the current view
	bg       job         // one background job: layer scores or a prefetch
	jobID    int
	scores   map[scoreKey][]api.LayerScore
	seen     map[int]bool // timesteps whose features were computed for this pair
	stats    statsMsg     // latest snapshot of the backend's counters
	progress api.Progress
}

func newRequests() requests {
	return requests{scores: map[scoreKey][]api.LayerScore{}, seen: map[int]bool{}}
}

// forget drops what was answered about the pair (a new pair, or new conditioning).
func (r *requests) forget() {
	clear(r.scores)
	clear(r.seen)
}

// job is one piece of work in flight.
type job struct {
	busy   bool
	id     int
	t      int
	req    api.Request
	since  time.Time
	cancel context.CancelFunc
}

func (j *job) stop() {
	if j.cancel != nil {
		j.cancel()
	}
	*j = job{}
}

// loadCmd loads a pair of images.
func (m *Model) loadCmd(pathA, pathB string) tea.Cmd {
	m.pair.gen++
	m.pair.loading = true
	m.stopWork()
	b, gen := m.backend, m.pair.gen
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
	var cmds []tea.Cmd
	want := m.want()
	if !m.current() && !(m.rq.fg.busy && sameRequest(m.rq.fg.req, want)) {
		m.rq.fg.stop()
		if m.rq.bg.busy && m.rq.bg.t != want.T && !m.rq.seen[want.T] {
			m.rq.bg.stop() // the view needs the network: it goes first
		}
		cmds = append(cmds, m.scoreCmd(want))
	}
	if !m.rq.fg.busy && !m.rq.bg.busy {
		if c := m.backgroundCmd(); c != nil {
			cmds = append(cmds, c)
		}
	}
	return tea.Batch(cmds...)
}

func (m *Model) scoreCmd(r api.Request) tea.Cmd {
	ctx, cancel := context.WithCancel(m.ctx)
	m.rq.jobID++
	m.rq.fg = job{busy: true, id: m.rq.jobID, t: r.T, req: r, since: m.now(), cancel: cancel}
	b, gen := m.backend, m.pair.gen
	return func() tea.Msg {
		defer cancel()
		res, err := b.Score(ctx, r)
		if err != nil {
			return errMsg{scoreError{gen: gen, req: r, err: err}}
		}
		res.Req = r // what we asked, so the answer is recognised whatever the backend did
		return scoreMsg{gen: gen, res: res}
	}
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
		sw := slices.Clone(m.sw.ts)
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

// backgroundCmd starts the next background job, or returns nil when there is none.
func (m *Model) backgroundCmd() tea.Cmd {
	for i, t := range m.backgroundWanted() {
		if _, ok := m.rq.scores[scoreKey{t, m.sel.metric}]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(m.ctx)
		m.rq.jobID++
		m.rq.bg = job{busy: true, id: m.rq.jobID, t: t, since: m.now(), cancel: cancel}
		b, a, bi, gen, id, metric := m.backend, m.pair.a, m.pair.b, m.pair.gen, m.rq.jobID, m.sel.metric
		neighbour := i > 0
		return func() tea.Msg {
			defer cancel()
			if neighbour && !b.Cached(a, bi, t) {
				// A neighbour: its features first, so that scrubbing to it is instant;
				// its layer scores come next time round, from the cache.
				if err := b.Prefetch(ctx, t, a, bi); err != nil {
					return errMsg{backgroundError{gen: gen, id: id, t: t, prefetch: true, err: err}}
				}
				return prefetchMsg{gen: gen, id: id, t: t}
			}
			s, err := b.LayerScores(ctx, a, bi, t, metric)
			if err != nil {
				return errMsg{backgroundError{gen: gen, id: id, t: t, err: err}}
			}
			return layerScoresMsg{gen: gen, id: id, t: t, metric: metric, scores: s}
		}
	}
	return nil
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

// statsCmd fetches the backend's counters off the UI goroutine: View and Update never call
// the backend, whatever locks it holds while the network runs.
func (m *Model) statsCmd() tea.Cmd {
	b, a, bi, t, gen := m.backend, m.pair.a, m.pair.b, m.sel.t, m.pair.gen
	return func() tea.Msg {
		msg := statsMsg{gen: gen, stats: b.Stats(), t: t}
		if a != nil && bi != nil {
			msg.tCached = b.Cached(a, bi, t)
		}
		return msg
	}
}

func statsTick() tea.Cmd {
	return tea.Tick(statsInterval, func(time.Time) tea.Msg { return statsTickMsg{} })
}
