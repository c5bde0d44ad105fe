package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
)

// Scorer is what a run needs of an api.Scorer (local or served): images read, their features
// computed in one batch, and pairs scored. Tests give a fake.
type Scorer interface {
	Load(path string) (*api.Image, error)
	Prefetch(ctx context.Context, t int, imgs ...*api.Image) error
	Score(ctx context.Context, req api.Request) (api.Result, error)
}

// Run makes one shard of a benchmark: the decisions not yet in the results file, in index
// order, each saved the moment it is made.
type Run struct {
	Scorer   Scorer
	Dataset  *Dataset
	Settings Settings // what every record carries; Settings.Total is len(Dataset.Tasks)
	Layer, T int
	Metric   api.Metric
	Shard    Shard
	Out      string // results file (JSONL) to resume from and append to; "" keeps nothing
	// PrefetchLayers, when set (a session computing in this process), computes images'
	// features for some layers only: a decision's three images then run through the network
	// cut down to the run's layer. Nil: Scorer.Prefetch, every layer.
	PrefetchLayers func(ctx context.Context, t int, layers []int, imgs ...*api.Image) error

	// Log receives warnings and the skipped decisions, one line each; nil discards them.
	Log io.Writer
	// Progress, when set, is called before the first decision and after each one with the
	// shard's decisions done so far (resumed ones included) and its size.
	Progress func(done, total int)
	// Abandon, when closed after ctx is done, gives up the decision in flight. Nil means a
	// second SIGINT, SIGTERM or SIGHUP does, as a person pressing Ctrl-C twice expects.
	Abandon <-chan struct{}
}

// Outcome is what a run did.
type Outcome struct {
	Summary     Summary // the shard's decisions, resumed ones included
	InShard     int     // decisions in the shard
	Resumed     int     // found in the results file
	Made        int     // made by this run
	Interrupted bool    // ctx ended the run before the shard was done
}

// Do runs until the shard is done, ctx is cancelled (the decision in flight is finished and
// saved first; Outcome.Interrupted says so, and the error is ctx's), or a decision fails.
func (r *Run) Do(ctx context.Context) (Outcome, error) {
	log := r.Log
	if log == nil {
		log = io.Discard
	}
	ds, sh := r.Dataset, r.Shard
	done := map[int]Decision{}
	var res *Results
	if r.Out != "" {
		var err error
		res, done, err = OpenResults(r.Out, r.Settings, ds.Tasks)
		if err != nil {
			return Outcome{}, err
		}
		defer res.Close()
	}
	var todo []Task
	out := Outcome{}
	for _, task := range ds.Tasks {
		if !sh.Has(task.Index) {
			continue
		}
		out.InShard++
		if _, ok := done[task.Index]; ok {
			out.Resumed++
		} else {
			todo = append(todo, task)
		}
	}
	// A results file of another shard layout would resume decisions that are not this
	// shard's: count only this shard's, and refuse a file that holds others.
	if out.Resumed != len(done) {
		return out, fmt.Errorf("%w: %s holds %d decisions that are not in shard %s; it belongs to another shard or split, give another --out", ErrMismatch, r.Out, len(done)-out.Resumed, sh)
	}
	progress := func() {
		if r.Progress != nil {
			r.Progress(out.Resumed+out.Made, out.InShard)
		}
	}
	progress()

	scoreCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	stop := r.watch(ctx, abandon)
	defer stop()

	images := imageCache{s: r.Scorer, m: map[string]*api.Image{}}
	var runErr error
	for _, task := range todo {
		if ctx.Err() != nil {
			break
		}
		d, err := r.decide(scoreCtx, &images, task)
		if err != nil {
			if scoreCtx.Err() == nil {
				runErr = fmt.Errorf("decision %d (%s): %w", task.Index, task.ID, err)
			}
			break
		}
		if d.Skipped != "" {
			fmt.Fprintf(log, "diffsim: skipped decision %d: %s\n", task.Index, d.Skipped)
		}
		if res != nil {
			if err := res.Write(d); err != nil {
				runErr = err
				break
			}
		}
		done[task.Index] = d
		out.Made++
		progress()
	}
	if err := res.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return out, runErr
	}
	mine := make([]Decision, 0, len(done))
	for _, task := range ds.Tasks {
		if d, ok := done[task.Index]; ok {
			mine = append(mine, d)
		}
	}
	out.Summary = Summarize(r.Settings, mine)
	if sh.N > 1 {
		out.Summary.Shard, out.Summary.ShardSize = sh.String(), out.InShard
	}
	if out.Made < len(todo) {
		out.Interrupted = true
		return out, ctx.Err()
	}
	return out, nil
}

// watch abandons the decision in flight on the second request to stop: Abandon closing, or a
// second signal once ctx (the first) is done. The returned func ends the watch.
func (r *Run) watch(ctx context.Context, abandon func()) (stop func()) {
	return watchStop(ctx, r.Log, r.Abandon, abandon)
}

// watchStop calls abandon on the second request to stop: second closing (nil: a second
// SIGINT, SIGTERM or SIGHUP) once ctx, the first, is done. It says on log how to abandon.
// The returned func ends the watch; nothing is written to log after it returns.
func watchStop(ctx context.Context, log io.Writer, second <-chan struct{}, abandon func()) (stop func()) {
	finished := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		if second == nil {
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer signal.Stop(sig)
			ch := make(chan struct{})
			go func() {
				select {
				case <-sig:
					close(ch)
				case <-finished:
				}
			}()
			second = ch
		}
		if log != nil {
			fmt.Fprintln(log, "diffsim: stopping after the decision in flight (interrupt again to abandon it)")
		}
		select {
		case <-second:
			abandon()
		case <-finished:
		}
	})
	return func() { close(finished); wg.Wait() }
}

// decide scores one task. Unreadable images make a skipped decision; other errors end the run.
func (r *Run) decide(ctx context.Context, images *imageCache, task Task) (Decision, error) {
	var imgs [3]*api.Image
	for i, p := range []string{task.Ref, task.A, task.B} {
		img, err := images.load(r.Dataset.Path(p))
		if err != nil {
			if imagefile.IsUnreadable(err) {
				return Skip(task, firstLine(err), r.Settings), nil
			}
			return Decision{}, err
		}
		imgs[i] = img
	}
	ref, a, b := imgs[0], imgs[1], imgs[2]
	// The three images' missing features come from one batched run: of the network cut down
	// to the run's layer when the scorer can (PrefetchLayers).
	prefetch := r.Scorer.Prefetch
	if r.PrefetchLayers != nil {
		prefetch = func(ctx context.Context, t int, imgs ...*api.Image) error {
			return r.PrefetchLayers(ctx, t, []int{r.Layer}, imgs...)
		}
	}
	if err := prefetch(ctx, r.T, ref, a, b); err != nil {
		return Decision{}, err
	}
	ra, err := r.Scorer.Score(ctx, api.Request{A: ref, B: a, Layer: r.Layer, T: r.T, Metric: r.Metric, Token: -1})
	if err != nil {
		return Decision{}, err
	}
	rb, err := r.Scorer.Score(ctx, api.Request{A: ref, B: b, Layer: r.Layer, T: r.T, Metric: r.Metric, Token: -1})
	if err != nil {
		return Decision{}, err
	}
	return Decide(task, ra.Score, rb.Score, r.Metric.HigherIsMoreSimilar(), r.Settings), nil
}

// firstLine keeps a record's reason to one line.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// imageCache keeps the last few decoded images: references repeat across neighbouring
// decisions (TID2013 asks 24 in a row about one reference).
type imageCache struct {
	s Scorer
	m map[string]*api.Image
}

func (c *imageCache) load(path string) (*api.Image, error) {
	if img, ok := c.m[path]; ok {
		return img, nil
	}
	img, err := c.s.Load(path)
	if err != nil {
		return nil, err
	}
	if len(c.m) >= 8 {
		clear(c.m)
	}
	c.m[path] = img
	return img, nil
}
