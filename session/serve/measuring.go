package serve

import (
	"context"
	"sync/atomic"

	"github.com/diffsim/diffsim/session"
)

// measuring is a loaded Model whose first forward is measured: ONNX Runtime allocates a
// model's working memory (its arena, the prepacked weights, the weights mapped from disk as
// they are touched) when the model first runs, not when it loads, so the growth of the
// resident set across the load alone reports a fraction of what the model holds (a full-size
// SD 1.5 at 256 px: 1.5 GB at load, 6.2 GB once run). The first forward runs under the
// models' load lock, so no other load or first forward grows the process meanwhile; the
// features it caches are counted apart (Stats().CacheBytes), so they are not counted twice.
type measuring struct {
	Model
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
	before, cached := w.ms.rss(), w.Model.Stats().CacheBytes
	err := run()
	grew := w.ms.rss() - before - (w.Model.Stats().CacheBytes - cached)
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

func (w *measuring) PrefetchImages(ctx context.Context, t int, imgs ...*session.Image) error {
	return w.first(func() error { return w.Model.PrefetchImages(ctx, t, imgs...) })
}

func (w *measuring) Score(ctx context.Context, req session.Request) (r session.Result, err error) {
	err = w.first(func() error { r, err = w.Model.Score(ctx, req); return err })
	return r, err
}

func (w *measuring) Sweep(ctx context.Context, a, b *session.Image, layers, ts []int, m session.Metric, afterStep func()) (sw session.Sweep, err error) {
	err = w.first(func() error { sw, err = w.Model.Sweep(ctx, a, b, layers, ts, m, afterStep); return err })
	return sw, err
}

func (w *measuring) Rank(ctx context.Context, query *session.Image, files []string, layer, t int, m session.Metric, done func()) (r []session.Ranked, sk []session.Skipped, err error) {
	err = w.first(func() error { r, sk, err = w.Model.Rank(ctx, query, files, layer, t, m, done); return err })
	return r, sk, err
}

func (w *measuring) LayerScores(ctx context.Context, a, b *session.Image, t int, m session.Metric) (s []session.LayerScore, err error) {
	err = w.first(func() error { s, err = w.Model.LayerScores(ctx, a, b, t, m); return err })
	return s, err
}
