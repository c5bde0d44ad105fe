package api

import (
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"testing"
)

func TestNewRecordNullRule(t *testing.T) {
	layers := []Layer{{Name: "down.attn", Short: "Down0", ImageKV: true}, {Name: "text.attn", ImageKV: false}}
	diffusion := ModelInfo{Name: "m", Description: "d", Device: "cpu", Layers: layers, Timesteps: true, Size: 64, Seed: 7}
	vit := diffusion
	vit.Timesteps = false
	a, b := &Image{Path: "a.png"}, &Image{Path: "b.png"}
	for _, tc := range []struct {
		name                    string
		info                    ModelInfo
		r                       Result
		wantNull                []string
		wantT, wantStep         any
		wantMeaningless, wantGl any
		wantBtoA                any
	}{
		{
			name:     "diffusion model: every value applies but the global embedding",
			info:     diffusion,
			r:        Result{Req: Request{A: a, B: b, Layer: 0, T: 401, Metric: AAS}, Score: 0.9, AtoB: 0.8, BtoA: 1, FeatureCosine: 0.5, MSE: 0.1, Global: math.NaN()},
			wantNull: []string{"global_cosine", "meaningless"},
			wantT:    401.0, wantStep: 600.0,
		},
		{
			name:     "model without timesteps: t and step are null, the global cosine is a number",
			info:     vit,
			r:        Result{Req: Request{A: a, B: b, Layer: 0, T: 0, Metric: MSE}, Score: 0.1, AtoB: 0.1, BtoA: 0.1, FeatureCosine: 0.5, MSE: 0.1, Global: 0.25},
			wantNull: []string{"t", "step", "meaningless"},
			wantGl:   0.25,
		},
		{
			name:     "a score that is not a number is null, an infinite one \"+Inf\"; text cross-attention says why",
			info:     diffusion,
			r:        Result{Req: Request{A: a, B: b, Layer: 1, T: 101, Metric: Cosine}, Score: math.NaN(), AtoB: math.NaN(), BtoA: math.Inf(1), FeatureCosine: math.NaN(), MSE: 0, Global: math.NaN(), Meaningless: "cross-attention on text"},
			wantNull: []string{"score", "a_to_b", "feature_cosine", "global_cosine"},
			wantT:    101.0, wantStep: 900.0, wantMeaningless: "cross-attention on text", wantBtoA: "+Inf",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewRecord(tc.info, NewSetup(tc.info, tc.r.Req.Metric, Conditioning{}), tc.r)
			data, err := json.Marshal(rec)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
			var nulls []string
			for k, v := range m {
				if !snake.MatchString(k) {
					t.Errorf("key %q is not snake_case", k)
				}
				if v == nil {
					nulls = append(nulls, k)
				}
			}
			slices.Sort(nulls)
			want := slices.Clone(tc.wantNull)
			slices.Sort(want)
			if !slices.Equal(nulls, want) {
				t.Errorf("null keys %v, want %v\n%s", nulls, want, data)
			}
			for key, want := range map[string]any{"t": tc.wantT, "step": tc.wantStep, "meaningless": tc.wantMeaningless, "image_a": "a.png", "image_b": "b.png", "metric": string(tc.r.Req.Metric), "layer": layers[tc.r.Req.Layer].Name} {
				if want != nil && m[key] != want {
					t.Errorf("%s = %v, want %v", key, m[key], want)
				}
			}
			if tc.wantBtoA != nil && m["b_to_a"] != tc.wantBtoA {
				t.Errorf("b_to_a = %v, want %v", m["b_to_a"], tc.wantBtoA)
			}
			var back Record
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if again, _ := json.Marshal(back); string(again) != string(data) {
				t.Errorf("a record read back writes\n%s\nnot\n%s", again, data)
			}
			if tc.wantGl != nil && m["global_cosine"] != tc.wantGl {
				t.Errorf("global_cosine = %v, want %v", m["global_cosine"], tc.wantGl)
			}
			if got := m["higher_is_more_similar"]; got != tc.r.Req.Metric.HigherIsMoreSimilar() {
				t.Errorf("higher_is_more_similar = %v for %s", got, tc.r.Req.Metric)
			}
		})
	}
}
