package serve

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/session"
)

// TestServedScoresEqualDirectOnes runs real models (the built-in one and a miniature SD
// folder) through the server and through a session opened directly, and wants the same bits.
func TestServedScoresEqualDirectOnes(t *testing.T) {
	sd := t.TempDir()
	if err := testgraphs.WriteTinyDiffusers(sd); err != nil {
		t.Fatal(err)
	}
	samples, _ := filepath.Abs("../../testdata/samples")
	a, b, c := filepath.Join(samples, "grass.png"), filepath.Join(samples, "gravel.png"), filepath.Join(samples, "brick.png")
	cases := []struct {
		name  string
		model string
		t     int
	}{
		{"builtin", "builtin", 101},
		{"tiny SD", sd, 401},
	}
	unix, tcp, _ := startServer(t, Config{Base: session.Options{Device: "cpu"}}, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.model != "builtin" {
				t.Skip("the miniature SD pipeline takes half a minute on a busy 2-core machine")
			}
			ctx := context.Background()
			s, err := session.Open(ctx, session.Options{Model: tc.model, Seed: session.DefaultSeed, Device: "cpu"})
			enginetest.Check(t, err)
			defer s.Close()
			info := s.Info()
			ia, _ := s.Load(a)
			ib, _ := s.Load(b)
			ic, _ := s.Load(c)
			for layer := range info.Layers {
				want, err := s.Score(ctx, session.Request{A: ia, B: ib, Layer: layer, T: tc.t, Metric: session.AAS, Token: -1})
				if err != nil {
					t.Fatal(err)
				}
				for name, cl := range map[string]*Client{"unix": unix, "http": tcp} {
					got, err := cl.Score(ctx, ScoreRequest{Spec: Spec{Model: tc.model, Device: "cpu"},
						Select: Select{Layer: info.Layers[layer].Name, T: intp(tc.t)}, ImageA: a, ImageB: b})
					if err != nil {
						t.Fatalf("%s layer %d: %v", name, layer, err)
					}
					if !same(got.Score, want.Score) || !same(got.AtoB, want.AtoB) || !same(got.BtoA, want.BtoA) || got.LayerIndex != layer {
						t.Errorf("%s layer %d: served %v (A→B %v, B→A %v), direct %v (%v, %v)", name, layer, deref(got.Score), deref(got.AtoB), deref(got.BtoA), want.Score, want.AtoB, want.BtoA)
					}
				}
			}
			// A sweep over two timesteps equals the direct per-layer scores.
			sw, err := unix.Sweep(ctx, SweepRequest{Spec: Spec{Model: tc.model, Device: "cpu"}, Timesteps: []int{tc.t, 999}, ImageA: a, ImageB: b})
			if err != nil {
				t.Fatal(err)
			}
			if len(sw.Scores) != len(info.Layers)*len(sw.Timesteps) {
				t.Fatalf("sweep: %d scores for %d layers × %v", len(sw.Scores), len(info.Layers), sw.Timesteps)
			}
			for _, sc := range sw.Scores {
				want, err := s.Score(ctx, session.Request{A: ia, B: ib, Layer: sc.LayerIndex, T: sc.T, Metric: session.AAS, Token: -1})
				if err != nil {
					t.Fatal(err)
				}
				if !same(sc.Score, want.Score) {
					t.Errorf("sweep layer %d t=%d: %v, direct %v", sc.LayerIndex, sc.T, deref(sc.Score), want.Score)
				}
			}
			// Rank: gravel and brick against grass, in the direct scores' order.
			rk, err := tcp.Rank(ctx, RankRequest{Spec: Spec{Model: tc.model, Device: "cpu"}, Select: Select{T: intp(tc.t)}, Query: a, Images: []string{b, c, "/nonexistent.png"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rk.Results) != 2 || len(rk.Skipped) != 1 {
				t.Fatalf("rank: %+v", rk)
			}
			for _, r := range rk.Results {
				img := ib
				if r.Path == c {
					img = ic
				}
				want, _ := s.Score(ctx, session.Request{A: ia, B: img, Layer: rk.LayerIndex, T: tc.t, Metric: session.AAS, Token: -1})
				if r.Score != want.Score {
					t.Errorf("rank %s: %v, direct %v", r.Path, r.Score, want.Score)
				}
			}
		})
	}
}

func same(p *float64, v float64) bool {
	if p == nil {
		return math.IsNaN(v)
	}
	return *p == v
}

func deref(p *float64) any {
	if p == nil {
		return "null"
	}
	return *p
}
