package session

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/store"
)

// These tests run the session on a fake runtime and a fake model: no cgo, no ONNX Runtime. They
// pin down what the session itself owns: the feature cache, shared runs, cancellation, Close,
// the registry of families.

// fakeRuntime stands in for *engine.Runtime.
type fakeRuntime struct {
	closes atomic.Int32
	loads  atomic.Int32
}

func (r *fakeRuntime) Load([]byte, engine.SessionOptions) (engine.Runner, error) {
	r.loads.Add(1)
	return nil, errors.New("fake runtime: no graphs")
}
func (r *fakeRuntime) Device() engine.Device { return engine.Device{Kind: "cpu", Notice: "fake"} }
func (r *fakeRuntime) Close() error          { r.closes.Add(1); return nil }

// fakeModel computes small deterministic features from an image's colour, the timestep and the
// layer. Extract can be held at a gate, made to fail, and is counted.
type fakeModel struct {
	timesteps bool
	gate      chan struct{} // when set, Extract waits for it (or for ctx)
	entered   chan struct{} // when set, Extract signals here on entry
	fail      atomic.Int32  // Extract fails this many more times

	calls    atomic.Int32
	running  atomic.Int32
	closes   atomic.Int32
	closedIn atomic.Int32 // runs in flight when Close was called
}

const fakeTokens, fakeDim = 4, 4

func fakeLayers() []features.Layer {
	mk := func(i int, name, short string, kind attention.Kind, imageKV bool) features.Layer {
		return features.Layer{
			Layer:  attention.Layer{Index: i, Name: name, Short: short, Kind: kind, Heads: 1, KVHeads: 1, HeadDim: fakeDim, Scale: 0.5, ImageKV: imageKV},
			Tokens: fakeTokens, GridH: 2, GridW: 2,
		}
	}
	return []features.Layer{
		mk(0, "down_blocks.0.attentions.1.transformer_blocks.0.attn1", "Down0", attention.Self, true),
		mk(1, "down_blocks.0.attentions.1.transformer_blocks.0.attn2", "Down0.x", attention.Cross, false),
		mk(2, "up_blocks.1.attentions.2.transformer_blocks.0.attn1", "Up0", attention.Self, true),
	}
}

func (m *fakeModel) Info() features.ModelInfo {
	return features.ModelInfo{Name: "fake", Family: "fake", Layers: fakeLayers(), DefaultLayer: 2, Timesteps: m.timesteps, DefaultT: 101, Size: 64}
}

func (m *fakeModel) Extract(ctx context.Context, imgs []image.Image, t int, seed int64) ([]features.Extraction, error) {
	return m.extract(ctx, imgs, t, 0)
}

func (m *fakeModel) extract(ctx context.Context, imgs []image.Image, t int, shift float64) ([]features.Extraction, error) {
	m.calls.Add(1)
	m.running.Add(1)
	defer m.running.Add(-1)
	if m.entered != nil {
		m.entered <- struct{}{}
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if m.fail.Load() > 0 {
		m.fail.Add(-1)
		return nil, errors.New("fake model: run failed")
	}
	out := make([]features.Extraction, len(imgs))
	for i, img := range imgs {
		r, g, b, _ := img.At(0, 0).RGBA()
		c := float64(r)/65535 + 2*float64(g)/65535 + 3*float64(b)/65535
		for l := range fakeLayers() {
			f := features.Features{Tokens: fakeTokens, Heads: 1, HeadDim: fakeDim, Scale: 0.5, GridH: 2, GridW: 2}
			for k := range fakeTokens * fakeDim {
				x := float64(k)*0.7 + c*3 + float64(l) + float64(t)/500 + shift
				f.Q = append(f.Q, float32(math.Sin(x)))
				f.K = append(f.K, float32(math.Cos(x*1.3)))
				f.V = append(f.V, float32(math.Sin(x*0.9+1)))
			}
			out[i].Layers = append(out[i].Layers, f)
		}
	}
	return out, nil
}

func (m *fakeModel) Close() error {
	m.closes.Add(1)
	m.closedIn.Store(m.running.Load())
	return nil
}

// condModel is a fakeModel whose features depend on a prompt, as the diffusion family's do.
type condModel struct {
	*fakeModel
	mu       sync.Mutex
	runs     map[features.Conditioning]int
	prepared int
}

func (m *condModel) Prepare(_ context.Context, c features.Conditioning) error {
	if c.Prompt == "refused" {
		return errors.New("no tokenizer for this prompt")
	}
	m.mu.Lock()
	m.prepared++
	m.mu.Unlock()
	return nil
}

func (m *condModel) ExtractConditioned(ctx context.Context, imgs []image.Image, t int, seed int64, c features.Conditioning) ([]features.Extraction, error) {
	m.mu.Lock()
	m.runs[c]++
	m.mu.Unlock()
	shift := float64(len(c.Prompt)) * 0.1
	if c.CFG {
		shift += 0.05
	}
	return m.extract(ctx, imgs, t, shift)
}

type fixture struct {
	rt    *fakeRuntime
	model *fakeModel
	s     *Session
}

func openFake(t *testing.T, m *fakeModel, edit func(*Options)) fixture {
	t.Helper()
	f := fixture{rt: &fakeRuntime{}, model: m}
	o := Options{
		Spec:        testSpec(func(s *api.Spec) { s.Seed = 7 }),
		OpenRuntime: func(engine.Options) (Runtime, error) { return f.rt, nil },
		OpenModel:   func(context.Context, Runtime, Options) (features.Model, error) { return m, nil }}
	if edit != nil {
		edit(&o)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.s = s
	return f
}

func fakeImage(name string, c color.RGBA) *api.Image {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for y := range 2 {
		for x := range 2 {
			img.SetRGBA(x, y, c)
		}
	}
	return &api.Image{Path: name + ".png", Hash: name, W: 2, H: 2, Pixels: img}
}

var (
	red   = fakeImage("red", color.RGBA{200, 20, 20, 255})
	green = fakeImage("green", color.RGBA{20, 200, 20, 255})
	blue  = fakeImage("blue", color.RGBA{20, 20, 200, 255})
	grey  = fakeImage("grey", color.RGBA{120, 120, 120, 255})
)

func score(t *testing.T, s *Session, a, b *api.Image, layer, ts int) api.Result {
	t.Helper()
	r, err := s.Score(context.Background(), api.Request{A: a, B: b, Layer: layer, T: ts, Token: -1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFakeOpenFillsInfo(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: true}, nil)
	info := f.s.Info()
	if info.Name != "fake" || info.Device != "cpu" || info.Notice != "fake" || info.Seed != 7 || len(info.Layers) != 3 {
		t.Errorf("info %+v: want the model's, with device cpu, notice and seed 7", info)
	}
	if st := f.s.Stats(); st.CacheBudget != DefaultCacheBytes || st.Forwards != 0 {
		t.Errorf("stats %+v: want the default budget and no forwards", st)
	}
}

func TestFakeOneForwardPerTimestep(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: true}, nil)
	steps := []struct {
		layer, t int
		cached   bool
		forwards int
	}{
		{0, 101, false, 1},
		{2, 101, true, 1}, // another layer: no network run
		{0, 501, false, 2},
		{0, 101, true, 2}, // back to a seen timestep
		{1, 501, true, 2},
	}
	for i, st := range steps {
		r := score(t, f.s, red, green, st.layer, st.t)
		if r.Cached != st.cached || f.s.Stats().Forwards != st.forwards {
			t.Errorf("step %d (layer %d, t %d): cached %v, %d forwards; want %v, %d", i, st.layer, st.t, r.Cached, f.s.Stats().Forwards, st.cached, st.forwards)
		}
	}
	if got := f.model.calls.Load(); got != 2 {
		t.Errorf("the model ran %d times, want 2", got)
	}
	if st := f.s.Stats(); st.Extracted != 4 || st.CacheHits == 0 {
		t.Errorf("stats %+v: want 4 images extracted and cache hits", st)
	}
}

// TestFakeScoreMatchesCompare: each metric is the features package's maths on the model's
// features, A and B from one batch.
func TestFakeScoreMatchesCompare(t *testing.T) {
	m := &fakeModel{timesteps: true}
	f := openFake(t, m, nil)
	ex, err := m.Extract(context.Background(), []image.Image{red.Pixels, blue.Pixels}, 301, 7)
	if err != nil {
		t.Fatal(err)
	}
	c, err := aas.Compare(context.Background(), aas.GoAttention{}, ex[0].Layers[0], ex[1].Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		metric          api.Metric
		score, atob     float64
		higherIsSimilar bool
	}{
		{api.AAS, c.Score(), c.AtoB, true},
		{api.Cosine, c.FeatureCosine, c.FeatureCosine, true},
		{api.MSE, c.MSE(), c.MSEAtoB, false},
	} {
		r, err := f.s.Score(context.Background(), api.Request{A: red, B: blue, Layer: 0, T: 301, Metric: tc.metric, Token: -1})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.Score-tc.score) > 1e-9 || math.Abs(r.AtoB-tc.atob) > 1e-9 || r.HigherIsBetter != tc.higherIsSimilar {
			t.Errorf("%s: score %.9f a→b %.9f higher %v; want %.9f %.9f %v", tc.metric, r.Score, r.AtoB, r.HigherIsBetter, tc.score, tc.atob, tc.higherIsSimilar)
		}
	}
	if same := score(t, f.s, red, red, 0, 301); math.Abs(same.Score-1) > 1e-6 {
		t.Errorf("score(A, A) = %.9f, want 1", same.Score)
	}
	if r := score(t, f.s, red, blue, 0, 301); r.MapA.W != 2 || r.MapA.H != 2 || len(r.MapA.Values) != 4 {
		t.Errorf("map %dx%d with %d values, want 2x2", r.MapA.W, r.MapA.H, len(r.MapA.Values))
	}
}

func TestFakeBadRequests(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: true}, nil)
	for _, tc := range []struct {
		name string
		req  api.Request
	}{
		{"negative layer", api.Request{A: red, B: blue, Layer: -1, T: 1, Token: -1}},
		{"layer past the end", api.Request{A: red, B: blue, Layer: 3, T: 1, Token: -1}},
		{"negative t", api.Request{A: red, B: blue, Layer: 0, T: -1, Token: -1}},
		{"t past 999", api.Request{A: red, B: blue, Layer: 0, T: 1000, Token: -1}},
		{"unknown metric", api.Request{A: red, B: blue, Layer: 0, T: 1, Metric: "l1", Token: -1}},
		{"token past the grid", api.Request{A: red, B: blue, Layer: 0, T: 1, Token: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.s.Score(context.Background(), tc.req); !errors.Is(err, api.ErrUsage) {
				t.Errorf("err = %v, want a usage error", err)
			}
		})
	}
}

func TestFakeAttentionRow(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: true}, nil)
	r, err := f.s.Score(context.Background(), api.Request{A: red, B: blue, Layer: 0, T: 1, Token: 3})
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range r.AttnRow.Values {
		sum += float64(v)
	}
	if r.AttnRow.W != 2 || r.AttnRow.H != 2 || math.Abs(sum-1) > 1e-5 {
		t.Errorf("attention row %dx%d summing to %.6f, want 2x2 summing to 1", r.AttnRow.W, r.AttnRow.H, sum)
	}
}

func TestFakeTextCrossAttentionIsMeaningless(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: true}, nil)
	scores, err := f.s.LayerScores(context.Background(), red, blue, 101, api.AAS)
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != 3 || scores[0].Meaningless || !scores[1].Meaningless || scores[2].Meaningless {
		t.Errorf("layer scores %+v: want 3, only the text cross-attention meaningless", scores)
	}
	if f.s.Stats().Forwards != 1 {
		t.Errorf("%d forwards for every layer, want 1", f.s.Stats().Forwards)
	}
}

// TestFakeNoTimesteps: for a model without timesteps every t is the same run.
func TestFakeNoTimesteps(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: false}, nil)
	a := score(t, f.s, red, blue, 0, 5)
	b := score(t, f.s, red, blue, 0, 900)
	if !b.Cached || a.Score != b.Score || f.s.Stats().Forwards != 1 {
		t.Errorf("t=900 after t=5: cached %v, scores %.6f %.6f, %d forwards; want one run", b.Cached, a.Score, b.Score, f.s.Stats().Forwards)
	}
}

func TestFakeCacheEviction(t *testing.T) {
	m := &fakeModel{timesteps: true}
	ex, _ := m.Extract(context.Background(), []image.Image{red.Pixels}, 1, 0)
	one := ex[0].Bytes() + 4*fakeTokens*fakeDim // its features and its self term at the layer scored
	for _, tc := range []struct {
		name       string
		budget     int64
		rerun      bool
		maxEntries int64
	}{
		{"room for all", 100 * one, false, 4},
		{"room for two images", 2 * one, true, 2},
		{"smaller than one image", 1, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := openFake(t, &fakeModel{timesteps: true}, func(o *Options) { o.CacheBytes = tc.budget })
			score(t, f.s, red, green, 0, 101)
			score(t, f.s, blue, grey, 0, 101)
			if b := f.s.Stats().CacheBytes; b > tc.maxEntries*one || b > max(tc.budget, one) {
				t.Errorf("cache holds %d bytes over a budget of %d (one image is %d)", b, tc.budget, one)
			}
			before := f.s.Stats().Forwards
			r := score(t, f.s, red, green, 0, 101)
			if reran := f.s.Stats().Forwards > before; reran != tc.rerun || r.Cached == tc.rerun {
				t.Errorf("revisiting the first pair: ran again %v, cached %v; want ran again %v", reran, r.Cached, tc.rerun)
			}
		})
	}
}

func TestFakeConcurrentRequestsShareOneRun(t *testing.T) {
	m := &fakeModel{timesteps: true, gate: make(chan struct{}), entered: make(chan struct{}, 16)}
	f := openFake(t, m, nil)
	const n = 8
	results := make([]api.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = f.s.Score(context.Background(), api.Request{A: red, B: green, Layer: i % 3, T: 301, Token: -1})
		})
	}
	<-m.entered
	// Let every caller reach the session before the one run ends.
	time.Sleep(50 * time.Millisecond)
	close(m.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i].Score != results[i%3].Score {
			t.Errorf("caller %d: score %.6f, caller %d had %.6f for the same layer", i, results[i].Score, i%3, results[i%3].Score)
		}
	}
	if got := m.calls.Load(); got != 1 {
		t.Errorf("%d model runs for %d concurrent requests of one pair, want 1", got, n)
	}
}

func TestFakeCancelWhileRunning(t *testing.T) {
	m := &fakeModel{timesteps: true, gate: make(chan struct{}), entered: make(chan struct{}, 4)}
	f := openFake(t, m, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.s.Score(ctx, api.Request{A: red, B: green, Layer: 0, T: 301, Token: -1})
		done <- err
	}()
	<-m.entered
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled score did not return")
	}
	// Nothing half-done is left behind: the next request runs and succeeds.
	close(m.gate)
	r := score(t, f.s, red, green, 0, 301)
	if r.Cached || m.calls.Load() != 2 {
		t.Errorf("after a cancel: cached %v, %d runs; want a fresh run", r.Cached, m.calls.Load())
	}
}

// TestFakeWaiterOutlivesCancelledRun: a caller waiting on someone else's run, whose caller
// gives up, runs the network itself.
func TestFakeWaiterOutlivesCancelledRun(t *testing.T) {
	m := &fakeModel{timesteps: true, gate: make(chan struct{}), entered: make(chan struct{}, 4)}
	f := openFake(t, m, nil)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := f.s.Score(ctx, api.Request{A: red, B: green, Layer: 0, T: 301, Token: -1})
		first <- err
	}()
	<-m.entered
	second := make(chan error, 1)
	go func() {
		_, err := f.s.Score(context.Background(), api.Request{A: red, B: green, Layer: 0, T: 301, Token: -1})
		second <- err
	}()
	time.Sleep(50 * time.Millisecond) // the second caller waits on the first run
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	<-m.entered // the second caller's own run
	close(m.gate)
	if err := <-second; err != nil {
		t.Fatalf("second caller: %v", err)
	}
}

func TestFakeFailedRunIsNotCached(t *testing.T) {
	m := &fakeModel{timesteps: true}
	m.fail.Store(1)
	f := openFake(t, m, nil)
	if _, err := f.s.Score(context.Background(), api.Request{A: red, B: green, Layer: 0, T: 301, Token: -1}); err == nil || !strings.Contains(err.Error(), "run failed") {
		t.Fatalf("err = %v, want the model's failure", err)
	}
	if r := score(t, f.s, red, green, 0, 301); r.Cached {
		t.Error("a failed run left something cached")
	}
}

// TestFakeCloseDrainsRunsInFlight: Close waits for a run in flight, refuses new calls at once,
// and frees the model only when nothing uses it.
func TestFakeCloseDrainsRunsInFlight(t *testing.T) {
	m := &fakeModel{timesteps: true, gate: make(chan struct{}), entered: make(chan struct{}, 4)}
	f := openFake(t, m, nil)
	scored := make(chan error, 1)
	go func() {
		_, err := f.s.Score(context.Background(), api.Request{A: red, B: green, Layer: 0, T: 301, Token: -1})
		scored <- err
	}()
	<-m.entered
	closed := make(chan error, 1)
	go func() { closed <- f.s.Close() }()
	// Close has begun once new calls are refused.
	deadline := time.Now().Add(5 * time.Second)
	for {
		// SetConditioning to the zero value takes a reference without running the model.
		err := f.s.SetConditioning(context.Background(), features.Conditioning{})
		if errors.Is(err, ErrClosed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls after Close began: %v, want ErrClosed", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := f.s.Score(context.Background(), api.Request{A: blue, B: grey, Layer: 0, T: 1, Token: -1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Score while closing: %v, want ErrClosed", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a run was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	if m.closes.Load() != 0 || f.rt.closes.Load() != 0 {
		t.Fatal("the model or the runtime was freed under a run")
	}
	close(m.gate)
	if err := <-scored; err != nil {
		t.Errorf("the run in flight: %v, want it to finish", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if m.closes.Load() != 1 || f.rt.closes.Load() != 1 || m.closedIn.Load() != 0 {
		t.Errorf("model closed %d times (%d runs in flight then), runtime %d times; want once each, with none running", m.closes.Load(), m.closedIn.Load(), f.rt.closes.Load())
	}
}

func TestFakeCallsAfterClose(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: true}, nil)
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"Score":           func() error { _, err := f.s.Score(ctx, api.Request{A: red, B: green, Token: -1}); return err },
		"LayerScores":     func() error { _, err := f.s.LayerScores(ctx, red, green, 1, api.AAS); return err },
		"Prefetch":        func() error { return f.s.Prefetch(ctx, 1, red, green) },
		"SetConditioning": func() error { return f.s.SetConditioning(ctx, features.Conditioning{}) },
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if f.model.closes.Load() != 1 || f.rt.closes.Load() != 1 {
		t.Errorf("model closed %d times, runtime %d; want once each", f.model.closes.Load(), f.rt.closes.Load())
	}
}

func TestFakeOpenUndoesOnFailure(t *testing.T) {
	for _, tc := range []struct {
		name        string
		model       features.Model
		modelErr    error
		cond        features.Conditioning
		usage       bool
		modelClosed int32
	}{
		{"model fails to open", nil, errors.New("no such model"), features.Conditioning{}, false, 0},
		{"prompt for a model without text", &fakeModel{}, nil, features.Conditioning{Prompt: "a cat"}, true, 1},
		{"prompt refused", &condModel{fakeModel: &fakeModel{}, runs: map[features.Conditioning]int{}}, nil, features.Conditioning{Prompt: "refused"}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &fakeRuntime{}
			_, err := Open(context.Background(), Options{
				Spec:        testSpec(func(s *api.Spec) { s.Prompt = tc.cond.Prompt; s.CFG = tc.cond.CFG }),
				OpenRuntime: func(engine.Options) (Runtime, error) { return rt, nil },
				OpenModel: func(context.Context, Runtime, Options) (features.Model, error) {
					if tc.modelErr != nil {
						return nil, tc.modelErr
					}
					return tc.model, nil
				}})
			if err == nil || errors.Is(err, api.ErrUsage) != tc.usage {
				t.Errorf("err = %v, want an error (usage: %v)", err, tc.usage)
			}
			if rt.closes.Load() != 1 {
				t.Errorf("runtime closed %d times, want 1", rt.closes.Load())
			}
			var closes int32
			switch m := tc.model.(type) {
			case *fakeModel:
				closes = m.closes.Load()
			case *condModel:
				closes = m.closes.Load()
			}
			if closes != tc.modelClosed {
				t.Errorf("model closed %d times, want %d", closes, tc.modelClosed)
			}
		})
	}
}

func TestFakeRuntimeFailure(t *testing.T) {
	opened := false
	_, err := Open(context.Background(), Options{
		OpenRuntime: func(engine.Options) (Runtime, error) { return nil, engine.ErrNoLibrary },
		OpenModel: func(context.Context, Runtime, Options) (features.Model, error) {
			opened = true
			return &fakeModel{}, nil
		},
	})
	if !errors.Is(err, engine.ErrNoLibrary) || opened {
		t.Errorf("err = %v, model opened %v; want ErrNoLibrary and no model", err, opened)
	}
}

// TestFakeConditioningKey: features are cached per conditioning; a prompt the model refuses
// leaves the setting as it was.
func TestFakeConditioningKey(t *testing.T) {
	cm := &condModel{fakeModel: &fakeModel{timesteps: true}, runs: map[features.Conditioning]int{}}
	cat := features.Conditioning{Prompt: "a cat", CFG: true}
	rt := &fakeRuntime{}
	s, err := Open(context.Background(), Options{
		Spec:        testSpec(func(s *api.Spec) { s.Prompt = cat.Prompt; s.CFG = cat.CFG }),
		OpenRuntime: func(engine.Options) (Runtime, error) { return rt, nil },
		OpenModel:   func(context.Context, Runtime, Options) (features.Model, error) { return cm, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := score(t, s, red, green, 0, 101)
	dog := features.Conditioning{Prompt: "a dog"}
	if err := s.SetConditioning(context.Background(), dog); err != nil {
		t.Fatal(err)
	}
	other := score(t, s, red, green, 0, 101)
	if other.Cached || other.Score == first.Score {
		t.Errorf("another prompt: cached %v, score %.6f (first %.6f); want a new run and another score", other.Cached, other.Score, first.Score)
	}
	if err := s.SetConditioning(context.Background(), features.Conditioning{Prompt: "refused"}); !errors.Is(err, api.ErrUsage) || s.Conditioning() != dog {
		t.Errorf("a refused prompt: err %v, setting %v; want a usage error and %v kept", err, s.Conditioning(), dog)
	}
	if err := s.SetConditioning(context.Background(), cat); err != nil {
		t.Fatal(err)
	}
	back := score(t, s, red, green, 0, 101)
	if !back.Cached || back.Score != first.Score || cm.runs[cat] != 1 || cm.runs[dog] != 1 {
		t.Errorf("back to the first prompt: cached %v, score %.6f (first %.6f), runs %v", back.Cached, back.Score, first.Score, cm.runs)
	}
}

func TestFakeProgress(t *testing.T) {
	var mu sync.Mutex
	var got []api.Progress
	f := openFake(t, &fakeModel{timesteps: true}, func(o *Options) {
		o.OnProgress = func(p api.Progress) { mu.Lock(); got = append(got, p); mu.Unlock() }
	})
	score(t, f.s, red, green, 0, 401)
	score(t, f.s, red, green, 1, 401)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Done != 0 || got[1].Done != 1 || got[0].What != "fake t=401" {
		t.Errorf("progress %+v: want start and end of one run of \"fake t=401\"", got)
	}
}

func TestFakePrefetchBatches(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: true}, nil)
	if err := f.s.Prefetch(context.Background(), 201, red, green, blue, red); err != nil {
		t.Fatal(err)
	}
	if st := f.s.Stats(); st.Forwards != 1 || st.Extracted != 3 {
		t.Errorf("stats %+v: want one run of three distinct images", st)
	}
	if !f.s.Cached(red, blue, 201) || f.s.Cached(red, grey, 201) || f.s.Cached(red, blue, 202) {
		t.Error("Cached disagrees with what was prefetched")
	}
}

func TestFakeResolveLayer(t *testing.T) {
	f := openFake(t, &fakeModel{timesteps: true}, nil)
	for _, tc := range []struct {
		arg  string
		want int // -1: a usage error
	}{
		{"", 2},
		{"0", 0},
		{"2", 2},
		{"3", -1},
		{"-1", -1},
		{"up_blocks.1.attentions.2.transformer_blocks.0.attn1", 2},
		{"down0", 0},
		{"Down0.x", 1},
		{"attn2", 1},
		{"down_blocks.0", -1}, // two layers start so
		{"nowhere", -1},
	} {
		got, err := f.s.Info().ResolveLayer(tc.arg)
		switch {
		case tc.want < 0 && !errors.Is(err, api.ErrUsage):
			t.Errorf("ResolveLayer(%q) = %d, %v; want a usage error", tc.arg, got, err)
		case tc.want >= 0 && (err != nil || got != tc.want):
			t.Errorf("ResolveLayer(%q) = %d, %v; want %d", tc.arg, got, err, tc.want)
		case tc.want < 0 && !strings.Contains(err.Error(), "(layers: 0 Down0 down_blocks"):
			// An index out of range lists the layers, as a name that matches none does.
			t.Errorf("ResolveLayer(%q): %v; want the layers listed with their indexes", tc.arg, err)
		}
	}
}

// fakeFamily records what the registry handed it.
type fakeFamily struct {
	kind     store.Kind
	model    features.Model
	err      error
	src      features.Source
	opts     features.OpenOptions
	describe features.Description
}

func (f *fakeFamily) Kind() store.Kind { return f.kind }
func (f *fakeFamily) Describe(src features.Source, o features.OpenOptions) (features.Description, error) {
	f.src, f.opts = src, o
	return f.describe, f.err
}
func (f *fakeFamily) Open(_ context.Context, _ features.Loader, src features.Source, o features.OpenOptions) (features.Model, error) {
	f.src, f.opts = src, o
	return f.model, f.err
}

func TestOpenThroughTheRegistry(t *testing.T) {
	fam := &fakeFamily{kind: store.KindBuiltin, model: &fakeModel{timesteps: true}}
	other := &fakeFamily{kind: store.KindDiffusion, err: errors.New("the wrong family was asked")}
	rt := &fakeRuntime{}
	s, err := Open(context.Background(), Options{
		Spec: testSpec(func(s *api.Spec) {
			s.Size = 128
			s.IPAdapter = "a.safetensors"
			s.ImageEncoder = "e.onnx"
			s.IPScale = 0.3
		}),
		Families:    features.Families{other, fam},
		OpenRuntime: func(engine.Options) (Runtime, error) { return rt, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := features.OpenOptions{Size: 128, IPAdapter: features.AdapterOptions{Weights: "a.safetensors", ImageEncoder: "e.onnx", Scale: 0.3}}
	if fam.src.Kind != store.KindBuiltin || fam.src.Name != "builtin" || fam.opts != want {
		t.Errorf("the family got %+v, %+v; want the built-in source and %+v", fam.src, fam.opts, want)
	}
	if s.Info().Name != "fake" {
		t.Errorf("session holds %q, want the family's model", s.Info().Name)
	}
}

func TestOpenRegistryErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		model    string
		families features.Families
		usage    bool
		want     string
	}{
		{"no families", "builtin", nil, true, "no model families"},
		{"no family for the kind", "builtin", features.Families{&fakeFamily{kind: store.KindViT}}, true, "vit"},
		{"no such model", "/nowhere/at/all.onnx", features.Families{&fakeFamily{kind: store.KindGeneric}}, true, "nowhere"},
		{"family fails", "builtin", features.Families{&fakeFamily{kind: store.KindBuiltin, err: errors.New("bad graph")}}, true, "bad graph"},
		{"cancelled", "builtin", features.Families{&fakeFamily{kind: store.KindBuiltin, err: fmt.Errorf("loading: %w", context.Canceled)}}, false, "canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &fakeRuntime{}
			_, err := Open(context.Background(), Options{
				Spec: testSpec(func(s *api.Spec) { s.Model = tc.model }), Families: tc.families,
				OpenRuntime: func(engine.Options) (Runtime, error) { return rt, nil }})
			if err == nil || errors.Is(err, api.ErrUsage) != tc.usage || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want one naming %q (usage: %v)", err, tc.want, tc.usage)
			}
			if rt.closes.Load() != 1 {
				t.Errorf("runtime closed %d times, want 1", rt.closes.Load())
			}
		})
	}
}

func TestInspectThroughTheRegistry(t *testing.T) {
	d := features.Description{Graph: "(fake)", Size: 96, Layers: fakeLayers()}
	fam := &fakeFamily{kind: store.KindBuiltin, describe: d}
	ins, err := Inspect("builtin", InspectOptions{Size: 96, Families: features.Families{fam}})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Model != "builtin" || ins.Kind != "builtin" || ins.Size != 96 || len(ins.Layers) != 3 || fam.opts.Size != 96 {
		t.Errorf("inspection %+v (family asked at size %d): want the family's description at 96 px", ins, fam.opts.Size)
	}
	fam.err = errors.New("unreadable graph")
	if _, err := Inspect("builtin", InspectOptions{Families: features.Families{fam}}); !errors.Is(err, api.ErrUsage) {
		t.Errorf("a family's failure: %v, want a usage error", err)
	}
}

func TestLRU(t *testing.T) {
	ex := func(n int) features.Extraction { return features.Extraction{Global: make([]float32, n)} }
	k := func(h string) extractKey { return extractKey{hash: h} }
	c := newLRU(40) // ten floats
	c.put(k("a"), ex(4))
	c.put(k("b"), ex(4))
	if _, ok := c.get(k("a")); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put(k("c"), ex(4)) // over budget: b, the least recent, goes
	if _, ok := c.peek(k("b")); ok {
		t.Error("b kept; it was the least recently used")
	}
	if _, ok := c.peek(k("a")); !ok {
		t.Error("a evicted; it was used more recently than b")
	}
	c.put(k("big"), ex(100)) // larger than the budget: kept alone
	if _, ok := c.peek(k("big")); !ok || c.order.Len() != 1 || c.bytes != 400 {
		t.Errorf("an oversized entry: %d entries, %d bytes; want it alone", c.order.Len(), c.bytes)
	}
	c.put(k("big"), ex(2)) // replacing an entry recounts its bytes
	if c.bytes != 8 {
		t.Errorf("%d bytes after replacing, want 8", c.bytes)
	}
}

// testSpec is api.DefaultSpec() changed by set.
func testSpec(set func(*api.Spec)) api.Spec {
	sp := api.DefaultSpec()
	set(&sp)
	return sp
}
