// Package features turns images (and a timestep) into attention features, one set per layer,
// and features into scores. It holds the model families (diffusion U-Nets, vision
// transformers, a generic image graph, and the built-in model), preprocessing, the DDPM noise
// schedule, the Aligned Attention Score maths and its baselines.
package features

import "fmt"

// Kind says where a layer's keys and values come from.
type Kind string

// Layer kinds.
const (
	SelfAttention  Kind = "self"
	CrossAttention Kind = "cross"
)

// Layer describes one attention layer a model offers.
type Layer struct {
	Index    int    // position in the model's layer list
	Name     string // module path, e.g. up_blocks.1.attentions.2.transformer_blocks.0.attn1
	Short    string // the paper's short name (Down0 … Up2) when the layer is one, else ""
	Group    string // down, mid or up for U-Nets; "" otherwise
	Kind     Kind
	Heads    int
	HeadDim  int
	Scale    float64 // softmax scale the layer uses (1/sqrt(HeadDim) unless the graph says otherwise)
	Tokens   int     // tokens at the model's working size
	GridH    int     // spatial token grid; 0 when the layout has none
	GridW    int
	Prefix   int // leading non-spatial tokens (CLS, registers), kept in scores, dropped in maps
	Channels int // Heads × HeadDim

	// ImageKV is false for cross-attention whose keys and values come from text: those layers
	// score 1 for every pair and must not be shown as a meaningful 1.000.
	ImageKV bool
}

// Label is the name shown to people: the short name first when there is one.
func (l Layer) Label() string {
	if l.Short != "" {
		return l.Short + " " + l.Name
	}
	return l.Name
}

func (l Layer) String() string {
	return fmt.Sprintf("%d %s (%s, %d tokens %dx%d+%d, %d heads x %d)", l.Index, l.Name, l.Kind, l.Tokens, l.GridH, l.GridW, l.Prefix, l.Heads, l.HeadDim)
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
