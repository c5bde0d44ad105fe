package ui

import (
	"context"
	"errors"
	"fmt"
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

// requests is the explorer's bookkeeping of the backend: the jobs in flight, what the
// backend answered about the pair (the latest result, every layer's scores per timestep
// and metric, the timesteps computed), and its latest counters and progress. The root
// hands it what the view needs (need) and asks it what to draw; nothing else starts work.
type requests struct {
	ctx     context.Context
	backend Backend
	now     func() time.Time

	// gen is bumped whenever answers about the state before must be dropped: a new pair,
	// swapped images, a new conditioning. Every command carries the gen it was asked under.
	gen      int
	res      *api.Result // latest result for this pair; may answer an older request
	fg       job         // the Score for the current view
	bg       job         // one background job: layer scores or a prefetch
	jobID    int
	scores   map[scoreKey][]api.LayerScore
	seen     map[int]bool // timesteps whose features were computed for this pair
	stats    statsMsg     // latest snapshot of the backend's counters
	progress api.Progress
}

// scoreKey names the layer scores of one timestep under one metric.
type scoreKey struct {
	t      int
	metric api.Metric
}

// need is what the view needs from the backend now.
type need struct {
	view api.Request // the score on screen
	// ts are the timesteps whose layer scores the background fills, most wanted first:
	// view.T, its neighbours (prefetched first), then the sweep's.
	ts []int
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

func newRequests(ctx context.Context, b Backend, now func() time.Time) requests {
	return requests{ctx: ctx, backend: b, now: now, scores: map[scoreKey][]api.LayerScore{}, seen: map[int]bool{}}
}

// newGen starts a new generation: work in flight is cancelled and its answers will be
// dropped. What was answered stays until forget or dropResult.
func (r *requests) newGen() int {
	r.gen++
	r.stop()
	return r.gen
}

// stop cancels everything in flight; the backend's runs see their contexts end.
func (r *requests) stop() {
	r.fg.stop()
	r.bg.stop()
}

// forget drops everything answered about the pair (a new pair, or new conditioning).
func (r *requests) forget() {
	r.res = nil
	clear(r.scores)
	clear(r.seen)
}

// dropResult drops the shown result but keeps the layer scores and computed timesteps
// (the images swapped: with one noise tensor shared by both images the score is symmetric,
// METHOD.md, and features are cached per image, but A→B, B→A and the maps change sides).
func (r *requests) dropResult() { r.res = nil }

// result is the latest result, which may answer an older request (see current).
func (r *requests) result() *api.Result { return r.res }

// current reports whether the latest result answers want.
func (r *requests) current(want api.Request) bool {
	return r.res != nil && sameRequest(r.res.Req, want)
}

// layerScores are every layer's scores at t under m; nil when not computed yet.
func (r *requests) layerScores(t int, m api.Metric) []api.LayerScore {
	return r.scores[scoreKey{t, m}]
}

// allScores are the layer scores of every timestep and metric computed; read only.
func (r *requests) allScores() map[scoreKey][]api.LayerScore { return r.scores }

// computed reports whether the pair's features at t were computed (under any metric).
func (r *requests) computed(t int) bool {
	if r.seen[t] {
		return true
	}
	for k := range r.scores {
		if k.t == t {
			return true
		}
	}
	return false
}

// computedCount is how many timesteps were computed for the pair: switching the metric or
// the order of A and B reuses their features, so the count does not drop.
func (r *requests) computedCount() int {
	ts := map[int]bool{}
	for k := range r.scores {
		ts[k.t] = true
	}
	for t := range r.seen {
		ts[t] = true
	}
	return len(ts)
}

// schedule starts whatever n needs next.
func (r *requests) schedule(n need) tea.Cmd {
	if n.view.A == nil || n.view.B == nil {
		return nil
	}
	var cmds []tea.Cmd
	if !r.current(n.view) && !(r.fg.busy && sameRequest(r.fg.req, n.view)) {
		r.fg.stop()
		if r.bg.busy && r.bg.t != n.view.T && !r.seen[n.view.T] {
			r.bg.stop() // the view needs the network: it goes first
		}
		cmds = append(cmds, r.scoreCmd(n.view))
	}
	if !r.fg.busy && !r.bg.busy {
		if c := r.backgroundCmd(n); c != nil {
			cmds = append(cmds, c)
		}
	}
	return tea.Batch(cmds...)
}

func (r *requests) scoreCmd(req api.Request) tea.Cmd {
	ctx, cancel := context.WithCancel(r.ctx)
	r.jobID++
	r.fg = job{busy: true, id: r.jobID, t: req.T, req: req, since: r.now(), cancel: cancel}
	b, gen := r.backend, r.gen
	return func() tea.Msg {
		defer cancel()
		res, err := b.Score(ctx, req)
		if err != nil {
			return errMsg{scoreError{gen: gen, req: req, err: err}}
		}
		res.Req = req // what we asked, so the answer is recognised whatever the backend did
		return scoreMsg{gen: gen, res: res}
	}
}

// backgroundCmd starts the next background job, or returns nil when there is none.
func (r *requests) backgroundCmd(n need) tea.Cmd {
	metric := n.view.Metric
	for i, t := range n.ts {
		if _, ok := r.scores[scoreKey{t, metric}]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(r.ctx)
		r.jobID++
		r.bg = job{busy: true, id: r.jobID, t: t, since: r.now(), cancel: cancel}
		b, a, bi, gen, id := r.backend, n.view.A, n.view.B, r.gen, r.jobID
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

// takeScore keeps a Score's answer; false when it answers a question no longer asked.
func (r *requests) takeScore(msg scoreMsg) bool {
	if msg.gen != r.gen || !r.fg.busy || !sameRequest(msg.res.Req, r.fg.req) {
		return false
	}
	r.fg.stop()
	res := msg.res
	r.res = &res
	if !res.Pruned {
		// A pruned run computed this layer alone: the others at t are still to run.
		r.seen[res.Req.T] = true
	}
	return true
}

// takeLayerScores keeps a background job's layer scores; false when stale.
func (r *requests) takeLayerScores(msg layerScoresMsg) bool {
	if msg.gen != r.gen {
		return false
	}
	r.scores[scoreKey{msg.t, msg.metric}] = msg.scores
	r.seen[msg.t] = true
	if msg.id == r.bg.id {
		r.bg.stop()
	}
	return true
}

// takePrefetch notes a finished prefetch.
func (r *requests) takePrefetch(msg prefetchMsg) {
	if msg.gen != r.gen {
		return
	}
	r.seen[msg.t] = true
	if msg.id == r.bg.id {
		r.bg.stop()
	}
}

// takeError takes the error of a Score or a background job. show is what the status line
// should say (nil: nothing, the error is stale or a cancellation); retry asks for the
// schedule to run again (a cancelled background job makes room for the next).
func (r *requests) takeError(err error) (show error, retry bool) {
	switch e := err.(type) {
	case scoreError:
		if e.gen != r.gen || !r.fg.busy || !sameRequest(e.req, r.fg.req) {
			return nil, false
		}
		r.fg.stop()
	case backgroundError:
		if e.gen != r.gen || e.id != r.bg.id {
			return nil, false
		}
		r.bg.stop()
		// A background failure is shown but not retried: the next change of view
		// schedules it again.
	}
	if errors.Is(err, context.Canceled) {
		_, bg := err.(backgroundError)
		return nil, bg
	}
	return err, false
}

// takeStats keeps a snapshot of the backend's counters.
func (r *requests) takeStats(msg statsMsg) { r.stats = msg }

// takeProgress keeps the backend's latest progress report.
func (r *requests) takeProgress(p api.Progress) { r.progress = p }

// cachedAt reports whether the features of the pair at t are known to be in the backend's
// cache: computed here, or said so by the latest counters.
func (r *requests) cachedAt(t int) bool {
	return r.seen[t] || (r.stats.tCached && r.stats.t == t && r.stats.gen == r.gen)
}

// working says what runs now, for the status line ("" when idle); layerLabel names a
// layer, shownT is the view's timestep.
func (r *requests) working(layerLabel func(int) string, shownT int) (what string, since time.Time) {
	switch {
	case r.fg.busy:
		what = fmt.Sprintf("scoring %s t=%d", layerLabel(r.fg.req.Layer), r.fg.req.T)
		return what, r.fg.since
	case r.bg.busy:
		what := "layer scores"
		if r.bg.t != shownT {
			what = "ahead"
		}
		return fmt.Sprintf("%s t=%d", what, r.bg.t), r.bg.since
	}
	return "", time.Time{}
}

// runningNetwork reports whether the Score in flight waits for a network run (its features
// are not computed), and the backend's progress of it.
func (r *requests) runningNetwork() (api.Progress, bool) {
	if !r.fg.busy || r.seen[r.fg.req.T] || r.progress.What == "" {
		return api.Progress{}, false
	}
	return r.progress, true
}

// statsCmd fetches the backend's counters off the UI goroutine: View and Update never call
// the backend, whatever locks it holds while the network runs.
func (r *requests) statsCmd(a, b *api.Image, t int) tea.Cmd {
	be, gen := r.backend, r.gen
	return func() tea.Msg {
		msg := statsMsg{gen: gen, stats: be.Stats(), t: t}
		if a != nil && b != nil {
			msg.tCached = be.Cached(a, b, t)
		}
		return msg
	}
}

func sameRequest(x, y api.Request) bool { return x == y }
