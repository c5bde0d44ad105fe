package features

import (
	"encoding/json"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/attention"
)

// TestLayerJSONRoundTrip: a layer prints what inspect prints, KV heads included, and the
// description every front end reads (api.Layer) reads it back.
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
	var back api.Layer
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Name != l.Name || back.KVHeads != 2 || back.Tokens != 257 || back.Prefix != 1 || back.Out != "o" || back.Scale != 0.25 || !back.Grouped() {
		t.Errorf("round trip: %+v, want %+v", back, l)
	}
	if back != l.Describe() {
		t.Errorf("read back %+v, described %+v", back, l.Describe())
	}
}
