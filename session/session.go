// Package session is the warm, UI-free state of one inspection: the runtime and the model,
// the images, a feature cache bounded in memory, and the scores computed from it. The explorer
// and the headless commands share it.
//
// A Session is the local api.Scorer: the explorer and every command score through that one
// interface, here or, through serve.Remote, in a running diffsim serve.
//
// It depends on interfaces, never on a family or on cgo: the runtime is a Runtime (engine's
// *Runtime in the program, a fake in tests), models are features.Model values opened through
// the registry of families the caller passes (features/families.All in the program). So the
// cache, shared runs, cancellation and Close are tested without ONNX Runtime.
package session

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/session/baseline"
)

// DefaultCacheBytes is the feature cache's budget when Options.CacheBytes is 0.
const DefaultCacheBytes = 2 << 30

// maxCompared bounds the comparisons a session remembers.
const maxCompared = 4096

// Runtime is what a session needs from engine: graphs opened as runners on one device, and a
// Close that frees it all. *engine.Runtime is one.
type Runtime interface {
	features.Loader
	Device() engine.Device
	Close() error
}

// Options configure a session.
type Options struct {
	// Spec is the model and how it runs (api.DefaultSpec() for the defaults): the model, the
	// working size, the seed, the device, the prompt it starts with, DiffSim-C's IP-Adapter.
	Spec       api.Spec
	Library    string // ONNX Runtime library path; empty = ONNXRUNTIME_LIB, then diffsim's cache
	Threads    int
	CacheBytes int64 // feature cache budget (features and the self terms kept with them); 0 = DefaultCacheBytes
	// GraphCache keeps ONNX Runtime's optimized graphs of large models between processes;
	// nil disables it.
	GraphCache *engine.GraphCache
	// Images bounds the image files Load reads (encoded bytes, pixels); zero means
	// imagefile's defaults.
	Images imagefile.Limits

	// Families are the model families the session can open (features/families.All in the
	// program). Required unless OpenModel is set.
	Families features.Families

	// Prune lets work that names its layers (Score, Rank, a Sweep over some layers) run the
	// model's network cut down to them when the model can (features.Pruner) and every layer's
	// features are not in memory already: headless commands and server requests. The explorer
	// leaves it off: its layer bars need every layer anyway.
	Prune bool
	// NoGlobal says the work never reports the global embedding's cosine (benchmarks decide
	// by the metric alone): Prune then cuts down models whose global embedding needs the
	// whole network (vision transformers) too. Without it their records keep global_cosine,
	// and they run whole.
	NoGlobal bool
	// PruneFirst, without Prune, prunes the first run only: the explorer's first score at its
	// starting layer, which a model cut down to that layer answers sooner than the whole
	// network the layer bars need. The first run of the whole network closes the pruned one
	// beforehand, so the two are never held together, and every run after the first is whole
	// (a layer asked for while the first run is on its way waits for the whole run instead of
	// opening a second pruned network).
	PruneFirst bool

	// OnProgress, when set, hears about network runs as they start and end (and the model
	// info says so: Caps.Progress).
	OnProgress func(api.Progress)

	// OpenRuntime and OpenModel build what the session owns; tests swap in fakes.
	OpenRuntime func(engine.Options) (Runtime, error)
	OpenModel   func(ctx context.Context, rt Runtime, o Options) (features.Model, error)
	// Attention computes attention for scores; nil means a aas.RuntimeAttention on the
	// session's runtime (Go below its size threshold).
	Attention aas.Attention
}

// ErrClosed is returned by every call on a session that Close has begun to close.
var ErrClosed = errors.New("session is closed")

// Session owns the runtime, the model and the caches.
type Session struct {
	opts   Options
	rt     Runtime
	ownAtt *aas.RuntimeAttention // closed with the session when the session made it
	model  features.Model
	info   api.ModelInfo
	layers []features.Layer // the model's own layers: token grids of its features
	// globalNeedsAll: the model's global embedding needs its whole network
	// (features.ModelInfo.GlobalNeedsAll).
	globalNeedsAll bool
	att            aas.Attention
	// recompute makes every comparison compute its self terms anew, as before they were
	// kept: the reference the benchmarks measure keeping them against.
	recompute bool

	mu       sync.Mutex
	cond     features.Conditioning // features are cached per conditioning too
	baseline *calibration.Baseline // of the model with cond; Info carries it
	cache    *lru
	compared map[compareKey]aas.Comparison
	inflight map[extractKey]*call
	stats    api.Stats
	closed   bool
	// pruned says that Options.PruneFirst's one pruned run has been asked for: later runs
	// are whole. released says the pruned network has been closed for the whole one.
	pruned, released bool
	// refs counts the calls using the model now; Close waits for it to reach zero before it
	// frees the model, as ollama's scheduler waits for a runner's references to drain.
	refs    int
	drained *sync.Cond // signalled (under mu) when refs drops to zero
}

type extractKey struct {
	hash   string
	t      int
	cond   features.Conditioning
	layers string // the layers a pruned run computed; "" for every layer
}

type compareKey struct {
	a, b  string
	t     int
	layer int
	cond  features.Conditioning
}

type call struct {
	done chan struct{}
	res  map[string]*kept // by image hash, set before done closes
	err  error
}

func openEngine(o engine.Options) (Runtime, error) {
	rt, err := engine.Open(o)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return rt, nil
}

// Open starts the runtime and loads the model.
func Open(ctx context.Context, o Options) (*Session, error) {
	o.Spec = o.Spec.Normalize()
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.OpenRuntime == nil {
		o.OpenRuntime = openEngine
	}
	if o.OpenModel == nil {
		o.OpenModel = OpenModel
	}
	rt, err := o.OpenRuntime(engine.Options{Library: o.Library, Device: o.Spec.Device, Threads: o.Threads, GraphCache: o.GraphCache})
	if err != nil {
		return nil, err
	}
	var ownAtt *aas.RuntimeAttention
	if o.Attention == nil {
		ownAtt = aas.NewRuntimeAttention(rt)
		o.Attention = ownAtt
	}
	undo := func(err error, model features.Model) error {
		if model != nil {
			err = errors.Join(err, model.Close())
		}
		if ownAtt != nil {
			err = errors.Join(err, ownAtt.Close())
		}
		return errors.Join(err, rt.Close())
	}
	model, err := o.OpenModel(ctx, rt, o)
	if err != nil {
		return nil, undo(err, nil)
	}
	cond := o.Spec.Conditioning()
	if err := prepare(ctx, model, cond); err != nil {
		return nil, undo(err, model)
	}
	fi := model.Info()
	info := fi.Describe()
	dev := rt.Device()
	info.Device, info.Notice, info.Seed = dev.String(), dev.Notice, o.Spec.Seed
	_, conditioned := model.(features.Conditioned)
	info.Caps = api.Capabilities{Prompt: conditioned, CFG: conditioned, Progress: o.OnProgress != nil}
	s := &Session{
		opts: o, rt: rt, ownAtt: ownAtt, model: model, att: o.Attention, info: info, layers: fi.Layers,
		globalNeedsAll: fi.GlobalNeedsAll,
		cond:           cond,
		cache:          newLRU(o.CacheBytes),
		compared:       map[compareKey]aas.Comparison{},
		inflight:       map[extractKey]*call{},
	}
	s.drained = sync.NewCond(&s.mu)
	s.stats.CacheBudget = o.CacheBytes
	// The baseline of this model and its settings, which calibrates every record; one that
	// cannot be read is said where the device's notice is, and scores go uncalibrated.
	b, err := baseline.For(o.Spec, info.Size)
	if err != nil {
		s.info.Notice = strings.TrimPrefix(s.info.Notice+"; ", "; ") + "scores not calibrated: " + err.Error()
	}
	s.baseline = b
	return s, nil
}

// prepare checks that the model can take the conditioning and embeds its prompt.
func prepare(ctx context.Context, model features.Model, c features.Conditioning) error {
	if c.IsZero() {
		return nil
	}
	cm, ok := model.(features.Conditioned)
	if !ok {
		return usagef("%s takes no text prompt (--prompt and --cfg are for models conditioned on text, such as Stable Diffusion)", model.Info().Name)
	}
	if err := cm.Prepare(ctx, c); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return api.UsageError(err)
	}
	return nil
}

// acquire takes a reference on the model for one call; it fails once Close has begun.
func (s *Session) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.refs++
	return nil
}

func (s *Session) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs--; s.refs == 0 {
		s.drained.Broadcast()
	}
}

// Conditioning is the prompt and CFG setting scores use now.
func (s *Session) Conditioning() api.Conditioning {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cond
}

// SetConditioning changes the prompt (and CFG setting) for the requests that follow. It embeds
// the prompt first (one text-encoder run per new prompt) and leaves the setting unchanged when
// that fails. Features already computed stay cached under their own conditioning.
func (s *Session) SetConditioning(ctx context.Context, c api.Conditioning) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if err := prepare(ctx, s.model, c); err != nil {
		return err
	}
	spec := s.opts.Spec
	spec.Prompt, spec.CFG = c.Prompt, c.CFG
	b, _ := baseline.For(spec, s.info.Size) // another prompt, another baseline (or none)
	s.mu.Lock()
	s.cond, s.baseline = c, b
	s.mu.Unlock()
	return nil
}

// OpenModel is the default model opener: the registry finds the family that reads o.Model
// and opens it on rt.
func OpenModel(ctx context.Context, rt Runtime, o Options) (features.Model, error) {
	fam, src, err := o.Families.Resolve(o.Spec.Model)
	if err != nil {
		return nil, api.UsageError(err)
	}
	if fi, err := os.Stat(src.Path); err == nil && fi.IsDir() && src.Cached {
		// Hub snapshots are symlinks, which ONNX Runtime refuses for external weights.
		dir, cleanup, err := store.Materialize(src.Path, nil)
		if err != nil {
			return nil, err
		}
		// The runners hold what they need once created; the private folder can go.
		defer cleanup()
		if src.Graph != "" {
			if rel, err := filepath.Rel(src.Path, src.Graph); err == nil {
				src.Graph = filepath.Join(dir, rel)
			}
		}
		src.Path = dir
	}
	m, err := fam.Open(ctx, rt, src, openOptions(o.Spec))
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		// A model that cannot be read is bad input, like an unreadable image (exit code 2).
		return nil, api.UsageError(err)
	}
	return m, nil
}

// openOptions is what a family needs of a spec to open or describe a model.
func openOptions(sp api.Spec) features.OpenOptions {
	return features.OpenOptions{Size: sp.Size, IPAdapter: features.AdapterOptions{Weights: sp.IPAdapter, ImageEncoder: sp.ImageEncoder, Scale: sp.IPScale}}
}

func usagef(format string, args ...any) error { return api.UsageError(fmt.Errorf(format, args...)) }

// Info describes the model, the session's settings and what it can do.
func (s *Session) Info() api.ModelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.info
	i.Baseline = s.baseline
	return i
}

// Resolve resolves a selection of layer, t or step, and metric against the model.
func (s *Session) Resolve(sel api.Selection) (api.Target, error) { return s.info.Resolve(sel) }

// Load reads an image file (LoadImage) within the session's limits.
func (s *Session) Load(path string) (*api.Image, error) {
	return LoadImage(context.Background(), path, s.opts.Images)
}

// LoadContext is Load, stopping when ctx ends.
func (s *Session) LoadContext(ctx context.Context, path string) (*api.Image, error) {
	return LoadImage(ctx, path, s.opts.Images)
}

// LoadImage is the one way an image file becomes an api.Image, for a session, for the served
// scorer (which needs the same hash the server computes) and for the server itself: the
// file's bytes read as package imagefile reads them (a regular file within lim), decoded, and
// identified by their sha256.
func LoadImage(ctx context.Context, path string, lim imagefile.Limits) (*api.Image, error) {
	img, hash, err := imagefile.Load(ctx, path, lim)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	return &api.Image{Path: path, Hash: hash, W: b.Dx(), H: b.Dy(), Pixels: img}, nil
}

// Stats reports the work done so far.
func (s *Session) Stats() api.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.CacheBytes = s.cache.bytes
	return st
}

// Cached reports whether both images' features at t are in memory.
func (s *Session) Cached(a, b *api.Image, t int) bool {
	t = s.effectiveT(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, okA := s.cache.peek(extractKey{a.Hash, t, s.cond, ""})
	_, okB := s.cache.peek(extractKey{b.Hash, t, s.cond, ""})
	return okA && okB
}

// Prefetch computes the features at t of every image not cached, in one batch, so a later
// Score at t runs no network.
func (s *Session) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	_, err := s.extract(ctx, imgs, s.effectiveT(t), s.Conditioning(), nil)
	return err
}

// Forget drops the features at t of imgs, the self terms kept with them and the comparisons
// made with them, from memory: a caller that has made every score it needs of those images (a
// benchmark moving on) frees their memory at once rather than when the cache's budget would
// push them out. Asking for them again computes them again.
func (s *Session) Forget(t int, imgs ...*api.Image) {
	t = s.effectiveT(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := map[string]bool{}
	for _, img := range imgs {
		gone[img.Hash] = true
	}
	// every run of them at t: whole, or pruned to some layers
	s.cache.removeIf(func(k extractKey) bool { return k.t == t && k.cond == s.cond && gone[k.hash] })
	for k := range s.compared {
		if k.t == t && (gone[k.a] || gone[k.b]) {
			delete(s.compared, k)
		}
	}
}

// PrefetchLayers is Prefetch for work that scores only layers: the images' features come from
// the network cut down to them when the session prunes (Options.Prune), as a Score at one of
// those layers would compute them, in one batched run.
func (s *Session) PrefetchLayers(ctx context.Context, t int, layers []int, imgs ...*api.Image) error {
	return s.prefetch(ctx, t, layers, imgs...)
}

// prefetch is Prefetch for work that needs layers (pruned when the session prunes).
func (s *Session) prefetch(ctx context.Context, t int, layers []int, imgs ...*api.Image) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	_, err := s.extract(ctx, imgs, s.effectiveT(t), s.Conditioning(), s.prunedTo(layers))
	return err
}

// prunedTo is the layers a run for work that needs layers computes: layers, when the session
// prunes (Prune, or PruneFirst's first run; extract decides that one) and the model can
// without losing a global embedding the work reports; nil (every layer) otherwise.
func (s *Session) prunedTo(layers []int) []int {
	if _, ok := s.model.(features.Pruner); !ok || !(s.opts.Prune || s.opts.PruneFirst) || len(layers) == 0 || len(layers) >= len(s.info.Layers) {
		return nil
	}
	if s.globalNeedsAll && !s.opts.NoGlobal {
		return nil
	}
	set := slices.Clone(layers)
	slices.Sort(set)
	return slices.Compact(set)
}

// firstPruned is the layers a run computes under PruneFirst (called with mu held): those
// asked for by the session's first call for features (pruned, or nil), every layer (nil)
// after it.
func (s *Session) firstPruned(layers []int) []int {
	if !s.opts.PruneFirst || s.opts.Prune {
		return layers
	}
	first := !s.pruned
	s.pruned = true
	if !first {
		return nil
	}
	return layers
}

func layerKey(layers []int) string {
	if layers == nil {
		return ""
	}
	return fmt.Sprint(layers)
}

// effectiveT maps t for models without timesteps to 0, so their cache has one entry per image.
func (s *Session) effectiveT(t int) int {
	if !s.info.Timesteps {
		return 0
	}
	return t
}

// extract returns the images' features at t as the cache keeps them, running the network once,
// as a batch, for those not cached. Concurrent callers asking for the same image and t share
// one run. With layers (from prunedTo), an image whose features at every layer are cached uses
// those; otherwise the network runs cut down to layers, and its features are cached under that
// set.
func (s *Session) extract(ctx context.Context, imgs []*api.Image, t int, cond features.Conditioning, layers []int) ([]*kept, error) {
	if t < 0 || t >= schedule.Timesteps {
		return nil, usagef("t=%d is outside 0..%d", t, schedule.Timesteps-1)
	}
	out := make([]*kept, len(imgs))
	have := make([]bool, len(imgs))
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		layers := s.firstPruned(layers)
		var missing []*api.Image
		waits := map[*call]bool{}
		seen := map[string]bool{}
		for i, img := range imgs {
			if have[i] {
				continue
			}
			if layers != nil {
				if e, ok := s.cache.get(extractKey{img.Hash, t, cond, ""}); ok {
					out[i], have[i] = e, true
					s.stats.CacheHits++
					continue
				}
			}
			k := extractKey{img.Hash, t, cond, layerKey(layers)}
			if e, ok := s.cache.get(k); ok {
				out[i], have[i] = e, true
				s.stats.CacheHits++
				continue
			}
			if c, ok := s.inflight[k]; ok {
				waits[c] = true
				continue
			}
			if !seen[img.Hash] {
				seen[img.Hash] = true
				missing = append(missing, img)
			}
		}
		var mine *call
		if len(missing) > 0 {
			mine = &call{done: make(chan struct{})}
			for _, img := range missing {
				s.inflight[extractKey{img.Hash, t, cond, layerKey(layers)}] = mine
			}
			s.stats.Forwards++
			s.stats.Extracted += len(missing)
		}

		release := mine != nil && layers == nil && s.opts.PruneFirst && !s.opts.Prune && !s.released
		if release {
			s.released = true
		}
		s.mu.Unlock()

		if mine != nil {
			if pm, ok := s.model.(features.Pruner); ok && release {
				// The whole network is about to open: the pruned one goes first, so that
				// their weights are never held twice (a pruned run still in flight keeps its
				// network until it ends).
				mine.err = pm.ReleasePruned()
			}
			if mine.err == nil {
				mine.res, mine.err = s.run(ctx, missing, t, cond, layers)
			}
			s.mu.Lock()
			for _, img := range missing {
				delete(s.inflight, extractKey{img.Hash, t, cond, layerKey(layers)})
			}
			s.mu.Unlock()
			close(mine.done)
			if mine.err != nil {
				return nil, mine.err
			}
			waits[mine] = true
		}
		for c := range waits {
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// Take results straight from the runs: under a tight cache budget they may already
		// have been evicted again.
		done := true
		for i, img := range imgs {
			if have[i] {
				continue
			}
			for c := range waits {
				if e, ok := c.res[img.Hash]; ok && c.err == nil {
					out[i], have[i] = e, true
					break
				}
			}
			done = done && have[i]
		}
		if done {
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A run we waited for failed (perhaps its caller was cancelled): try again ourselves.
	}
}

func (s *Session) run(ctx context.Context, imgs []*api.Image, t int, cond features.Conditioning, layers []int) (map[string]*kept, error) {
	what := s.info.Name
	if s.info.Timesteps {
		what = fmt.Sprintf("%s t=%d", what, t)
	}
	if !cond.IsZero() {
		what += ", " + cond.String()
	}
	s.progress(api.Progress{What: what, Done: 0, Total: 1})
	defer s.progress(api.Progress{What: what, Done: 1, Total: 1})
	pix := make([]image.Image, len(imgs))
	for i, img := range imgs {
		pix[i] = img.Pixels
	}
	var ex []features.Extraction
	var err error
	if pm, ok := s.model.(features.Pruner); ok && layers != nil {
		ex, err = pm.ExtractLayers(ctx, pix, t, s.opts.Spec.Seed, cond, layers)
	} else if cm, ok := s.model.(features.Conditioned); ok && !cond.IsZero() {
		ex, err = cm.ExtractConditioned(ctx, pix, t, s.opts.Spec.Seed, cond)
	} else {
		ex, err = s.model.Extract(ctx, pix, t, s.opts.Spec.Seed)
	}
	if err != nil {
		return nil, err
	}
	res := make(map[string]*kept, len(imgs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, img := range imgs {
		res[img.Hash] = s.cache.put(extractKey{img.Hash, t, cond, layerKey(layers)}, ex[i])
	}
	return res, nil
}

func (s *Session) progress(p api.Progress) {
	if s.opts.OnProgress != nil {
		s.opts.OnProgress(p)
	}
}

// compare returns the comparison of a and b at one layer, computing it once per session. Each
// image's self term at the layer (attn(Q, K, V), whatever its partner) is kept with its
// features, so a comparison with an image met before computes only what is new: the two cross
// terms once both images have been compared with anything.
func (s *Session) compare(ctx context.Context, a, b *api.Image, t, layer int, needs []int, cond features.Conditioning) (aas.Comparison, features.Extraction, features.Extraction, bool, error) {
	if needs == nil {
		needs = []int{layer}
	}
	ex, err := s.extract(ctx, []*api.Image{a, b}, t, cond, s.prunedTo(needs))
	if err != nil {
		return aas.Comparison{}, features.Extraction{}, features.Extraction{}, false, err
	}
	ka, kb := ex[0], ex[1]
	k := compareKey{a.Hash, b.Hash, t, layer, cond}
	s.mu.Lock()
	c, ok := s.compared[k]
	if !ok {
		// (B, A) after (A, B), as a triplet benchmark's anchor and positive come in both
		// orders: the same comparison seen from the other side, bit for bit.
		if r, found := s.compared[compareKey{b.Hash, a.Hash, t, layer, cond}]; found {
			c, ok = r.Swapped(), true
		}
	}
	known := aas.Selves{A: ka.self[layer], B: kb.self[layer]}
	if s.recompute {
		known = aas.Selves{}
	}
	s.mu.Unlock()
	if ok {
		return c, ka.ex, kb.ex, true, nil
	}
	c, selves, err := aas.CompareWith(ctx, s.att, ka.ex.Layers[layer], kb.ex.Layers[layer], known)
	if err != nil {
		return c, ka.ex, kb.ex, false, err
	}
	s.mu.Lock()
	if !s.recompute {
		s.cache.keepSelf(ka, layer, selves.A)
		s.cache.keepSelf(kb, layer, selves.B)
	}
	// Comparisons are small beside features, but a rank over thousands of images would keep
	// them all: start over past a bound.
	if len(s.compared) >= maxCompared {
		clear(s.compared)
	}
	s.compared[k] = c
	s.mu.Unlock()
	return c, ka.ex, kb.ex, false, nil
}

// Score answers one request.
func (s *Session) Score(ctx context.Context, req api.Request) (api.Result, error) {
	return s.score(ctx, req, nil)
}

// score is Score for work that needs the layers needs besides req.Layer (a sweep's), so that
// one pruned run (Options.Prune) serves them all; nil: req.Layer alone.
func (s *Session) score(ctx context.Context, req api.Request, needs []int) (api.Result, error) {
	start := time.Now()
	if err := s.acquire(); err != nil {
		return api.Result{Req: req}, err
	}
	defer s.release()
	if err := s.info.CheckLayer(req.Layer); err != nil {
		return api.Result{Req: req}, err
	}
	m, err := api.ParseMetric(string(req.Metric))
	if err != nil {
		return api.Result{Req: req}, err
	}
	req.Metric = m
	t := s.effectiveT(req.T)
	cachedBefore := s.Cached(req.A, req.B, t)
	c, exA, exB, _, err := s.compare(ctx, req.A, req.B, t, req.Layer, needs, s.Conditioning())
	if err != nil {
		return api.Result{Req: req}, err
	}
	layer := s.layers[req.Layer]
	r := api.Result{
		Req: req, AtoB: c.AtoB, BtoA: c.BtoA, Metric: req.Metric,
		HigherIsBetter: req.Metric.HigherIsMoreSimilar(),
		FeatureCosine:  c.FeatureCosine, MSE: c.MSE(), Global: math.NaN(),
		MapA: aas.SpatialMap(layer, exA.Layers[req.Layer], c.MapA), MapB: aas.SpatialMap(layer, exB.Layers[req.Layer], c.MapB),
		Meaningless: s.info.Layers[req.Layer].Meaningless(),
		Cached:      cachedBefore,
		Pruned:      exA.Pruned() || exB.Pruned(),
	}
	switch req.Metric {
	case api.AAS:
		r.Score = c.Score()
	case api.Cosine:
		r.Score, r.AtoB, r.BtoA = c.FeatureCosine, c.FeatureCosine, c.FeatureCosine
	case api.MSE:
		r.Score, r.AtoB, r.BtoA = c.MSE(), c.MSEAtoB, c.MSEBtoA
	}
	if exA.Global != nil && exB.Global != nil {
		r.Global = aas.Cosine(exA.Global, exB.Global)
	}
	if req.Token >= 0 {
		fa, fb := exA.Layers[req.Layer], exB.Layers[req.Layer]
		prefix := layer.Prefix
		if fa.GridH > 0 {
			prefix = fa.Prefix
		}
		row, err := aas.AttentionRow(fa, fb, req.Token+prefix)
		if err != nil {
			return r, api.UsageError(err)
		}
		r.AttnRow = aas.SpatialMap(layer, fb, row)
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// LayerScores scores every layer at t with one network run.
func (s *Session) LayerScores(ctx context.Context, a, b *api.Image, t int, m api.Metric) ([]api.LayerScore, error) {
	out := make([]api.LayerScore, len(s.info.Layers))
	every := make([]int, len(s.info.Layers))
	for i := range every {
		every[i] = i
	}
	for i := range s.info.Layers {
		r, err := s.score(ctx, api.Request{A: a, B: b, Layer: i, T: t, Metric: m, Token: -1}, every)
		if err != nil {
			return nil, err
		}
		out[i] = api.LayerScore{Layer: i, T: t, Score: r.Score, Meaningless: r.Meaningless != ""}
	}
	return out, nil
}

// Close frees the model and the runtime; it is idempotent. Calls that begin after it fail
// with ErrClosed; calls already running finish first (Close waits for them), so a run is
// never cut from under its caller. Cancel their contexts to stop them sooner.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for s.refs > 0 {
		s.drained.Wait()
	}
	s.mu.Unlock()
	var attErr error
	if s.ownAtt != nil {
		attErr = s.ownAtt.Close()
	}
	return errors.Join(s.model.Close(), attErr, s.rt.Close())
}

var _ api.Scorer = (*Session)(nil)
