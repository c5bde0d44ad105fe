package session

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/imagefile"
)

// countingAttention counts the attention jobs a session asks for.
type countingAttention struct {
	aas.Attention
	mu   sync.Mutex
	jobs int
}

func (c *countingAttention) Attend(ctx context.Context, s aas.Shape, jobs []aas.Job) ([][]float32, error) {
	c.mu.Lock()
	c.jobs += len(jobs)
	c.mu.Unlock()
	return c.Attention.Attend(ctx, s, jobs)
}

// take returns the jobs counted since the last call.
func (c *countingAttention) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.jobs
	c.jobs = 0
	return n
}

// sameBits reports whether two results carry the same scores and maps, bit for bit.
func sameBits(x, y api.Result) bool {
	f := func(v ...float64) []uint64 {
		out := make([]uint64, len(v))
		for i, x := range v {
			out[i] = math.Float64bits(x)
		}
		return out
	}
	m := func(v []float32) []uint32 {
		out := make([]uint32, len(v))
		for i, x := range v {
			out[i] = math.Float32bits(x)
		}
		return out
	}
	return slices.Equal(f(x.Score, x.AtoB, x.BtoA, x.FeatureCosine, x.MSE), f(y.Score, y.AtoB, y.BtoA, y.FeatureCosine, y.MSE)) &&
		slices.Equal(m(x.MapA.Values), m(y.MapA.Values)) && slices.Equal(m(x.MapB.Values), m(y.MapB.Values))
}

// TestFakeSelfTermsKept: an image's self term at a layer is computed once and kept with its
// features: a pair whose images were both compared before runs only the two cross terms, and
// its scores are the bits a session that had kept nothing computes; a pair compared the other
// way round before computes nothing, with the same bits. The self terms count in
// the cache's bytes and go with Forget.
func TestFakeSelfTermsKept(t *testing.T) {
	att := &countingAttention{Attention: aas.GoAttention{}}
	f := openFake(t, &fakeModel{timesteps: true}, func(o *Options) { o.Attention = att })
	const layer, ts = 0, 101
	before := f.s.Stats().CacheBytes
	score(t, f.s, red, green, layer, ts)
	if n := att.take(); n != 4 {
		t.Fatalf("the first pair ran %d attention jobs, want 4", n)
	}
	self := int64(4 * fakeTokens * fakeDim) // one image's self term at one layer, in bytes
	feat := f.s.Stats().CacheBytes - before - 2*self
	for _, step := range []struct {
		a, b *api.Image
		jobs int
		why  string
	}{
		{red, blue, 3, "red's self term is kept: red's cross term, blue's self and cross terms"},
		{green, blue, 2, "both self terms are kept: the two cross terms"},
		{blue, red, 0, "red against blue seen from the other side: nothing computed"},
		{red, red, 2, "an image with itself: the two cross terms"},
	} {
		got := score(t, f.s, step.a, step.b, layer, ts)
		if n := att.take(); n != step.jobs {
			t.Errorf("%s against %s: %d attention jobs, want %d (%s)", step.a.Hash, step.b.Hash, n, step.jobs, step.why)
		}
		// a session that has kept nothing
		fresh := openFake(t, &fakeModel{timesteps: true}, nil)
		if want := score(t, fresh.s, step.a, step.b, layer, ts); !sameBits(got, want) {
			t.Errorf("%s against %s with kept self terms: %+v; computed afresh: %+v", step.a.Hash, step.b.Hash, got, want)
		}
	}
	if got, want := f.s.Stats().CacheBytes, before+feat*3/2+3*self; got != want {
		t.Errorf("%d bytes cached, want %d: three images' features and their self terms at one layer", got, want)
	}

	// another layer: its own self terms
	score(t, f.s, red, green, 2, ts)
	if n := att.take(); n != 4 {
		t.Errorf("a new layer ran %d attention jobs, want 4", n)
	}
	// Forget drops red's features and self terms; green's stay
	f.s.Forget(ts, red)
	score(t, f.s, red, green, layer, ts)
	if n := att.take(); n != 3 {
		t.Errorf("after Forget(red): %d attention jobs, want 3 (red's self term computed again)", n)
	}
	f.s.Forget(ts, red, green, blue)
	if b := f.s.Stats().CacheBytes; b != before {
		t.Errorf("%d bytes cached after forgetting every image, want %d", b, before)
	}
}

func TestLRUSelfTerms(t *testing.T) {
	ex := features.Extraction{Global: make([]float32, 4)} // 16 bytes
	c := newLRU(100)
	a := c.put(extractKey{hash: "a"}, ex)
	b := c.put(extractKey{hash: "b"}, ex)
	batch := make([]float32, 20) // one attention call's outputs, of which a's self term is a view
	c.keepSelf(a, 0, batch[:5])
	c.keepSelf(a, 0, make([]float32, 5)) // already kept: not counted twice
	if batch[0] = 1; a.self[0][0] != 0 {
		t.Error("the kept self term is a view of the attention's output: it holds the whole batch")
	}
	if c.bytes != 16+16+20 || a.bytes() != 36 {
		t.Errorf("%d bytes (a: %d), want 52 (36)", c.bytes, a.bytes())
	}
	// growing b past the budget makes b the most recent and evicts a
	c.keepSelf(b, 1, make([]float32, 15))
	if _, ok := c.peek(a.key); ok || c.bytes != 16+60 {
		t.Errorf("over budget: a kept %v, %d bytes; want a evicted, 76", ok, c.bytes)
	}
	// a self term for features no longer cached is not kept
	c.keepSelf(a, 1, make([]float32, 5))
	if c.bytes != 76 || len(a.self) != 1 {
		t.Errorf("a self term of evicted features: %d bytes, %d self terms", c.bytes, len(a.self))
	}
	c.removeIf(func(extractKey) bool { return true })
	if c.bytes != 0 || c.order.Len() != 0 {
		t.Errorf("emptied: %d bytes, %d entries", c.bytes, c.order.Len())
	}
}

// TestSelfTermsKeptBuiltin is TestFakeSelfTermsKept on the built-in model at every layer, with
// ONNX Runtime's attention (Go's below its threshold, the coarse layer): a second pair sharing
// an image computes no new self term, and every score is a fresh session's, bit for bit.
func TestSelfTermsKeptBuiltin(t *testing.T) {
	rt := enginetest.Runtime(t)
	ra := aas.NewRuntimeAttention(rt)
	defer ra.Close()
	att := &countingAttention{Attention: ra}
	open := func(a aas.Attention) *Session {
		s, err := Open(context.Background(), Options{Spec: testSpec(func(s *api.Spec) { s.Size = 128 }), Families: families.All(), Attention: a})
		enginetest.Check(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open(att)
	a, b, c := load(t, s, "brick.png"), load(t, s, "grass.png"), load(t, s, "gravel.png")
	layers := len(s.Info().Layers)
	for _, step := range []struct {
		a, b *api.Image
		jobs int
	}{{a, b, 4}, {a, c, 3}, {b, c, 2}} {
		fresh := open(nil) // has kept nothing: each layer's first comparison computes all four terms
		for l := range layers {
			got, err := s.Score(t.Context(), api.Request{A: step.a, B: step.b, Layer: l, T: 301, Token: -1})
			if err != nil {
				t.Fatal(err)
			}
			if n := att.take(); n != step.jobs {
				t.Errorf("%s against %s, layer %d: %d attention jobs, want %d", step.a.Path, step.b.Path, l, n, step.jobs)
			}
			want, err := fresh.Score(t.Context(), api.Request{A: step.a, B: step.b, Layer: l, T: 301, Token: -1})
			if err != nil {
				t.Fatal(err)
			}
			if !sameBits(got, want) {
				t.Errorf("%s against %s, layer %d: %v with kept self terms, %v computed afresh", step.a.Path, step.b.Path, l, got.Score, want.Score)
			}
		}
	}
}

// benchSession opens the built-in model at 256 px (its default size) for the benchmarks below;
// recompute makes it the reference that computes every self term anew.
func benchSession(b *testing.B, recompute bool) *Session {
	s, err := Open(context.Background(), Options{Spec: testSpec(func(s *api.Spec) { s.Size = 256 }), Families: families.All()})
	enginetest.Check(b, err)
	b.Cleanup(func() { s.Close() })
	s.recompute = recompute
	return s
}

var keptOrAfresh = []struct {
	name      string
	recompute bool
}{{"kept", false}, {"afresh", true}}

// BenchmarkRank is `diffsim rank` of one sample against the eight samples at each layer of the
// built-in model: the query's self term is computed once, not once per file. Each loop starts
// from nothing computed, as a new process does (the model stays loaded).
//
//	go test ./session -run '^$' -bench 'Rank$' -count 8 | benchstat -col /selves -
func BenchmarkRank(b *testing.B) {
	files, _, err := imagefile.ImageFiles(filepath.Join("..", "testdata", "samples"))
	if err != nil {
		b.Fatal(err)
	}
	sessions := make([]*Session, len(keptOrAfresh))
	for i, mode := range keptOrAfresh {
		sessions[i] = benchSession(b, mode.recompute)
	}
	info := sessions[0].Info()
	for li, l := range info.Layers {
		for i, mode := range keptOrAfresh {
			s := sessions[i]
			query, err := s.Load(files[0])
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("layer=%s/selves=%s", l.Name, mode.name), func(b *testing.B) {
				for b.Loop() {
					s.mu.Lock()
					s.cache.removeIf(func(extractKey) bool { return true })
					clear(s.compared)
					s.mu.Unlock()
					if _, _, err := s.Rank(b.Context(), query, files, li, info.DefaultT, api.AAS, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkExplorerNextB is the explorer when image B changes and A stays: B runs through the
// network and every layer is scored (the layer bars), A's features and self terms kept from
// before.
//
//	go test ./session -run '^$' -bench 'ExplorerNextB' -count 8 | benchstat -col /selves -
func BenchmarkExplorerNextB(b *testing.B) {
	for _, mode := range keptOrAfresh {
		b.Run("selves="+mode.name, func(b *testing.B) {
			s := benchSession(b, mode.recompute)
			files, _, err := imagefile.ImageFiles(filepath.Join("..", "testdata", "samples"))
			if err != nil {
				b.Fatal(err)
			}
			var imgs []*api.Image
			for _, f := range files {
				img, err := s.Load(f)
				if err != nil {
					b.Fatal(err)
				}
				imgs = append(imgs, img)
			}
			a, t := imgs[0], s.Info().DefaultT
			if _, err := s.LayerScores(b.Context(), a, imgs[1], t, api.AAS); err != nil {
				b.Fatal(err)
			}
			i := 1
			for b.Loop() {
				i = i%(len(imgs)-1) + 1
				bi := imgs[i]
				s.Forget(t, bi) // a B not seen before
				if _, err := s.LayerScores(b.Context(), a, bi, t, api.AAS); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
