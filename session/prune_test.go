package session

import (
	"context"
	"fmt"
	"image"
	"slices"
	"sync"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features"
)

// pruneModel is a fakeModel that can run cut down to some layers, recording which.
type pruneModel struct {
	*fakeModel
	mu    sync.Mutex
	asked [][]int
}

func (m *pruneModel) ExtractLayers(ctx context.Context, imgs []image.Image, t int, _ int64, _ features.Conditioning, layers []int) ([]features.Extraction, error) {
	m.mu.Lock()
	m.asked = append(m.asked, slices.Clone(layers))
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
