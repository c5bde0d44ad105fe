// Package features turns images (and a timestep) into attention features, one set per layer,
// and features into scores: the Aligned Attention Score maths and its baselines,
// preprocessing, the DDPM noise schedule and the one t↔step mapping.
//
// It also defines what every model family shares, so that nothing above it needs a family:
// Layer (the one description of an attention layer), Model and ModelInfo (a loaded model),
// Conditioning (what besides the image a model's features depend on: prompt, CFG), Loader
// (how a family opens graphs: engine.Runner values), and Family and Families (the registry
// that matches a model to the family that describes and opens it). The families live in
// sub-packages (builtin, diffusion, vision) and are listed in one place, features/families.
package features

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/diffsim/diffsim/engine/attention"
)

// Kind says where a layer's keys and values come from. It is the attention finder's own type,
// named here so that callers need not import engine/attention.
type Kind = attention.Kind

// Layer kinds.
const (
	SelfAttention  = attention.Self
	CrossAttention = attention.Cross
)

// Layer is the one description of an attention layer above engine: what the graph says (the
// finder's attention.Layer, embedded whole: name, short name, kind, heads, KV heads, scale,
// the tapped tensors) and what the model family adds at its working size (the token grid).
// Inspect prints it, scoring reads it, the explorer lists it: nothing is converted on the way.
type Layer struct {
	attention.Layer

	Tokens int // tokens at the model's working size; 0 when the family cannot tell
	GridH  int // spatial token grid; 0 when the layout has none
	GridW  int
	Prefix int // leading non-spatial tokens (CLS, registers), kept in scores, dropped in maps
}

// Label is the name shown to people: the short name first when there is one.
func (l Layer) Label() string {
	if l.Short != "" {
		return l.Short + " " + l.Name
	}
	return l.Name
}

// Abbrev is a compact name for tables, figures and narrow columns: the paper's short name with
// the module's last part (Up0 attn1), or the module path with the common parts shortened
// (down1.0.0.attn1, L3).
func (l Layer) Abbrev() string {
	if l.Short != "" {
		suffix := ""
		if i := strings.LastIndex(l.Name, "."); i >= 0 {
			suffix = " " + l.Name[i+1:]
		}
		return l.Short + suffix
	}
	return abbrevReplacer.Replace(l.Name)
}

var abbrevReplacer = strings.NewReplacer("down_blocks.", "down", "up_blocks.", "up", "mid_block.", "mid.",
	".attentions.", ".", "attentions.", "", ".transformer_blocks.", ".", "encoder.layers.", "L", "encoder.layer.", "L",
	".self_attn", "", ".attention", "")

func (l Layer) String() string {
	return fmt.Sprintf("%d %s (%s, %d tokens %dx%d+%d, %d heads x %d)", l.Index, l.Name, l.Kind, l.Tokens, l.GridH, l.GridW, l.Prefix, l.Heads, l.HeadDim)
}

// Grouped reports grouped-query attention: fewer key/value heads than query heads.
func (l Layer) Grouped() bool { return l.KVHeads > 0 && l.KVHeads != l.Heads }

// layerJSON is the layer as `models inspect --json` prints it.
type layerJSON struct {
	Index    int     `json:"index"`
	Name     string  `json:"name"`
	Short    string  `json:"short,omitempty"`
	Group    string  `json:"group,omitempty"`
	Kind     string  `json:"kind"`
	ImageKV  bool    `json:"image_kv"`
	GridH    int     `json:"grid_h,omitempty"`
	GridW    int     `json:"grid_w,omitempty"`
	Tokens   int     `json:"tokens,omitempty"`
	Prefix   int     `json:"prefix,omitempty"`
	Channels int     `json:"channels"`
	Heads    int     `json:"heads"`
	KVHeads  int     `json:"kv_heads,omitempty"`
	HeadDim  int     `json:"head_dim"`
	Scale    float64 `json:"scale"`
	Op       string  `json:"op,omitempty"`
	Tensors  struct {
		Q   string `json:"q"`
		K   string `json:"k"`
		V   string `json:"v"`
		Out string `json:"out,omitempty"`
	} `json:"tensors"`
}

// MarshalJSON writes the layer in the documented `models inspect --json` form.
func (l Layer) MarshalJSON() ([]byte, error) {
	j := layerJSON{
		Index: l.Index, Name: l.Name, Short: l.Short, Group: l.Group, Kind: string(l.Kind), ImageKV: l.ImageKV,
		GridH: l.GridH, GridW: l.GridW, Tokens: l.Tokens, Prefix: l.Prefix,
		Channels: l.Channels(), Heads: l.Heads, HeadDim: l.HeadDim, Scale: l.Scale, Op: l.Op,
	}
	if l.Grouped() {
		j.KVHeads = l.KVHeads
	}
	j.Tensors.Q, j.Tensors.K, j.Tensors.V, j.Tensors.Out = l.Q, l.K, l.V, l.Out
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes, so a layer list survives a round trip (the
// server's API, cached inspections).
func (l *Layer) UnmarshalJSON(b []byte) error {
	var j layerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Layer{Tokens: j.Tokens, GridH: j.GridH, GridW: j.GridW, Prefix: j.Prefix}
	l.Index, l.Name, l.Short, l.Group, l.Kind, l.ImageKV = j.Index, j.Name, j.Short, j.Group, Kind(j.Kind), j.ImageKV
	l.Heads, l.KVHeads, l.HeadDim, l.Scale, l.Op = j.Heads, j.KVHeads, j.HeadDim, j.Scale, j.Op
	if l.KVHeads == 0 {
		l.KVHeads = l.Heads
	}
	l.Q, l.K, l.V, l.Out = j.Tensors.Q, j.Tensors.K, j.Tensors.V, j.Tensors.Out
	return nil
}

// Features are one image's Q, K and V at one layer: row-major [Tokens][Heads*HeadDim].
type Features struct {
	Q, K, V []float32
	Tokens  int
	Heads   int
	HeadDim int
	Scale   float64

	// KVTokens is the number of key/value tokens when it differs from Tokens (cross-attention
	// on text or image prompts); 0 means Tokens.
	KVTokens int

	// GridH × GridW spatial tokens follow Prefix non-spatial ones, as measured at run time;
	// zero when the family could not tell (the layer's static description is used then).
	GridH, GridW, Prefix int
}

// Channels is Heads × HeadDim.
func (f Features) Channels() int { return f.Heads * f.HeadDim }

// KV is the number of key/value tokens.
func (f Features) KV() int {
	if f.KVTokens > 0 {
		return f.KVTokens
	}
	return f.Tokens
}

// Bytes is the memory the features hold.
func (f Features) Bytes() int64 { return int64(4 * (len(f.Q) + len(f.K) + len(f.V))) }

// Map is a per-token value grid: H×W spatial tokens, row-major. Values may be NaN.
type Map struct {
	W, H   int
	Values []float32
}
