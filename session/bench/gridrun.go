package bench

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
)

// PairScorer is what a grid run needs from a model: images read, their features at a
// timestep computed in batches, a pair's scores at several layers and metrics from one
// forward's features, and memory freed as the run moves on. Local wraps a session in this
// process, Served a running `diffsim serve`.
type PairScorer interface {
	Load(path string) (*api.Image, error)
	// Cached reports whether both images' features at t are kept, so that images read
	// without their pixels can be scored.
	Cached(a, b *api.Image, t int) bool
	// Prefetch computes the features at t of the images not kept, in one batch.
	Prefetch(ctx context.Context, t int, imgs ...*api.Image) error
	// PairScores returns the score of a and b at t at each layer (indices into the model's
	// layers) under each metric: [metric][layer].
	PairScores(ctx context.Context, a, b *api.Image, t int, layers []int, metrics []api.Metric) ([][]float64, error)
	// Forget says the run will not ask about imgs at t again: a session drops their
	// features, so a run holds only what its pending decisions need.
	Forget(t int, imgs ...*api.Image)
	// Stats counts the network runs, so the run can say what it cost.
	Stats() api.Stats
}

// LocalScorer is what Local needs of a scorer in this process: *session.Session (tests give
// a fake).
type LocalScorer interface {
	Scorer
	Cached(a, b *api.Image, t int) bool
	Forget(t int, imgs ...*api.Image)
	Stats() api.Stats
}

// Local scores in this process: each score is the scorer's Score at that layer and metric,
// exactly what a single-cell run records. A pair's scores at one t share one comparison per
// layer (the session keeps it), so the metrics cost nothing extra, and only the grid's layers
// are compared.
type Local struct {
	S LocalScorer
}

// Load implements PairScorer.
func (l Local) Load(path string) (*api.Image, error) { return l.S.Load(path) }

// Cached implements PairScorer.
func (l Local) Cached(a, b *api.Image, t int) bool { return l.S.Cached(a, b, t) }

// Prefetch implements PairScorer.
func (l Local) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	return l.S.Prefetch(ctx, t, imgs...)
}

// PairScores implements PairScorer.
func (l Local) PairScores(ctx context.Context, a, b *api.Image, t int, layers []int, metrics []api.Metric) ([][]float64, error) {
	return cellScores(ctx, l.S, a, b, t, layers, metrics)
}

// cellScores is s's Score at each layer and metric.
func cellScores(ctx context.Context, s Scorer, a, b *api.Image, t int, layers []int, metrics []api.Metric) ([][]float64, error) {
	out := make([][]float64, len(metrics))
	for mi, m := range metrics {
		out[mi] = make([]float64, len(layers))
		for li, layer := range layers {
			r, err := s.Score(ctx, api.Request{A: a, B: b, Layer: layer, T: t, Metric: m, Token: -1})
			if err != nil {
				return nil, err
			}
			out[mi][li] = r.Score
		}
	}
	return out, nil
}

// Forget implements PairScorer: the session frees the features (session.Session.Forget).
func (l Local) Forget(t int, imgs ...*api.Image) { l.S.Forget(t, imgs...) }

// Stats implements PairScorer.
func (l Local) Stats() api.Stats { return l.S.Stats() }

// Served scores on a running server: a batch's images go in one prefetch (the server joins
// concurrent requests into batched forwards), and a pair's every layer comes from one
// LayerScores per metric rather than a request per cell. The server reads images itself and
// computes them again should it have dropped them, so the images this run sent are taken as
// kept.
type Served struct {
	S interface {
		Scorer
		LayerScores(ctx context.Context, a, b *api.Image, t int, m api.Metric) ([]api.LayerScore, error)
		Stats() api.Stats
	}

	mu   sync.Mutex
	kept map[string]bool // hash@t of the images this run had the server compute
}

func keptKey(img *api.Image, t int) string { return fmt.Sprintf("%s@%d", img.Hash, t) }

// Load implements PairScorer.
func (s *Served) Load(path string) (*api.Image, error) { return s.S.Load(path) }

// Cached implements PairScorer.
func (s *Served) Cached(a, b *api.Image, t int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kept[keptKey(a, t)] && s.kept[keptKey(b, t)]
}

// Prefetch implements PairScorer.
func (s *Served) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	if err := s.S.Prefetch(ctx, t, imgs...); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kept == nil {
		s.kept = map[string]bool{}
	}
	for _, img := range imgs {
		s.kept[keptKey(img, t)] = true
	}
	return nil
}

// PairScores implements PairScorer.
func (s *Served) PairScores(ctx context.Context, a, b *api.Image, t int, layers []int, metrics []api.Metric) ([][]float64, error) {
	out := make([][]float64, len(metrics))
	for mi, m := range metrics {
		all, err := s.S.LayerScores(ctx, a, b, t, m)
		if err != nil {
			return nil, err
		}
		out[mi] = make([]float64, len(layers))
		for li, l := range layers {
			if l < 0 || l >= len(all) {
				return nil, fmt.Errorf("the server answered %d layers; layer %d is not among them", len(all), l)
			}
			out[mi][li] = all[l].Score
		}
	}
	return out, nil
}

// Forget implements PairScorer: the run stops counting imgs at t as kept. The server's
// features stay: they are shared by its clients and bounded by its own memory budget, which
// drops them as it requires.
func (s *Served) Forget(t int, imgs ...*api.Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, img := range imgs {
		delete(s.kept, keptKey(img, t))
	}
}

// Stats implements PairScorer: the server model's counters, this run's work when no other
// client uses the model.
func (s *Served) Stats() api.Stats { return s.S.Stats() }

// DefaultBatch is the images per forward of a grid run: a decision's three, as a single-cell
// run batches them. On a CPU larger batches are no faster and grow ONNX Runtime's memory (the
// built-in model at 256 px: 333 MB peak with 3, 494 MB with 4, 705 MB with 8); on a GPU, give
// 8 or more.
const DefaultBatch = 3

// GridRun makes one shard of a benchmark at every cell of a grid (layers × timesteps ×
// metrics) from the same forwards: at each timestep, each image runs through the network once,
// in batches, and that forward's features score every layer and metric. Work is ordered by
// timestep and then by decision, so only one timestep's features are needed at a time, and a
// decision is made and saved as soon as its images' features are there.
type GridRun struct {
	Scorer   PairScorer
	Dataset  *Dataset
	Settings GridSettings // the grid; Settings.Total is len(Dataset.Tasks)
	Shard    Shard
	Out      string // results file to resume from and append to; "" keeps nothing
	Batch    int    // images per forward; 0 = DefaultBatch

	// Log receives warnings and the skipped decisions, one line each; nil discards them.
	Log io.Writer
	// Progress, when set, is called before the first decision and after each one with the
	// shard's decisions × timesteps done so far (resumed ones included) and their total.
	Progress func(done, total int)
	// Abandon, when closed after ctx is done, gives up the forward in flight. Nil means a
	// second SIGINT, SIGTERM or SIGHUP does.
	Abandon <-chan struct{}
}

// GridOutcome is what a grid run did.
type GridOutcome struct {
	Tally       *Tally // the shard's records, resumed ones included
	InShard     int    // decisions × timesteps in the shard
	Resumed     int    // found in the results file
	Made        int    // made by this run
	Interrupted bool   // ctx ended the run before the shard was done
	// Images is the images this run put through the network and Forwards the batched runs
	// that took them.
	Images, Forwards int
}

// gridItem is one decision at one timestep on its way: its images, or why it is skipped.
type gridItem struct {
	task      Task
	ref, a, b *api.Image
	skip      string
}

// Do runs until the shard is done, ctx is cancelled (the decision in flight is finished and
// saved first; Interrupted says so, and the error is ctx's), or a decision fails.
func (r *GridRun) Do(ctx context.Context) (GridOutcome, error) {
	log := r.Log
	if log == nil {
		log = io.Discard
	}
	g, ds, sh := r.Settings, r.Dataset, r.Shard
	out := GridOutcome{Tally: NewTally(g)}
	done := make([]map[int]bool, len(g.T))
	for i := range done {
		done[i] = map[int]bool{}
	}
	var res *GridResults
	if r.Out != "" {
		var err error
		foreign := 0
		res, err = OpenGridResults(r.Out, g, ds.Tasks, func(rec GridRecord) {
			if !sh.Has(rec.Index) {
				foreign++
				return
			}
			done[g.TIndex(rec.T)][rec.Index] = true
			out.Tally.Add(rec)
			out.Resumed++
		})
		if err != nil {
			return out, err
		}
		defer res.Close()
		if foreign > 0 {
			return out, fmt.Errorf("%w: %s holds %d records that are not in shard %s; it belongs to another shard or split, give another --out", ErrMismatch, r.Out, foreign, sh)
		}
	}
	var mine []Task
	for _, task := range ds.Tasks {
		if sh.Has(task.Index) {
			mine = append(mine, task)
		}
	}
	out.InShard = len(mine) * len(g.T)
	progress := func() {
		if r.Progress != nil {
			r.Progress(out.Resumed+out.Made, out.InShard)
		}
	}
	progress()

	layers := make([]int, len(g.Layers))
	for i, l := range g.Layers {
		layers[i] = l.Index
	}
	metrics := make([]api.Metric, len(g.Metrics))
	for i, m := range g.Metrics {
		metrics[i] = api.Metric(m)
	}
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	before := r.Scorer.Stats()

	scoreCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	stop := watchStop(ctx, r.Log, r.Abandon, abandon)
	defer stop()

	w := gridWorker{s: r.Scorer, root: ds, known: map[string]*api.Image{}}
	logged := map[int]bool{}
	var runErr error
run:
	for ti, t := range g.T {
		var todo []Task
		for _, task := range mine {
			if !done[ti][task.Index] {
				todo = append(todo, task)
			}
		}
		// the position of each image's last decision at t: after it, its features can go
		last := map[string]int{}
		for i, task := range todo {
			for _, p := range []string{task.Ref, task.A, task.B} {
				last[ds.Path(p)] = i
			}
		}
		pos := 0
		for len(todo) > 0 {
			if ctx.Err() != nil {
				break run
			}
			chunk, fresh, err := w.chunk(todo, t, batch)
			if err != nil {
				runErr = err
				break run
			}
			todo = todo[len(chunk):]
			if len(fresh) > 0 {
				if err := r.Scorer.Prefetch(scoreCtx, t, fresh...); err != nil {
					if scoreCtx.Err() == nil {
						runErr = fmt.Errorf("t=%d: %w", t, err)
					}
					break run
				}
			}
			for _, it := range chunk {
				if ctx.Err() != nil {
					break run
				}
				rec, err := w.decide(scoreCtx, it, t, layers, metrics)
				if err != nil {
					if scoreCtx.Err() == nil {
						runErr = fmt.Errorf("decision %d (%s) at t=%d: %w", it.task.Index, it.task.ID, t, err)
					}
					break run
				}
				if rec.Skipped != "" && !logged[it.task.Index] {
					logged[it.task.Index] = true
					fmt.Fprintf(log, "diffsim: skipped decision %d: %s\n", it.task.Index, rec.Skipped)
				}
				if res != nil {
					if err := res.Write(rec); err != nil {
						runErr = err
						break run
					}
				}
				out.Tally.Add(rec)
				out.Made++
				progress()
				w.release(t, it, pos, last)
				pos++
			}
			w.forget(fresh)
		}
	}
	after := r.Scorer.Stats()
	out.Images, out.Forwards = after.Extracted-before.Extracted, after.Forwards-before.Forwards
	if err := res.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return out, runErr
	}
	if out.Resumed+out.Made < out.InShard {
		out.Interrupted = true
		return out, ctx.Err()
	}
	return out, nil
}

// gridWorker reads a run's images and scores its decisions. It keeps every image it has read
// by path, without its pixels (their features, once computed, are what counts): an image is
// decoded again only when its features are not kept.
type gridWorker struct {
	s     PairScorer
	root  *Dataset
	known map[string]*api.Image // path → the image without its pixels
}

// chunk takes decisions from the front of todo while the images whose features must be
// computed fit in one batch (at least one decision). It returns the decisions it took, with
// their images, and the images to compute.
func (w *gridWorker) chunk(todo []Task, t, batch int) ([]gridItem, []*api.Image, error) {
	var items []gridItem
	var fresh []*api.Image
	inBatch := map[string]*api.Image{}
	for _, task := range todo {
		it := gridItem{task: task}
		var add []*api.Image
		var imgs [3]*api.Image
		for i, p := range []string{task.Ref, task.A, task.B} {
			path := w.root.Path(p)
			if img, ok := inBatch[path]; ok {
				imgs[i] = img
				continue
			}
			if img, ok := w.known[path]; ok && w.s.Cached(img, img, t) {
				imgs[i] = img
				continue
			}
			if img := findPath(add, path); img != nil {
				imgs[i] = img
				continue
			}
			img, err := w.s.Load(path)
			if err != nil {
				if imagefile.IsUnreadable(err) {
					it.skip = firstLine(err)
					break
				}
				return nil, nil, err
			}
			imgs[i] = img
			add = append(add, img)
		}
		if it.skip != "" {
			add = nil
		}
		if len(items) > 0 && len(fresh)+len(add) > batch {
			break
		}
		for _, img := range add {
			inBatch[img.Path] = img
		}
		fresh = append(fresh, add...)
		it.ref, it.a, it.b = imgs[0], imgs[1], imgs[2]
		items = append(items, it)
	}
	return items, fresh, nil
}

func findPath(imgs []*api.Image, path string) *api.Image {
	for _, img := range imgs {
		if img.Path == path {
			return img
		}
	}
	return nil
}

// forget drops the pixels of a batch once its decisions are made, keeping the images by path.
func (w *gridWorker) forget(imgs []*api.Image) {
	for _, img := range imgs {
		light := *img
		light.Pixels = nil
		w.known[img.Path] = &light
	}
}

// release drops the features at t of the decision's images whose last decision at t it was.
func (w *gridWorker) release(t int, it gridItem, pos int, last map[string]int) {
	var done []*api.Image
	for _, img := range []*api.Image{it.ref, it.a, it.b} {
		if img != nil && last[img.Path] == pos && findPath(done, img.Path) == nil {
			done = append(done, img)
		}
	}
	if len(done) > 0 {
		w.s.Forget(t, done...)
	}
}

// decide scores one decision at t at every layer and metric.
func (w *gridWorker) decide(ctx context.Context, it gridItem, t int, layers []int, metrics []api.Metric) (GridRecord, error) {
	rec := newGridRecord(it.task, t)
	if it.skip != "" {
		rec.Skipped = it.skip
		return rec, nil
	}
	// An image read without its pixels had its features kept when the chunk was made; should
	// they have gone since (a cache smaller than a batch), it is read and run again.
	if err := w.ensure(ctx, t, it.ref, it.a, it.b); err != nil {
		return rec, err
	}
	sa, err := w.s.PairScores(ctx, it.ref, it.a, t, layers, metrics)
	if err != nil {
		return rec, err
	}
	sb, err := w.s.PairScores(ctx, it.ref, it.b, t, layers, metrics)
	if err != nil {
		return rec, err
	}
	rec.Scores = make(map[string][][2]api.Float, len(metrics))
	for mi, m := range metrics {
		row := make([][2]api.Float, len(layers))
		for li := range layers {
			row[li] = [2]api.Float{api.Float(sa[mi][li]), api.Float(sb[mi][li])}
		}
		rec.Scores[string(m)] = row
	}
	return rec, nil
}

func (w *gridWorker) ensure(ctx context.Context, t int, imgs ...*api.Image) error {
	var again []*api.Image
	for _, img := range imgs {
		if img.Pixels == nil && !w.s.Cached(img, img, t) && findPath(again, img.Path) == nil {
			full, err := w.s.Load(img.Path)
			if err != nil {
				return err
			}
			*img = *full
			again = append(again, img)
		}
	}
	if len(again) == 0 {
		return nil
	}
	err := w.s.Prefetch(ctx, t, again...)
	w.forget(again)
	return err
}
