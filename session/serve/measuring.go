package serve

import (
	"context"
	"sync/atomic"

	"github.com/diffsim/diffsim/api"
)

// measuring is a loaded Model whose first forward is measured: ONNX Runtime allocates a
// model's working memory (its arena, the prepacked weights, the weights mapped from disk as
// they are touched) when the model first runs, not when it loads, so the growth of the
// resident set across the load alone reports a fraction of what the model holds (a full-size
// SD 1.5 at 256 px: 1.5 GB at load, 6.2 GB once run). The first forward runs under the
// models' load lock, so no other load or first forward grows the process meanwhile; the
// features it caches are counted apart (Stats().CacheBytes), so they are not counted twice.
type measuring struct {
	api.Scorer
	ms         *models
	l          *loaded
	loadGrowth int64
	done       atomic.Bool
}

func (w *measuring) first(run func() error) error {
	if w.done.Load() {
		return run()
	}
	w.ms.loadMu.Lock()
	if w.done.Load() {
		w.ms.loadMu.Unlock()
		return run()
	}
	before, cached := w.ms.rss(), w.Scorer.Stats().CacheBytes
	err := run()
	grew := w.ms.rss() - before - (w.Scorer.Stats().CacheBytes - cached)
	if err == nil {
		w.ms.mu.Lock()
		w.l.bytes = max(w.l.bytes, w.loadGrowth+max(grew, 0))
		w.ms.sizes[w.l.key.weights()] = w.l.bytes
		w.ms.mu.Unlock()
		w.done.Store(true)
	}
	w.ms.loadMu.Unlock()
	if err == nil {
		w.ms.trim()
	}
	return err
}

func (w *measuring) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	return w.first(func() error { return w.Scorer.Prefetch(ctx, t, imgs...) })
}

func (w *measuring) Score(ctx context.Context, req api.Request) (r api.Result, err error) {
	err = w.first(func() error { r, err = w.Scorer.Score(ctx, req); return err })
	return r, err
}

func (w *measuring) Sweep(ctx context.Context, a, b *api.Image, layers, ts []int, m api.Metric, afterStep func()) (sw api.Sweep, err error) {
	err = w.first(func() error { sw, err = w.Scorer.Sweep(ctx, a, b, layers, ts, m, afterStep); return err })
	return sw, err
}

func (w *measuring) Rank(ctx context.Context, query *api.Image, files []string, layer, t int, m api.Metric, done func()) (r []api.Ranked, sk []api.Skipped, err error) {
	err = w.first(func() error { r, sk, err = w.Scorer.Rank(ctx, query, files, layer, t, m, done); return err })
	return r, sk, err
}

func (w *measuring) LayerScores(ctx context.Context, a, b *api.Image, t int, m api.Metric) (s []api.LayerScore, err error) {
	err = w.first(func() error { s, err = w.Scorer.LayerScores(ctx, a, b, t, m); return err })
	return s, err
}
