// Package features is the family registry: what every model family shares, so that nothing
// above it needs a family. Layer is an attention layer as the graph and the family know it (the
// tensors to tap, the token grid at the working size; Describe gives the api.Layer every front
// end sees), Features and Extraction are what one network run yields per image and layer,
// Model and ModelInfo a loaded model, Conditioning what besides the image its features depend
// on (prompt, CFG), Loader how a family opens graphs (engine.Runner values), and Family and
// Families the registry that matches a model to the family that describes and opens it. The
// families live in sub-packages (builtin, diffusion, vision) and are listed in one place,
// features/families. Images are decoded and preprocessed here too (image.go).
//
// Beside it, by what each part is: features/aas is the Aligned Attention Score's maths,
// features/schedule the DDPM noise schedule and the t↔step mapping.
package features

import (
	"encoding/json"
	"fmt"

	"github.com/diffsim/diffsim/api"
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

func (l Layer) String() string {
	return fmt.Sprintf("%d %s (%s, %d tokens %dx%d+%d, %d heads x %d)", l.Index, l.Name, l.Kind, l.Tokens, l.GridH, l.GridW, l.Prefix, l.Heads, l.HeadDim)
}

// Grouped reports grouped-query attention: fewer key/value heads than query heads.
func (l Layer) Grouped() bool { return l.KVHeads > 0 && l.KVHeads != l.Heads }

// Describe is the layer as every front end sees it (api.Layer): the graph's description and
// the token grid, without the plan of how to tap it.
func (l Layer) Describe() api.Layer {
	return api.Layer{
		Index: l.Index, Name: l.Name, Short: l.Short, Group: l.Group, Kind: api.Kind(l.Kind), ImageKV: l.ImageKV,
		Tokens: l.Tokens, GridH: l.GridH, GridW: l.GridW, Prefix: l.Prefix,
		Heads: l.Heads, KVHeads: l.KeyValueHeads(), HeadDim: l.HeadDim, Scale: l.Scale, Op: l.Op,
		Q: l.Q, K: l.K, V: l.V, Out: l.Out,
	}
}

// MarshalJSON writes the layer in the documented `models inspect --json` form (api.Layer's).
func (l Layer) MarshalJSON() ([]byte, error) { return json.Marshal(l.Describe()) }

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

// Map is a per-token value grid (api.Map: the explorer and the server's answers carry it).
type Map = api.Map
