package session

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
)

func openBuiltin(t *testing.T, size int) *Session {
	t.Helper()
	s, err := Open(context.Background(), Options{Spec: testSpec(func(s *api.Spec) { s.Size = size }), Families: families.All()})
	enginetest.Check(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func load(t *testing.T, s *Session, name string) *api.Image {
	t.Helper()
	img, err := s.Load(filepath.Join("..", "testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestOneForwardPerTimestepAndNoneOnRevisit(t *testing.T) {
	s := openBuiltin(t, 128)
	ctx := context.Background()
	a, b := load(t, s, "grass.png"), load(t, s, "gravel.png")
	scores, err := s.LayerScores(ctx, a, b, 101, api.AAS)
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != len(s.Info().Layers) {
		t.Fatalf("%d layer scores for %d layers", len(scores), len(s.Info().Layers))
	}
	if got := s.Stats().Forwards; got != 1 {
		t.Errorf("scoring every layer at one timestep ran %d forwards, want 1 (A and B batched)", got)
	}
	for layer := range s.Info().Layers {
		for _, m := range api.Metrics {
			if _, err := s.Score(ctx, api.Request{A: a, B: b, Layer: layer, T: 101, Metric: m, Token: 0}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := s.Stats().Forwards; got != 1 {
		t.Errorf("switching layers and metrics ran the network again: %d forwards", got)
	}
	if _, err := s.Score(ctx, api.Request{A: a, B: b, Layer: 0, T: 500, Token: -1}); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Forwards; got != 2 {
		t.Errorf("a new timestep: %d forwards, want 2", got)
	}
	r, err := s.Score(ctx, api.Request{A: a, B: b, Layer: 2, T: 101, Token: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Forwards; got != 2 || !r.Cached {
		t.Errorf("revisiting t=101: %d forwards (want 2), cached %v", got, r.Cached)
	}
}

func TestScoreIsSymmetricAndDeterministic(t *testing.T) {
	s := openBuiltin(t, 128)
	ctx := context.Background()
	a, b := load(t, s, "chelsea.png"), load(t, s, "coffee.png")
	ab, err := s.Score(ctx, api.Request{A: a, B: b, Layer: 1, T: 101, Token: -1})
	if err != nil {
		t.Fatal(err)
	}
	ba, err := s.Score(ctx, api.Request{A: b, B: a, Layer: 1, T: 101, Token: -1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(ab.Score-ba.Score) > 1e-12 || ab.AtoB != ba.BtoA {
		t.Errorf("score(A,B) = %v (A→B %v), score(B,A) = %v (B→A %v)", ab.Score, ab.AtoB, ba.Score, ba.BtoA)
	}
	s2 := openBuiltin(t, 128)
	again, err := s2.Score(ctx, api.Request{A: load(t, s2, "chelsea.png"), B: load(t, s2, "coffee.png"), Layer: 1, T: 101, Token: -1})
	if err != nil {
		t.Fatal(err)
	}
	if again.Score != ab.Score || again.MapA.Values[7] != ab.MapA.Values[7] {
		t.Errorf("a fresh session gave %v, the first %v: not bit-identical", again.Score, ab.Score)
	}
	if ab.MapA.W != 16 || ab.MapA.H != 16 {
		t.Errorf("A's token map is %dx%d, want the medium layer's 16x16", ab.MapA.W, ab.MapA.H)
	}
}

func TestConcurrentRequestsShareOneForward(t *testing.T) {
	s := openBuiltin(t, 128)
	a, b := load(t, s, "brick.png"), load(t, s, "grass.png")
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(layer int) {
			defer wg.Done()
			if _, err := s.Score(context.Background(), api.Request{A: a, B: b, Layer: layer % 3, T: 300, Token: -1}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if got := s.Stats().Forwards; got != 1 {
		t.Errorf("6 concurrent requests at one timestep ran %d forwards, want 1", got)
	}
}

func TestCancelledRequest(t *testing.T) {
	s := openBuiltin(t, 128)
	a, b := load(t, s, "brick.png"), load(t, s, "grass.png")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Score(ctx, api.Request{A: a, B: b, Layer: 0, T: 10, Token: -1}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if _, err := s.Score(context.Background(), api.Request{A: a, B: b, Layer: 0, T: 10, Token: -1}); err != nil {
		t.Errorf("after a cancelled request: %v", err)
	}
}

func TestCacheStaysWithinBudget(t *testing.T) {
	s, err := Open(context.Background(), Options{Spec: testSpec(func(s *api.Spec) { s.Size = 128 }), Families: families.All(), CacheBytes: 1})
	enginetest.Check(t, err)
	defer s.Close()
	a, b := load(t, s, "brick.png"), load(t, s, "grass.png")
	for _, ts := range []int{1, 2, 3} {
		if _, err := s.Score(context.Background(), api.Request{A: a, B: b, Layer: 0, T: ts, Token: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Forwards != 3 {
		t.Errorf("forwards = %d", st.Forwards)
	}
	if s.Cached(a, b, 1) {
		t.Error("t=1 still cached under a 1-byte budget")
	}
}

func TestForget(t *testing.T) {
	s := openBuiltin(t, 128)
	a, b := load(t, s, "brick.png"), load(t, s, "grass.png")
	want, err := s.Score(context.Background(), api.Request{A: a, B: b, Layer: 0, T: 10, Token: -1})
	if err != nil {
		t.Fatal(err)
	}
	full := s.Stats().CacheBytes
	s.Forget(10, a)
	if s.Cached(a, b, 10) || s.Stats().CacheBytes >= full || s.Stats().CacheBytes == 0 {
		t.Errorf("after Forget(a): cached %v, %d of %d bytes", s.Cached(a, b, 10), s.Stats().CacheBytes, full)
	}
	got, err := s.Score(context.Background(), api.Request{A: a, B: b, Layer: 0, T: 10, Token: -1})
	if err != nil || got.Score != want.Score || got.Cached || s.Stats().Extracted != 3 {
		t.Errorf("scored again: %v (%v), cached %v, %d extracted; want the same score from a new run of a", got.Score, err, got.Cached, s.Stats().Extracted)
	}
	s.Forget(10, a, b)
	if st := s.Stats(); st.CacheBytes != 0 {
		t.Errorf("after forgetting both: %d bytes cached", st.CacheBytes)
	}
}

func TestBadRequests(t *testing.T) {
	s := openBuiltin(t, 128)
	a := load(t, s, "brick.png")
	for _, req := range []api.Request{
		{A: a, B: a, Layer: 9, T: 1, Token: -1},
		{A: a, B: a, Layer: 0, T: 1000, Token: -1},
		{A: a, B: a, Layer: 0, T: 1, Metric: "l2", Token: -1},
		{A: a, B: a, Layer: 0, T: 1, Token: 99999},
	} {
		if _, err := s.Score(context.Background(), req); !errors.Is(err, api.ErrUsage) {
			t.Errorf("%+v: err = %v, want a usage error", req, err)
		}
	}
	for _, arg := range []string{"fine.attn", "fine", "0", "coarse.attn"} {
		if _, err := s.Info().ResolveLayer(arg); err != nil {
			t.Errorf("ResolveLayer(%q): %v", arg, err)
		}
	}
	if _, err := s.Info().ResolveLayer("nope"); !errors.Is(err, api.ErrUsage) {
		t.Errorf("ResolveLayer(nope): %v", err)
	}
}
