package serve

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
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
	unix, tcp, _ := startServer(t, Config{Base: session.Options{Families: families.All()}}, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.model != "builtin" {
				t.Skip("the miniature SD pipeline takes half a minute on a busy 2-core machine")
			}
			ctx := context.Background()
			s, err := session.Open(ctx, session.Options{Spec: cpu(tc.model), Families: families.All()})
			enginetest.Check(t, err)
			defer s.Close()
			info := s.Info()
			ia, _ := s.Load(a)
			ib, _ := s.Load(b)
			for layer := range info.Layers {
				want, err := s.Score(ctx, api.Request{A: ia, B: ib, Layer: layer, T: tc.t, Metric: api.AAS, Token: -1})
				if err != nil {
					t.Fatal(err)
				}
				for name, cl := range map[string]*testClient{"unix": unix, "http": tcp} {
					got, err := cl.Score(ctx, api.ScoreRequest{ModelRef: api.ModelRef{Spec: cpu(tc.model)},
						Selection: api.Selection{Layer: info.Layers[layer].Name, T: intp(tc.t)}, ImageA: a, ImageB: b})
					if err != nil {
						t.Fatalf("%s layer %d: %v", name, layer, err)
					}
					if g, w := mustJSON(t, got.Record), mustJSON(t, api.RecordOf(s, want)); g != w {
						t.Errorf("%s layer %d:\nserved %s\ndirect %s", name, layer, g, w)
					}
				}
			}
			// A sweep over two timesteps, and a rank, equal the session's own.
			sw, err := unix.Sweep(ctx, api.SweepRequest{ModelRef: api.ModelRef{Spec: cpu(tc.model)}, Timesteps: []int{tc.t, 999}, ImageA: a, ImageB: b})
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.Sweep(ctx, ia, ib, nil, []int{tc.t, 999}, api.AAS, nil)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := mustJSON(t, sw), mustJSON(t, want); g != w {
				t.Errorf("sweep differs:\nserved %s\ndirect %s", g, w)
			}
			rk, err := tcp.Rank(ctx, api.RankRequest{ModelRef: api.ModelRef{Spec: cpu(tc.model)}, Selection: api.Selection{T: intp(tc.t)}, Query: a, Images: []string{b, c, "/nonexistent.png"}})
			if err != nil {
				t.Fatal(err)
			}
			layer := info.DefaultLayer
			wantR, wantS, err := s.Rank(ctx, ia, []string{b, c, "/nonexistent.png"}, layer, tc.t, api.AAS, nil)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := mustJSON(t, rk.Results), mustJSON(t, wantR); g != w || len(rk.Skipped) != len(wantS) || len(rk.Skipped) != 1 {
				t.Errorf("rank differs:\nserved %s %v\ndirect %s %v", g, rk.Skipped, w, wantS)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestShowDescribesTheScores: /v1/show resolves a selection to the setup and point that a
// score with it then carries (what bench writes into its results file before any score).
func TestShowDescribesTheScores(t *testing.T) {
	enginetest.Runtime(t) // the server loads the model with ONNX Runtime; its errors reach us as text
	samples, _ := filepath.Abs("../../testdata/samples")
	a, b := filepath.Join(samples, "grass.png"), filepath.Join(samples, "gravel.png")
	unix, _, _ := startServer(t, Config{Base: session.Options{Families: families.All()}}, nil)
	cases := []api.Selection{
		{},
		{Layer: "coarse", T: intp(0), Metric: "mse"},
		{Layer: "1", Step: 900, Metric: "cos"},
	}
	for _, sel := range cases {
		ctx := context.Background()
		spec := cpu("builtin")
		spec.Size = 64
		sh, err := unix.Show(ctx, api.ShowRequest{ModelRef: api.ModelRef{Spec: spec}, Selection: sel})
		enginetest.Check(t, err)
		sc, err := unix.Score(ctx, api.ScoreRequest{ModelRef: api.ModelRef{Spec: spec}, Selection: sel, ImageA: a, ImageB: b})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := mustJSON(t, sh.Setup)+mustJSON(t, sh.Point), mustJSON(t, sc.Setup)+mustJSON(t, sc.Point); g != w {
			t.Errorf("%+v: show says\n%s\nthe score carries\n%s", sel, g, w)
		}
		if (sh.Meaningless != nil) != (sc.Meaningless != nil) {
			t.Errorf("%+v: show's layer meaningless %v, the score's %v", sel, sh.Meaningless != nil, sc.Meaningless != nil)
		}
	}
}

// cpu is the default spec of model on the CPU.
func cpu(model string) api.Spec {
	sp := api.DefaultSpec()
	sp.Model, sp.Device = model, "cpu"
	return sp
}
