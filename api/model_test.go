package api

import (
	"errors"
	"testing"
)

func intp(v int) *int { return &v }

// TestResolve: the one resolution of layer, t or step, and metric, against a model with
// timesteps and one without; every refusal is a usage error.
func TestResolve(t *testing.T) {
	layers := []Layer{
		{Index: 0, Name: "down_blocks.0.attentions.1.transformer_blocks.0.attn1", Short: "Down0", ImageKV: true},
		{Index: 1, Name: "down_blocks.0.attentions.1.transformer_blocks.0.attn2", Short: "Down0.x"},
		{Index: 2, Name: "up_blocks.1.attentions.2.transformer_blocks.0.attn1", Short: "Up0", ImageKV: true},
	}
	sd := ModelInfo{Name: "sd", Layers: layers, DefaultLayer: 2, Timesteps: true, DefaultT: 101}
	vit := ModelInfo{Name: "vit", Layers: layers, DefaultLayer: 0}
	cases := []struct {
		name string
		info ModelInfo
		sel  Selection
		want Target // Layer -1: a usage error
	}{
		{"defaults", sd, Selection{}, Target{2, 101, AAS}},
		{"short name, any case", sd, Selection{Layer: "down0"}, Target{0, 101, AAS}},
		{"index and t", sd, Selection{Layer: "1", T: intp(0), Metric: MSE}, Target{1, 0, MSE}},
		{"unique suffix", sd, Selection{Layer: "attn2"}, Target{1, 101, AAS}},
		{"step", sd, Selection{Step: 900, Metric: Cosine}, Target{2, 101, Cosine}},
		{"step 1 is t 999", sd, Selection{Step: 1}, Target{2, 999, AAS}},
		{"no timesteps: t ignored", vit, Selection{T: intp(500)}, Target{0, 0, AAS}},
		{"no timesteps: step ignored", vit, Selection{Step: 500}, Target{0, 0, AAS}},
		{"ambiguous prefix", sd, Selection{Layer: "down_blocks.0"}, Target{Layer: -1}},
		{"no such layer", sd, Selection{Layer: "Mid"}, Target{Layer: -1}},
		{"index past the end", sd, Selection{Layer: "3"}, Target{Layer: -1}},
		{"t past 999", sd, Selection{T: intp(1000)}, Target{Layer: -1}},
		{"negative t", vit, Selection{T: intp(-1)}, Target{Layer: -1}},
		{"t and step", sd, Selection{T: intp(5), Step: 900}, Target{Layer: -1}},
		{"step out of range", sd, Selection{Step: 1001}, Target{Layer: -1}},
		{"unknown metric", sd, Selection{Metric: "l2"}, Target{Layer: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.info.Resolve(tc.sel)
			switch {
			case tc.want.Layer < 0 && !errors.Is(err, ErrUsage):
				t.Errorf("Resolve(%+v) = %+v, %v; want a usage error", tc.sel, got, err)
			case tc.want.Layer >= 0 && (err != nil || got != tc.want):
				t.Errorf("Resolve(%+v) = %+v, %v; want %+v", tc.sel, got, err, tc.want)
			}
		})
	}
}

// TestSpecIsOneKey: specs that mean the same model compare equal once normalized, and every
// default lives in DefaultSpec.
func TestSpecIsOneKey(t *testing.T) {
	d := DefaultSpec()
	if d.Model != "builtin" || d.Seed != 2334 || d.Device != "auto" || d.IPScale != 0.5 {
		t.Errorf("DefaultSpec() = %+v", d)
	}
	spelled := Spec{Model: "", Device: " CUDA:0 ", Seed: 2334, IPScale: 0.5}
	want := Spec{Model: "builtin", Device: "cuda:0", Seed: 2334, IPScale: 0.5}
	if spelled.Normalize() != want {
		t.Errorf("Normalize(%+v) = %+v, want %+v", spelled, spelled.Normalize(), want)
	}
	keys := map[Spec]int{}
	keys[Spec{Device: "auto"}.Normalize()]++
	keys[Spec{Model: "builtin"}.Normalize()]++
	if len(keys) != 1 {
		t.Errorf("two spellings of the built-in model on auto are %d keys", len(keys))
	}
	seed0 := d
	seed0.Seed = 0
	if seed0 == d {
		t.Error("seed 0 is the default seed")
	}
}

// TestLayerMeaningless: the one wording, for layers whose keys and values are not the image's.
func TestLayerMeaningless(t *testing.T) {
	if (Layer{ImageKV: true}).Meaningless() != "" || (Layer{}).Meaningless() != MeaninglessText {
		t.Error("Meaningless does not follow ImageKV")
	}
}
