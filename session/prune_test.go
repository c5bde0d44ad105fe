package session

import (
	"context"
	"fmt"
	"image"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/families"
)

// pruneModel is a fakeModel that can run cut down to some layers, recording which, and
// logging its runs and releases in order (events).
type pruneModel struct {
	*fakeModel
	mu     sync.Mutex
	asked  [][]int
	events []string
}

func (m *pruneModel) log(e string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

func (m *pruneModel) ReleasePruned() error {
	m.log("release")
	return nil
}

func (m *pruneModel) Extract(ctx context.Context, imgs []image.Image, t int, seed int64) ([]features.Extraction, error) {
	m.log(fmt.Sprintf("whole t=%d", t))
	return m.fakeModel.Extract(ctx, imgs, t, seed)
}

func (m *pruneModel) ExtractLayers(ctx context.Context, imgs []image.Image, t int, _ int64, _ features.Conditioning, layers []int) ([]features.Extraction, error) {
	m.mu.Lock()
	m.asked = append(m.asked, slices.Clone(layers))
	m.events = append(m.events, fmt.Sprintf("pruned %v t=%d", layers, t))
	m.mu.Unlock()
	ex, err := m.extract(ctx, imgs, t, 0)
	for i := range ex {
		for l := range ex[i].Layers {
			if !slices.Contains(layers, l) {
				ex[i].Layers[l] = features.Features{}
			}
		}
	}
	return ex, err
}

// TestPrunedScores: with Prune, a score runs the model cut down to its layer, a sweep over
// some layers to those layers in one run, and features of every layer already in memory are
// used as they are; the scores equal the full runs'. Without Prune nothing is pruned.
func TestPrunedScores(t *testing.T) {
	open := func(prune bool) (*pruneModel, *Session) {
		m := &pruneModel{fakeModel: &fakeModel{timesteps: true}}
		f := openFake(t, m.fakeModel, func(o *Options) {
			o.Prune = prune
			o.OpenModel = func(context.Context, Runtime, Options) (features.Model, error) { return m, nil }
		})
		return m, f.s
	}
	ctx := context.Background()
	full, fs := open(false)
	want := score(t, fs, red, green, 2, 101)
	if len(full.asked) != 0 {
		t.Fatalf("without Prune the model was asked for layers %v", full.asked)
	}

	m, s := open(true)
	if got := score(t, s, red, green, 2, 101); got.Score != want.Score || got.AtoB != want.AtoB {
		t.Errorf("pruned score %v, full %v", got.Score, want.Score)
	}
	if _, err := s.Sweep(ctx, red, green, []int{0, 2}, []int{301}, api.AAS, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LayerScores(ctx, red, green, 501, api.AAS); err != nil {
		t.Fatal(err)
	}
	score(t, s, red, green, 0, 501) // every layer is in memory at t=501: no pruned run
	if got, want := fmt.Sprint(m.asked), "[[2] [0 2]]"; got != want {
		t.Errorf("pruned runs for layers %s, want %s", got, want)
	}
	if n := m.calls.Load(); n != 3 {
		t.Errorf("%d runs, want 3 (score, sweep, every layer)", n)
	}
}

func openPruner(t *testing.T, edit func(*Options)) (*pruneModel, *Session) {
	t.Helper()
	m := &pruneModel{fakeModel: &fakeModel{timesteps: true}}
	f := openFake(t, m.fakeModel, func(o *Options) {
		o.OpenModel = func(context.Context, Runtime, Options) (features.Model, error) { return m, nil }
		if edit != nil {
			edit(o)
		}
	})
	return m, f.s
}

// TestPruneFirst: the explorer's session (PruneFirst) computes its first score on the model
// cut down to the score's layer, and that score equals the whole model's; the layer bars
// then run the whole model, the pruned network closed first; every run after that is whole,
// and the scores of the other layers come from it.
func TestPruneFirst(t *testing.T) {
	ctx := context.Background()
	_, whole := openPruner(t, nil)
	want := score(t, whole, red, green, 2, 101)
	wantBars, err := whole.LayerScores(ctx, red, green, 101, api.AAS)
	if err != nil {
		t.Fatal(err)
	}

	m, s := openPruner(t, func(o *Options) { o.PruneFirst = true })
	got := score(t, s, red, green, 2, 101)
	if got.Score != want.Score || got.AtoB != want.AtoB || got.BtoA != want.BtoA {
		t.Errorf("first score %v (%v, %v) on the pruned model, %v (%v, %v) on the whole", got.Score, got.AtoB, got.BtoA, want.Score, want.AtoB, want.BtoA)
	}
	if !got.Pruned || want.Pruned {
		t.Errorf("Pruned = %v for the first score, %v for the whole model's; want true, false", got.Pruned, want.Pruned)
	}
	if s.Cached(red, green, 101) {
		t.Error("after the pruned run the session says every layer at t=101 is in memory")
	}
	bars, err := s.LayerScores(ctx, red, green, 101, api.AAS)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(bars) != fmt.Sprint(wantBars) {
		t.Errorf("layer bars %v, whole model's %v", bars, wantBars)
	}
	if r := score(t, s, red, green, 0, 101); r.Pruned || !r.Cached {
		t.Errorf("another layer at t=101 after the bars: Pruned %v, Cached %v; want false, true", r.Pruned, r.Cached)
	}
	if r := score(t, s, red, green, 2, 301); r.Pruned {
		t.Error("a score at a new t after the first ran pruned")
	}
	if got, want := strings.Join(m.events, ", "), "pruned [2] t=101, release, whole t=101, whole t=301"; got != want {
		t.Errorf("runs: %s\nwant   %s", got, want)
	}
}

// TestPruneFirstOneNetwork: a layer asked for while the first, pruned run is on its way runs
// the whole model (after releasing the pruned one) rather than opening a second pruned model.
func TestPruneFirstOneNetwork(t *testing.T) {
	m, s := openPruner(t, func(o *Options) { o.PruneFirst = true })
	m.gate, m.entered = make(chan struct{}), make(chan struct{}, 2)
	ctx := context.Background()
	results := make(chan api.Result, 2)
	errs := make(chan error, 2)
	ask := func(layer int) {
		r, err := s.Score(ctx, api.Request{A: red, B: green, Layer: layer, T: 101, Token: -1})
		results <- r
		errs <- err
	}
	go ask(2)
	<-m.entered // the pruned run is in flight
	go ask(0)
	<-m.entered // and the whole one
	close(m.gate)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		<-results
	}
	if got, want := strings.Join(m.events, ", "), "pruned [2] t=101, release, whole t=101"; got != want {
		t.Errorf("runs: %s\nwant   %s", got, want)
	}
}

// TestPruneFirstOnToySD: on a real network (toy-sd, through ONNX Runtime) the explorer's
// first score, from the U-Net cut down to its layer, equals the whole U-Net's, and so do the
// layer bars computed after it; the pruned network is closed before the whole one runs.
func TestPruneFirstOnToySD(t *testing.T) {
	open := func(first bool) *Session {
		s, err := Open(context.Background(), Options{
			Spec:     testSpec(func(s *api.Spec) { s.Model = "toy-sd" }),
			Families: families.All(), PruneFirst: first,
		})
		enginetest.Check(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx := context.Background()
	whole, first := open(false), open(true)
	a, b := load(t, whole, "grass.png"), load(t, whole, "gravel.png")
	layer, ts := whole.Info().DefaultLayer, whole.Info().DefaultT
	req := api.Request{A: a, B: b, Layer: layer, T: ts, Metric: api.AAS, Token: 0}
	want, err := whole.Score(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := first.Score(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Pruned || want.Pruned {
		t.Errorf("Pruned %v on the first score, %v on the whole U-Net's; want true, false", got.Pruned, want.Pruned)
	}
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-6 }
	if !near(got.Score, want.Score) || !near(got.AtoB, want.AtoB) || !near(got.BtoA, want.BtoA) || !near(got.FeatureCosine, want.FeatureCosine) {
		t.Errorf("first score %v (A→B %v, B→A %v), whole U-Net's %v (%v, %v)", got.Score, got.AtoB, got.BtoA, want.Score, want.AtoB, want.BtoA)
	}
	wantBars, err := whole.LayerScores(ctx, a, b, ts, api.AAS)
	if err != nil {
		t.Fatal(err)
	}
	bars, err := first.LayerScores(ctx, a, b, ts, api.AAS)
	if err != nil {
		t.Fatal(err)
	}
	for i := range bars {
		if !near(bars[i].Score, wantBars[i].Score) {
			t.Errorf("layer %d: bar %v after the pruned first score, %v whole", i, bars[i].Score, wantBars[i].Score)
		}
	}
	if n := first.Stats().Forwards; n != 2 {
		t.Errorf("%d forwards, want 2 (the pruned one, then the whole one)", n)
	}
}

// globalModel is a pruneModel whose global embedding needs its whole network, as a vision
// transformer's does.
type globalModel struct{ *pruneModel }

func (m globalModel) Info() features.ModelInfo {
	i := m.pruneModel.Info()
	i.GlobalNeedsAll = true
	return i
}

// TestPruneKeepsTheGlobalEmbedding: a model whose global embedding needs the whole network
// runs whole for a score (its record carries global_cosine) unless the work reports no global
// embedding (NoGlobal: benchmarks), which runs it cut down.
func TestPruneKeepsTheGlobalEmbedding(t *testing.T) {
	for _, noGlobal := range []bool{false, true} {
		m := globalModel{&pruneModel{fakeModel: &fakeModel{timesteps: true}}}
		f := openFake(t, m.fakeModel, func(o *Options) {
			o.Prune, o.NoGlobal = true, noGlobal
			o.OpenModel = func(context.Context, Runtime, Options) (features.Model, error) { return m, nil }
		})
		score(t, f.s, red, green, 2, 101)
		if got, want := len(m.asked), map[bool]int{false: 0, true: 1}[noGlobal]; got != want {
			t.Errorf("NoGlobal %v: %d pruned runs (%v), want %d", noGlobal, got, m.asked, want)
		}
	}
}
