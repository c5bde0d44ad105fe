// Package attention finds the attention layers of an ONNX graph and exposes their queries,
// keys and values (and attention output) as extra graph outputs.
//
// It recognises the layouts real exporters produce (ONNX_PATTERNS.md): unfused attention from
// the TorchScript and dynamo exporters (Hugging Face eager, diffusers AttnProcessor and
// AttnProcessor2_0, scaled_dot_product_attention), ONNX Runtime's fused
// com.microsoft.MultiHeadAttention (plain, packed QKV, packed KV) and com.microsoft.Attention,
// and the standard Attention operator of opset 23. Finding reads only the graph structure and
// small constants: weights stored as external data are never loaded.
package attention

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Kind says where a layer's keys and values come from.
type Kind string

// Layer kinds.
const (
	Self  Kind = "self"
	Cross Kind = "cross"
)

// Layout of the tensors Instrument exposes. Every Q, K, V and Out is [B, S, H·D], row-major,
// with each head's D channels contiguous (head h occupies channels h·D … h·D+D-1), as a
// to_q projection produces it; fused and packed variants are sliced and reshaped into it.
const LayoutBSC = "B,S,H*D"

// Layer is one attention layer of a graph.
type Layer struct {
	Index int    // position in Find's result (graph order)
	Name  string // module path, e.g. up_blocks.1.attentions.2.transformer_blocks.0.attn1
	Short string // the DiffSim paper's name for SD 1.x U-Net layers: Down0 … Up2 for attn1, Down0.x … Up2.x for attn2; else ""
	Group string // down, mid or up for U-Nets; "" otherwise

	Kind    Kind
	Heads   int
	KVHeads int // key/value heads; equal to Heads except for grouped-query attention
	HeadDim int
	Scale   float64 // effective softmax scale: softmax(Q·Kᵀ·Scale)

	// Q, K, V and Out name the graph outputs Instrument adds, laid out as LayoutBSC. For
	// float32 unfused graphs they are the graph's own tensors (Q is the projection output
	// after its bias and before any scaling); for fused, packed or float16 graphs they are
	// new values Instrument creates. Out is the attention output before the output
	// projection; "" when the graph has no such tensor.
	Q, K, V, Out string
	Layout       string // always LayoutBSC

	// QSource and KVSource are the tensors the Q and K/V projections read (through casts),
	// e.g. a normalised hidden state, or the graph input "encoder_hidden_states".
	QSource  string
	KVSource string
	// KVInputs are the graph inputs K and V depend on.
	KVInputs []string
	// ImageKV reports that K and V carry image information: self-attention, or
	// cross-attention whose K/V depend on an image-like graph input (not text or time
	// conditioning). Cross-attention on text scores 1 for every image pair.
	ImageKV bool

	Softmax string // the Softmax node, or the fused attention node
	Op      string // "MatMul+Softmax" for unfused layers, else the fused operator (com.microsoft.MultiHeadAttention …)

	plan *plan // how Instrument exposes Q, K, V, Out
}

// Channels is Heads × HeadDim.
func (l Layer) Channels() int { return l.Heads * l.HeadDim }

// Taps are the tensors Instrument exposes for the layer, in order: Q, K, V, then Out where
// the layer has one; a tensor shared by two of them is listed once.
func (l Layer) Taps() []string {
	var out []string
	for _, t := range []string{l.Q, l.K, l.V, l.Out} {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// KeyValueHeads is KVHeads, or Heads for a layer described without it (Find always sets it).
func (l Layer) KeyValueHeads() int {
	if l.KVHeads == 0 {
		return l.Heads
	}
	return l.KVHeads
}

func (l Layer) String() string {
	return fmt.Sprintf("%s (%s, %d heads × %d, scale %.4g)", l.Name, l.Kind, l.Heads, l.HeadDim, l.Scale)
}

// ErrNoAttention is returned by Find for a graph without any attention layer.
var ErrNoAttention = errors.New("no attention layer found")

// WalkError says where the finder stopped following an attention layer's graph.
type WalkError struct {
	Layer  string // the layer's name as far as known
	Node   string // the node where the walk stopped
	Op     string // its operator
	Reason string
}

func (e *WalkError) Error() string {
	layer := ""
	if e.Layer != "" {
		layer = e.Layer + ": "
	}
	return fmt.Sprintf("attention %sstopped at node %q (%s): %s", layer, e.Node, e.Op, e.Reason)
}

// Grid infers the spatial token grid of a sequence of tokens from an input of imageH × imageW
// (pixels or latents: only the aspect ratio matters) and the number of leading non-spatial
// tokens (a CLS token, registers). It prefers the grid whose aspect ratio matches the input,
// then the fewest leading tokens: 4096 at 64×64 gives 64×64+0, 197 gives 14×14+1, 257 gives
// 16×16+1, 261 gives 16×16+5. gh = gw = 0 when no grid fits (text tokens, a pooled vector).
func Grid(tokens, imageH, imageW int) (gh, gw, prefix int) {
	if tokens <= 0 || imageH <= 0 || imageW <= 0 {
		return 0, 0, 0
	}
	aspect := math.Log(float64(imageH) / float64(imageW))
	best := math.Inf(1)
	for p := 0; p <= 16 && p < tokens; p++ {
		n := tokens - p
		guess := math.Sqrt(float64(n) * float64(imageH) / float64(imageW))
		for h := max(1, int(guess)-2); h <= int(guess)+2; h++ {
			if n%h != 0 {
				continue
			}
			w := n / h
			err := math.Abs(math.Log(float64(h)/float64(w)) - aspect)
			// Rounding a patch grid (floor of size/patch) can move the ratio a little; more is
			// not a grid of this input.
			if err > 0.2 {
				continue
			}
			score := err + 0.002*float64(p)
			if score < best {
				best, gh, gw, prefix = score, h, w, p
			}
		}
	}
	return gh, gw, prefix
}

// Describe renders layers as a plain-text table, one line each.
func Describe(layers []Layer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-3s %-6s %-60s %-5s %5s %4s %8s  %s\n", "#", "short", "name", "kind", "heads", "dim", "scale", "kv source")
	for _, l := range layers {
		kv := l.KVSource
		if l.Kind == Cross && !l.ImageKV {
			kv += " (text)"
		}
		fmt.Fprintf(&b, "%-3d %-6s %-60s %-5s %5d %4d %8.5f  %s\n", l.Index, l.Short, l.Name, l.Kind, l.Heads, l.HeadDim, l.Scale, kv)
	}
	return b.String()
}
