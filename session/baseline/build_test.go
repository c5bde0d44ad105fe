package baseline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features"
)

// fakeScorer scores a pair at a layer and t by a formula of the images' indexes, and
// counts the network runs a session's cache of two images would make.
type fakeScorer struct {
	info   api.ModelInfo
	cached []string // the last two images' features (hash@t), as a chain needs
	runs   int
}

func newFakeScorer(timesteps bool) *fakeScorer {
	return &fakeScorer{info: api.ModelInfo{Name: "fake", Description: "fake", Size: 64, Seed: 7, Timesteps: timesteps,
		Layers: []api.Layer{
			{Index: 0, Name: "self", ImageKV: true},
			{Index: 1, Name: "text", Kind: api.CrossAttention},
		}}}
}

func (f *fakeScorer) Info() api.ModelInfo { return f.info }

func (f *fakeScorer) LayerScores(_ context.Context, a, b *api.Image, t int, m api.Metric) ([]api.LayerScore, error) {
	for _, img := range []*api.Image{a, b} {
		k := fmt.Sprintf("%s@%d", img.Hash, t)
		if !slices.Contains(f.cached, k) {
			f.runs++
			f.cached = append(f.cached, k)
			if len(f.cached) > 2 {
				f.cached = f.cached[1:]
			}
		}
	}
	var ia, ib int
	fmt.Sscan(a.Path, &ia)
	fmt.Sscan(b.Path, &ib)
	s := float64(ia+ib) / 100
	if m == api.MSE {
		s = 1 - s
	}
	return []api.LayerScore{{Layer: 0, T: t, Score: s + float64(t)/1000}, {Layer: 1, T: t, Score: 1, Meaningless: true}}, nil
}

func images(n int, dup map[int]int) func(int) (*api.Image, error) {
	return func(i int) (*api.Image, error) {
		h := fmt.Sprint(i)
		if j, ok := dup[i]; ok {
			h = fmt.Sprint(j)
		}
		return &api.Image{Path: fmt.Sprint(i), Hash: "h" + h}, nil
	}
}

func TestRandomPairsAreDistinctChains(t *testing.T) {
	for _, tc := range []struct{ m, n, want int }{{10, 10, 10}, {10, 25, 25}, {4, 100, 6}, {2, 5, 1}, {1, 5, 0}, {30, 12, 12}} {
		ps := RandomPairs(tc.m, tc.n, 1)
		if len(ps) != tc.want {
			t.Errorf("RandomPairs(%d, %d): %d pairs, want %d", tc.m, tc.n, len(ps), tc.want)
		}
		seen := map[[2]int]bool{}
		shared := 0
		for i, p := range ps {
			k := [2]int{min(p[0], p[1]), max(p[0], p[1])}
			if p[0] == p[1] || seen[k] || p[0] >= tc.m || p[1] >= tc.m {
				t.Errorf("RandomPairs(%d, %d): pair %v repeats or is not two images", tc.m, tc.n, p)
			}
			seen[k] = true
			if i > 0 && (p[0] == ps[i-1][1]) {
				shared++
			}
		}
		// Chains: nearly every pair starts where the one before ended.
		if len(ps) >= 3 && tc.m >= 10 && shared < len(ps)*3/4 {
			t.Errorf("RandomPairs(%d, %d): only %d of %d pairs continue a chain", tc.m, tc.n, shared, len(ps))
		}
	}
	if !slices.Equal(RandomPairs(20, 20, 3), RandomPairs(20, 20, 3)) || slices.Equal(RandomPairs(20, 20, 3), RandomPairs(20, 20, 4)) {
		t.Error("pairs are not a function of the seed")
	}
}

func TestBuild(t *testing.T) {
	f := newFakeScorer(true)
	ts := []int{0, 500}
	pairs := ReferencePairs(6)
	pairs = append(pairs, [2]int{6, 7}) // two copies of one image: skipped
	var progress []int
	b, err := Build(t.Context(), f, 8, images(8, map[int]int{7: 6}), Options{
		Pairs: pairs, Timesteps: ts, Key: "k", Source: "dir", Model: "fake",
		Progress: func(done, total int) { progress = append(progress, done) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.Pairs != 6 || b.Images != 6 || !slices.Equal(b.Timesteps, ts) || b.Size != 64 || b.Seed != 7 {
		t.Errorf("baseline %+v", b)
	}
	// Layer 1 scores nothing (text keys): no cells; layer 0 has every t and metric.
	if len(b.Cells) != len(ts)*len(api.Metrics) {
		t.Errorf("%d cells", len(b.Cells))
	}
	c, ok := b.At(0, 500, "aas")
	// pairs (0,1) … (4,5), (5,0): index sums 1,3,5,7,9,5 → mean 30/6/100 + 0.5
	if !ok || c.N != 6 || math.Abs(c.Mean-(0.05+0.5)) > 1e-12 {
		t.Errorf("cell at t=500: %+v", c)
	}
	if _, ok := b.At(1, 0, "aas"); ok {
		t.Error("a text cross-attention layer got a cell")
	}
	// One network run per image per timestep, plus the cycle's return to the first image.
	if want := len(ts) * (6 + 1); f.runs > want {
		t.Errorf("%d network runs, want at most %d", f.runs, want)
	}
	if len(progress) == 0 || progress[len(progress)-1] != len(ts)*len(pairs) {
		t.Errorf("progress %v", progress)
	}
	// A model without timesteps: one cell per layer and metric, at t = 0.
	b, err = Build(t.Context(), newFakeScorer(false), 4, images(4, nil), Options{Pairs: ReferencePairs(4), Key: "k"})
	if err != nil || !slices.Equal(b.Timesteps, []int{0}) || len(b.Cells) != len(api.Metrics) || !b.NoTimesteps {
		t.Errorf("no timesteps: %+v, %v", b, err)
	}
	if _, ok := b.At(0, 401, "aas"); !ok {
		t.Error("a model without timesteps: the baseline does not serve another t")
	}
	if _, err := Build(t.Context(), f, 2, images(2, map[int]int{1: 0}), Options{Pairs: [][2]int{{0, 1}}, Key: "k"}); err == nil {
		t.Error("a build of copies only succeeded")
	}
	if _, err := Build(t.Context(), f, 2, images(2, nil), Options{Key: "k"}); err == nil {
		t.Error("a build without pairs succeeded")
	}
}

// TestStore: a saved baseline is found by its key and listed; a shipped one is found for
// its key and listed unless one built here replaces it; a broken file is reported.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	b, err := Build(t.Context(), newFakeScorer(true), 4, images(4, nil), Options{Pairs: ReferencePairs(4), Timesteps: []int{0}, Key: "0123456789abcdef", Source: "dir"})
	if err != nil {
		t.Fatal(err)
	}
	path, err := Save(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Find(dir, b.Key)
	if err != nil || got == nil || got.Pairs != 4 {
		t.Errorf("Find: %+v, %v", got, err)
	}
	if got, err := Find(dir, "nothing"); got != nil || err != nil {
		t.Errorf("Find(unknown) = %v, %v", got, err)
	}
	shipped := Shipped()
	if len(shipped) != len(ShippedModels) || shipped[0].Model != "builtin" || shipped[1].Model != "toy-sd" {
		t.Fatalf("shipped baselines: %v", shipped)
	}
	if got, err := Find(dir, shipped[0].Key); got == nil || err != nil {
		t.Errorf("the shipped baseline is not found: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o644)
	es, bad, err := List(dir)
	if err != nil || len(es) != 1+len(ShippedModels) || es[0].Path != path || !es[1].Shipped || len(bad) != 1 {
		t.Errorf("List: %+v, bad %v, %v", es, bad, err)
	}
	if e, err := Lookup(dir, "0123"); err != nil || e.Key != b.Key {
		t.Errorf("Lookup: %+v, %v", e, err)
	}
	if _, err := Lookup(dir, "zz"); err == nil {
		t.Error("Lookup of an unknown key succeeded")
	}
}

// TestKey: the key changes with the model's files and every setting, not with where the
// files are nor when they were touched.
func TestKey(t *testing.T) {
	mk := func(content string) string {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "unet"), 0o755)
		os.WriteFile(filepath.Join(d, "unet", "model.onnx"), []byte(content), 0o644)
		return d
	}
	a, b, c := mk("weights"), mk("weights"), mk("other")
	key := func(s Spec) string {
		k, err := Key(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := Spec{Source: features.Source{Kind: "diffusion", Path: a}, Size: 512, Seed: 1}
	k0 := key(base)
	same := base
	same.Source.Path = b
	if key(same) != k0 {
		t.Error("the same files elsewhere got another key")
	}
	for name, s := range map[string]Spec{
		"content": {Source: features.Source{Kind: "diffusion", Path: c}, Size: 512, Seed: 1},
		"size":    {Source: base.Source, Size: 256, Seed: 1},
		"seed":    {Source: base.Source, Size: 512, Seed: 2},
		"prompt":  {Source: base.Source, Size: 512, Seed: 1, Conditioning: features.Conditioning{Prompt: "a cat"}},
	} {
		if key(s) == k0 {
			t.Errorf("a change of %s kept the key", name)
		}
	}
	bi := key(Spec{Source: features.Source{Kind: "builtin"}, Size: 256, Seed: 2334})
	if bi != Shipped()[0].Key {
		t.Errorf("the built-in model's key %s is not the shipped baseline's %s", bi, Shipped()[0].Key)
	}
}
