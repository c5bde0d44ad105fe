package features

import (
	"encoding/json"
	"testing"

	"github.com/diffsim/diffsim/engine/attention"
)

// TestStepMapping: every timestep a step gives maps back to a step that gives it; t = 0, which
// no step gives, maps to 0 ("none"), never to a step StepToT refuses.
func TestStepMapping(t *testing.T) {
	for _, tc := range []struct{ t, step int }{
		{0, 0}, {1, 1000}, {101, 900}, {501, 500}, {998, 3}, {999, 2}, {-1, 0}, {1000, 0},
	} {
		if got := TToStep(tc.t); got != tc.step {
			t.Errorf("TToStep(%d) = %d, want %d", tc.t, got, tc.step)
		}
	}
	for ts := range Timesteps {
		step := TToStep(ts)
		if step == 0 {
			if ts != 0 {
				t.Errorf("t=%d has no step", ts)
			}
			continue
		}
		back, err := StepToT(step)
		if err != nil || back != ts {
			t.Errorf("StepToT(TToStep(%d) = %d) = %d, %v", ts, step, back, err)
		}
	}
	for _, bad := range []int{0, -3, 1001} {
		if _, err := StepToT(bad); err == nil {
			t.Errorf("StepToT(%d) accepted", bad)
		}
	}
	if got, _ := StepToT(1); got != 999 {
		t.Errorf("StepToT(1) = %d, want 999", got)
	}
}

// TestLayerJSONRoundTrip: the one layer type carries what inspect prints, KV heads included,
// and reads back what it writes.
func TestLayerJSONRoundTrip(t *testing.T) {
	l := Layer{
		Layer: attention.Layer{Index: 3, Name: "layers.0.self_attn", Short: "", Kind: attention.Self, Heads: 8, KVHeads: 2,
			HeadDim: 16, Scale: 0.25, ImageKV: true, Q: "q", K: "k", V: "v", Out: "o", Op: "Attention"},
		Tokens: 257, GridH: 16, GridW: 16, Prefix: 1,
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"name": "layers.0.self_attn", "kind": "self", "channels": 128.0, "heads": 8.0, "kv_heads": 2.0, "grid_h": 16.0, "tokens": 257.0, "prefix": 1.0} {
		if raw[k] != want {
			t.Errorf("JSON %s = %v, want %v (%s)", k, raw[k], want, b)
		}
	}
	if tensors, _ := raw["tensors"].(map[string]any); tensors["q"] != "q" || tensors["out"] != "o" {
		t.Errorf("JSON tensors %v", raw["tensors"])
	}
	var back Layer
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Name != l.Name || back.KVHeads != 2 || back.Tokens != 257 || back.Prefix != 1 || back.Out != "o" || back.Scale != 0.25 || !back.Grouped() {
		t.Errorf("round trip: %+v, want %+v", back, l)
	}
}
