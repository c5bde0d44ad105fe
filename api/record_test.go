package api

import (
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/features/calibration"
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
			wantNull: []string{"global_cosine", "meaningless", "rescaled", "percentile", "baseline"},
			wantT:    401.0, wantStep: 600.0,
		},
		{
			name:     "model without timesteps: t and step are null, the global cosine is a number",
			info:     vit,
			r:        Result{Req: Request{A: a, B: b, Layer: 0, T: 0, Metric: MSE}, Score: 0.1, AtoB: 0.1, BtoA: 0.1, FeatureCosine: 0.5, MSE: 0.1, Global: 0.25},
			wantNull: []string{"t", "step", "meaningless", "rescaled", "percentile", "baseline"},
			wantGl:   0.25,
		},
		{
			name:     "a score that is not a number is null, an infinite one \"+Inf\"; text cross-attention says why",
			info:     diffusion,
			r:        Result{Req: Request{A: a, B: b, Layer: 1, T: 101, Metric: Cosine}, Score: math.NaN(), AtoB: math.NaN(), BtoA: math.Inf(1), FeatureCosine: math.NaN(), MSE: 0, Global: math.NaN(), Meaningless: "cross-attention on text"},
			wantNull: []string{"score", "a_to_b", "feature_cosine", "global_cosine", "rescaled", "percentile", "baseline"},
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

// TestRecordCalibrate: with a baseline of this model, a record carries its rescaled score,
// its percentile and the baseline's cell; without one, or at a layer the baseline has no
// cell for, the keys stay null.
func TestRecordCalibrate(t *testing.T) {
	layers := []Layer{{Name: "down.attn", ImageKV: true}, {Name: "text.attn"}}
	info := ModelInfo{Name: "m", Layers: layers, Timesteps: true}
	var xs []float64
	for i := range 11 {
		xs = append(xs, 0.9+0.01*float64(i)) // mean 0.95
	}
	b := &calibration.Baseline{Version: calibration.Version, Key: "k", Source: "dir", Pairs: 11, Timesteps: []int{100, 200},
		Cells: []calibration.Cell{calibration.NewCell(0, 100, "aas", xs), calibration.NewCell(0, 200, "aas", xs)}}
	b.Sort()
	a, c := &Image{Path: "a.png"}, &Image{Path: "b.png"}
	rec := NewRecord(info, NewSetup(info, AAS, Conditioning{}), Result{Req: Request{A: a, B: c, Layer: 0, T: 150, Metric: AAS}, Score: 0.975})
	rec.Calibrate(b)
	if rec.Rescaled == nil || math.Abs(*rec.Rescaled-0.5) > 1e-9 || rec.Percentile == nil || math.Abs(*rec.Percentile-75) > 1e-6 ||
		rec.Baseline == nil || rec.Baseline.Key != "k" || !rec.Baseline.Interpolated || rec.Baseline.Pairs != 11 {
		t.Errorf("calibrated record: rescaled %v percentile %v baseline %+v", rec.Rescaled, rec.Percentile, rec.Baseline)
	}
	rec.Calibrate(nil)
	if rec.Rescaled != nil || rec.Percentile != nil || rec.Baseline != nil {
		t.Error("Calibrate(nil) left values")
	}
	for _, r := range []Result{
		{Req: Request{A: a, B: c, Layer: 0, T: 401, Metric: AAS}, Score: 0.9},                                       // no cell at t=401
		{Req: Request{A: a, B: c, Layer: 0, T: 150, Metric: MSE}, Score: 0.1},                                       // nor for mse
		{Req: Request{A: a, B: c, Layer: 1, T: 150, Metric: AAS}, Score: 1, Meaningless: "cross-attention on text"}, // no image information
	} {
		rec := NewRecord(info, NewSetup(info, r.Req.Metric, Conditioning{}), r)
		rec.Calibrate(b)
		if rec.Rescaled != nil || rec.Baseline != nil {
			t.Errorf("%+v calibrated: %v %+v", r.Req, *rec.Rescaled, rec.Baseline)
		}
	}
}
