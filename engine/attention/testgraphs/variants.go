package testgraphs

import (
	"fmt"
	"math"
	"strings"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// Variant is one way exporters lay out attention (ONNX_PATTERNS.md).
type Variant string

// The variants Attention generates.
const (
	DiffusersAttnProcessor Variant = "diffusers-attnprocessor"    // baddbmm: Mul after the scores, Add(Mul(empty, 0)), Cast after Softmax
	DiffusersSDPA          Variant = "diffusers-attnprocessor2_0" // SDPA through TorchScript with the live scale subgraph
	CLIPEager              Variant = "hf-clip-eager"              // 3-D heads, Mul(scale) before the head split
	HFEager4D              Variant = "hf-eager-4d"                // 4-D heads, merged K transpose, Mul after scores, Cast around Softmax
	DINOv2Eager            Variant = "hf-dinov2-eager"            // 4-D heads, Div after scores, output projection outside the scope
	SDPAScaled             Variant = "hf-sdpa"                    // SDPA with constant sqrt-scale Muls and an additive mask
	Dynamo                 Variant = "dynamo"                     // dynamo names, metadata scopes, MatMul(x, Transpose(W)), Add(MatMul, b)
	MultiHead              Variant = "ms-multiheadattention"      // com.microsoft.MultiHeadAttention with a packed bias
	MultiHeadPackedQKV     Variant = "ms-multiheadattention-packed-qkv"
	MultiHeadPackedKV      Variant = "ms-multiheadattention-packed-kv"
	MSAttention            Variant = "ms-attention" // com.microsoft.Attention with merged weights
	ONNXAttention          Variant = "onnx-attention-23"
	ONNXAttention4D        Variant = "onnx-attention-23-4d"           // dynamo at opset 23: SDPA as one Attention node on [B, H, S, D]
	GroupedQuery           Variant = "onnx-attention-23-gqa"          // grouped-query attention: Heads query heads share Heads/2 key/value heads
	Quantized              Variant = "quantized-dynamic"              // DynamicQuantizeLinear → MatMulInteger → Cast → Mul
	QuantizedFused         Variant = "quantized-matmulintegertofloat" // DynamicQuantizeLinear → com.microsoft.MatMulIntegerToFloat
	Quantized4Bit          Variant = "quantized-matmulnbits"          // com.microsoft.MatMulNBits (4-bit blocks)
	Float16                Variant = "float16"                        // HF eager in float16 with Cast around Softmax
)

// Variants lists every variant.
func Variants() []Variant {
	return []Variant{DiffusersAttnProcessor, DiffusersSDPA, CLIPEager, HFEager4D, DINOv2Eager, SDPAScaled, Dynamo,
		MultiHead, MultiHeadPackedQKV, MultiHeadPackedKV, MSAttention, ONNXAttention, ONNXAttention4D, GroupedQuery, Quantized, QuantizedFused, Quantized4Bit, Float16}
}

// Options size a generated attention graph.
type Options struct {
	Batch, Tokens, Channels, Heads int
	CtxTokens, CtxChannels         int
	Seed                           uint64
}

// DefaultOptions are tiny sizes that still have several heads and unequal widths.
func DefaultOptions() Options {
	return Options{Batch: 2, Tokens: 12, Channels: 16, Heads: 2, CtxTokens: 5, CtxChannels: 8, Seed: 1}
}

type variantInfo struct {
	cross bool
	// parallel layers both read the graph input (ONNX Runtime's CPU provider cannot run packed
	// MultiHeadAttention, so tests cut the graph to the taps, which must not need a layer).
	parallel bool
	layers   [2]string // module paths (TorchScript form)
	outMod   string    // the output projection's module, relative to the layer (or absolute with a leading /)
	core     func(s scope, q, kv string, inQ, inKV int, o Options, t *LayerTruth) string
}

func info(v Variant) variantInfo {
	diff := [2]string{"/transformer_blocks.0/attn1", "/transformer_blocks.0/attn2"}
	switch v {
	case DiffusersAttnProcessor:
		return variantInfo{cross: true, layers: diff, outMod: "to_out.0", core: coreBaddbmm}
	case DiffusersSDPA:
		return variantInfo{cross: true, layers: diff, outMod: "to_out.0", core: coreSDPA(false)}
	case CLIPEager:
		return variantInfo{layers: [2]string{"/vision_model/encoder/layers.0/self_attn", "/vision_model/encoder/layers.1/self_attn"}, outMod: "out_proj", core: coreCLIP}
	case HFEager4D, Float16:
		return variantInfo{layers: [2]string{"/encoder/layers.0/self_attn", "/encoder/layers.1/self_attn"}, outMod: "o_proj", core: coreHF4D}
	case DINOv2Eager:
		return variantInfo{layers: [2]string{"/encoder/layer.0/attention/attention", "/encoder/layer.1/attention/attention"}, outMod: "../output/dense", core: coreDINO}
	case SDPAScaled:
		return variantInfo{layers: [2]string{"/encoder/layers.0/self_attn", "/encoder/layers.1/self_attn"}, outMod: "o_proj", core: coreSDPA(true)}
	case Dynamo:
		return variantInfo{cross: true, layers: [2]string{"/blocks.0/attn", "/blocks.1/cross_attn"}, outMod: "proj", core: coreSDPA(true)}
	case MultiHead:
		return variantInfo{cross: true, layers: diff, outMod: "to_out.0", core: coreMHA}
	case MultiHeadPackedQKV:
		return variantInfo{layers: [2]string{"/transformer_blocks.0/attn1", "/transformer_blocks.1/attn1"}, outMod: "to_out.0", core: coreMHAPackedQKV, parallel: true}
	case MultiHeadPackedKV:
		return variantInfo{cross: true, layers: diff, outMod: "to_out.0", core: coreMHAPackedKV, parallel: true}
	case MSAttention:
		return variantInfo{layers: [2]string{"/encoder/layer.0/attention", "/encoder/layer.1/attention"}, outMod: "output/dense", core: coreMSAttention}
	case ONNXAttention:
		return variantInfo{cross: true, layers: [2]string{"/layers.0/attn", "/layers.1/attn"}, outMod: "out_proj", core: coreONNXAttention}
	case ONNXAttention4D:
		return variantInfo{cross: true, layers: [2]string{"/layers.0/attn", "/layers.1/attn"}, outMod: "out_proj", core: coreONNXAttention4D}
	case GroupedQuery:
		return variantInfo{layers: [2]string{"/layers.0/self_attn", "/layers.1/self_attn"}, outMod: "o_proj", core: coreGQA}
	case Quantized:
		return variantInfo{layers: [2]string{"/encoder/layers.0/self_attn", "/encoder/layers.1/self_attn"}, outMod: "out_proj", core: coreQuantized(quantLinear)}
	case QuantizedFused:
		return variantInfo{layers: [2]string{"/encoder/layers.0/self_attn", "/encoder/layers.1/self_attn"}, outMod: "out_proj", core: coreQuantized(quantFused)}
	case Quantized4Bit:
		return variantInfo{layers: [2]string{"/encoder/layers.0/self_attn", "/encoder/layers.1/self_attn"}, outMod: "out_proj", core: coreQuantized(quant4Bit)}
	}
	panic("testgraphs: unknown variant " + string(v))
}

// Expected is the layer name Find should report for a module path of a variant.
func expectedName(path string) string {
	p := path
	if len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	out := []byte(p)
	for i, c := range out {
		if c == '/' {
			out[i] = '.'
		}
	}
	return string(out)
}

// Attention generates a two-layer graph of one variant: a self-attention layer, then a
// cross-attention layer on encoder_hidden_states where the variant has one (else a second
// self-attention). Input hidden_states [B, S, C]; output last_hidden_state.
func Attention(v Variant, o Options) (*onnxpb.ModelProto, Truth) {
	vi := info(v)
	g := newGB(string(v), o.Seed)
	g.dynamo = v == Dynamo || v == ONNXAttention4D
	var truth Truth
	x := g.Input("hidden_states", onnx.Float, -1, -1, int64(o.Channels))
	truth.Inputs = append(truth.Inputs, Input{"hidden_states", onnx.Float, []int64{int64(o.Batch), int64(o.Tokens), int64(o.Channels)}})
	var ctx string
	if vi.cross {
		ctx = g.Input("encoder_hidden_states", onnx.Float, -1, -1, int64(o.CtxChannels))
		truth.Inputs = append(truth.Inputs, Input{"encoder_hidden_states", onnx.Float, []int64{int64(o.Batch), int64(o.CtxTokens), int64(o.CtxChannels)}})
	}
	if v == SDPAScaled {
		// An additive mask before Softmax, fed as zeros by tests so the reference stays plain.
		g.Input("attention_mask", onnx.Float, -1, 1, -1, -1)
		truth.Inputs = append(truth.Inputs, Input{"attention_mask", onnx.Float, []int64{int64(o.Batch), 1, int64(o.Tokens), int64(o.Tokens)}})
	}
	switch v {
	case ONNXAttention, ONNXAttention4D, GroupedQuery:
		g.Opset("", 23)
		g.IR = 11
	case MultiHead, MultiHeadPackedQKV, MultiHeadPackedKV, MSAttention, Quantized, QuantizedFused, Quantized4Bit:
		g.Opset("com.microsoft", 1)
	}
	h := x
	if v == Float16 {
		g.fp16 = true
		truth.Float16 = true
		h = g.scope("/encoder").node("Cast", []string{x}, onnx.AttrInt("to", int64(onnx.Float16)))
	}
	in := h
	for i, path := range vi.layers {
		if vi.parallel {
			h = in
		}
		s := g.scope(path)
		block := g.scope(path[:lastSlash(path)])
		var norm string
		switch {
		case v == Float16:
			norm = h // float16 LayerNormalization is not on every CPU build
		default:
			// diffusers' BasicTransformerBlock: norm1 before attn1, norm2 before attn2.
			ns := block.sub("norm1")
			if strings.HasSuffix(path, "attn2") {
				ns = block.sub("norm2")
			}
			norm = ns.layerNorm(h, o.Channels)
		}
		q, kv, inKV := norm, norm, o.Channels
		kind := "self"
		if i == 1 && vi.cross {
			kv, inKV, kind = ctx, o.CtxChannels, "cross"
		}
		lt := LayerTruth{Name: expectedName(path), Kind: kind, Heads: o.Heads, HeadDim: o.Channels / o.Heads,
			Scale: 1 / math.Sqrt(float64(o.Channels/o.Heads)), QIn: q, KIn: kv, VIn: kv, InQ: o.Channels, InKV: inKV, Tokens: o.Tokens}
		if v == MSAttention {
			lt.Name = expectedName(path[:lastSlash(path)]) // the fused node has no scope: named after its block
		}
		out := vi.core(s, q, kv, o.Channels, inKV, o, &lt)
		lt.Out = out
		om := s.sub(vi.outMod)
		if vi.outMod[0] == '.' {
			om = g.scope(path[:lastSlash(path)] + vi.outMod[2:])
		}
		proj, _, _ := om.linear(out, o.Channels, o.Channels, true)
		h = block.node("Add", []string{h, proj})
		truth.Layers = append(truth.Layers, lt)
		if vi.parallel && i == 1 {
			h = g.scope("").node("Add", []string{h, truth.Layers[0].Out})
		}
	}
	if v == Float16 {
		h = g.scope("/encoder").node("Cast", []string{h}, onnx.AttrInt("to", int64(onnx.Float)))
	}
	last := g.scope("").node("Identity", []string{h})
	g.Last().Output[0] = "last_hidden_state"
	_ = last
	g.Output("last_hidden_state", onnx.Float, -1, -1, int64(o.Channels))
	return g.model(), truth
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return 0
}

// headsTo3D is diffusers' head_to_batch_dim: [B, S, C] → [B·H, S, D] with every size read at
// run time and the head count the only constant.
func headsTo3D(s scope, t string, heads int) string {
	b, n, c := s.dim(t, 0), s.dim(t, 1), s.dim(t, 2)
	d := s.node("Div", []string{c, s.g.scalarInt(int64(heads))})
	r := s.reshape(t, s.shape(b, n, heads, d))
	r = s.transpose(r, 0, 2, 1, 3)
	bh := s.node("Mul", []string{b, s.g.scalarInt(int64(heads))})
	return s.reshape(r, s.shape(bh, n, d))
}

// heads3DTo2D is batch_to_head_dim: [B·H, S, D] → [B, S, H·D].
func heads3DTo2D(s scope, t string, heads int) string {
	bh, n, d := s.dim(t, 0), s.dim(t, 1), s.dim(t, 2)
	b := s.node("Div", []string{bh, s.g.scalarInt(int64(heads))})
	r := s.reshape(t, s.shape(b, heads, n, d))
	r = s.transpose(r, 0, 2, 1, 3)
	c := s.node("Mul", []string{d, s.g.scalarInt(int64(heads))})
	return s.reshape(r, s.shape(b, n, c))
}

func coreBaddbmm(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c := o.Channels
	q, wq, _ := s.sub("to_q").linear(x, inQ, c, false)
	k, wk, _ := s.sub("to_k").linear(kv, inKV, c, false)
	v, wv, _ := s.sub("to_v").linear(kv, inKV, c, false)
	t.Wq, t.Wk, t.Wv = wq, wk, wv
	q3, k3, v3 := headsTo3D(s, q, o.Heads), headsTo3D(s, k, o.Heads), headsTo3D(s, v, o.Heads)
	kt := s.transpose(k3, 0, 2, 1)
	scores := s.node("MatMul", []string{q3, kt})
	scaled := s.node("Mul", []string{scores, s.g.scalar(float32(t.Scale))})
	empty := s.node("ConstantOfShape", []string{s.node("Shape", []string{scores})}, onnx.AttrTensor("value", onnx.FloatTensor("value", []int64{1}, []float32{0})))
	zero := s.node("Mul", []string{empty, s.g.scalar(0)})
	sum := s.node("Add", []string{zero, scaled})
	p := s.node("Softmax", []string{sum}, onnx.AttrInt("axis", -1))
	p = s.node("Cast", []string{p}, onnx.AttrInt("to", int64(onnx.Float)))
	out := s.node("MatMul", []string{p, v3})
	return heads3DTo2D(s, out, o.Heads)
}

// coreSDPA is torch's scaled_dot_product_attention through the TorchScript exporter. With
// constScale the caller passed a scale (Hugging Face): the sqrt-scale Muls are constants;
// otherwise (diffusers AttnProcessor2_0) they read the head size at run time.
func coreSDPA(constScale bool) func(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	return func(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
		c, h, d := o.Channels, o.Heads, o.Channels/o.Heads
		bias := constScale
		q, wq, bq := s.sub("to_q").linear(x, inQ, c, bias)
		k, wk, bk := s.sub("to_k").linear(kv, inKV, c, bias)
		v, wv, bv := s.sub("to_v").linear(kv, inKV, c, bias)
		t.Wq, t.Wk, t.Wv, t.Bq, t.Bk, t.Bv = wq, wk, wv, bq, bk, bv
		split := func(y string) string {
			b := s.dim(y, 0)
			return s.transpose(s.reshape(y, s.shape(b, -1, h, d)), 0, 2, 1, 3)
		}
		q4, k4, v4 := split(q), split(k), split(v)
		var sq string
		if constScale {
			sq = s.g.scalar(float32(math.Sqrt(t.Scale)))
		} else {
			sh := s.node("Shape", []string{q4})
			last := s.node("Slice", []string{sh, s.g.ints(-1), s.g.ints(math.MaxInt64)})
			f := s.node("Cast", []string{last}, onnx.AttrInt("to", int64(onnx.Float)))
			root := s.node("Sqrt", []string{f})
			inv := s.node("Div", []string{s.g.scalar(1), root})
			sq = s.node("Sqrt", []string{inv})
		}
		var kt string
		if s.g.dynamo {
			// The dynamo exporter transposes K through a 3-D view and back.
			n := s.dim(k4, 2)
			r := s.reshape(k4, s.shape(-1, n, d))
			r = s.transpose(r, 0, 2, 1)
			kt = s.reshape(r, s.shape(s.dim(k4, 0), h, d, n))
		} else {
			kt = s.transpose(k4, 0, 1, 3, 2)
		}
		qs := s.node("Mul", []string{q4, sq})
		ks := s.node("Mul", []string{kt, sq})
		scores := s.node("MatMul", []string{qs, ks})
		if t.Kind == "self" && s.g.Graph() != nil && hasInput(s.g, "attention_mask") {
			scores = s.node("Add", []string{scores, "attention_mask"})
		}
		p := s.node("Softmax", []string{scores}, onnx.AttrInt("axis", -1))
		if constScale {
			// With a mask the exporter guards fully masked rows: Where(IsNaN(P), 0, P).
			p = s.node("Where", []string{s.node("IsNaN", []string{p}), s.g.scalar(0), p})
		}
		out := s.node("MatMul", []string{p, v4})
		out = s.transpose(out, 0, 2, 1, 3)
		return s.reshape(out, s.shape(s.dim(out, 0), -1, c))
	}
}

func hasInput(g *gb, name string) bool {
	for _, in := range g.Graph().GetInput() {
		if in.GetName() == name {
			return true
		}
	}
	return false
}

func coreCLIP(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	return clipAttention(s, x, kv, inQ, inKV, o, t, "")
}

// clipAttention is CLIP's eager attention; mask is an additive [1, 1, S, S] causal mask, or ""
// for a zero mask (the vision tower keeps the reshape-add-reshape but adds nothing).
func clipAttention(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth, mask string) string {
	c, h, d := o.Channels, o.Heads, o.Channels/o.Heads
	q, wq, bq := s.sub("q_proj").linear(x, inQ, c, true)
	q = s.node("Mul", []string{q, s.g.scalar(float32(t.Scale))})
	k, wk, bk := s.sub("k_proj").linear(kv, inKV, c, true)
	v, wv, bv := s.sub("v_proj").linear(kv, inKV, c, true)
	t.Wq, t.Wk, t.Wv, t.Bq, t.Bk, t.Bv = wq, wk, wv, bq, bk, bv
	b, n := s.dim(x, 0), s.dim(x, 1)
	shapeHeads := func(y string) string {
		r := s.reshape(y, s.shape(b, n, h, d))
		r = s.transpose(r, 0, 2, 1, 3)
		return s.reshape(r, s.shape(s.node("Mul", []string{b, s.g.scalarInt(int64(h))}), -1, d))
	}
	q3, k3, v3 := shapeHeads(q), shapeHeads(k), shapeHeads(v)
	scores := s.node("MatMul", []string{q3, s.transpose(k3, 0, 2, 1)})
	// The causal-mask reshape dance, with a zero mask so the maths stays plain.
	r := s.reshape(scores, s.shape(b, h, n, -1))
	if mask == "" {
		mask = s.g.scalar(0)
	}
	r = s.node("Add", []string{r, mask})
	scores = s.reshape(r, s.shape(s.node("Mul", []string{b, s.g.scalarInt(int64(h))}), n, -1))
	p := s.node("Softmax", []string{scores}, onnx.AttrInt("axis", -1))
	out := s.node("MatMul", []string{p, v3})
	out = s.reshape(out, s.shape(b, h, n, d))
	out = s.transpose(out, 0, 2, 1, 3)
	return s.reshape(out, s.shape(b, n, c))
}

func coreHF4D(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c, d := o.Channels, o.Channels/o.Heads
	q, wq, bq := s.sub("q_proj").linear(x, inQ, c, true)
	k, wk, bk := s.sub("k_proj").linear(kv, inKV, c, true)
	v, wv, bv := s.sub("v_proj").linear(kv, inKV, c, true)
	t.Wq, t.Wk, t.Wv, t.Bq, t.Bk, t.Bv = wq, wk, wv, bq, bk, bv
	b, n := s.dim(x, 0), s.dim(x, 1)
	hidden := s.shape(b, n, -1, d)
	q4 := s.transpose(s.reshape(q, hidden), 0, 2, 1, 3)
	kt := s.transpose(s.reshape(k, hidden), 0, 2, 3, 1)
	v4 := s.transpose(s.reshape(v, hidden), 0, 2, 1, 3)
	scores := s.node("MatMul", []string{q4, kt})
	scores = s.node("Mul", []string{scores, s.g.scalar(float32(t.Scale))})
	scores = s.node("Cast", []string{scores}, onnx.AttrInt("to", int64(onnx.Float)))
	p := s.node("Softmax", []string{scores}, onnx.AttrInt("axis", -1))
	if s.g.fp16 {
		p = s.node("Cast", []string{p}, onnx.AttrInt("to", int64(onnx.Float16)))
		t.Scale = float64(onnx.HalfToFloat(onnx.FloatToHalf(float32(t.Scale))))
	}
	out := s.node("MatMul", []string{p, v4})
	out = s.transpose(out, 0, 2, 1, 3)
	return s.reshape(out, s.shape(b, n, -1))
}

func coreDINO(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c, h, d := o.Channels, o.Heads, o.Channels/o.Heads
	q, wq, bq := s.sub("query").linear(x, inQ, c, true)
	k, wk, bk := s.sub("key").linear(kv, inKV, c, true)
	v, wv, bv := s.sub("value").linear(kv, inKV, c, true)
	t.Wq, t.Wk, t.Wv, t.Bq, t.Bk, t.Bv = wq, wk, wv, bq, bk, bv
	b, n := s.dim(x, 0), s.dim(x, 1)
	split := s.shape(b, n, h, d)
	q4 := s.transpose(s.reshape(q, split), 0, 2, 1, 3)
	kt := s.transpose(s.reshape(k, split), 0, 2, 3, 1)
	v4 := s.transpose(s.reshape(v, split), 0, 2, 1, 3)
	scores := s.node("MatMul", []string{q4, kt})
	scores = s.node("Div", []string{scores, s.g.scalar(float32(math.Sqrt(float64(d))))})
	p := s.node("Softmax", []string{scores}, onnx.AttrInt("axis", -1))
	out := s.node("MatMul", []string{p, v4})
	out = s.transpose(out, 0, 2, 1, 3)
	return s.reshape(out, s.shape(b, n, c))
}

func coreMHA(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c := o.Channels
	q, wq, _ := s.sub("to_q").linear(x, inQ, c, false)
	k, wk, _ := s.sub("to_k").linear(kv, inKV, c, false)
	v, wv, _ := s.sub("to_v").linear(kv, inKV, c, false)
	bname, bias := s.g.weight([]int64{int64(3 * c)}, 0.1)
	t.Wq, t.Wk, t.Wv = wq, wk, wv
	t.Bq, t.Bk, t.Bv = bias[:c], bias[c:2*c], bias[2*c:]
	return fusedMHA(s, []string{q, k, v, bname}, o)
}

func fusedMHA(s scope, ins []string, o Options) string {
	g := s.g
	g.counter++
	return g.NodeIn("com.microsoft", "MultiHeadAttention", fmt.Sprintf("MultiHeadAttention_%d", g.counter), ins, 1, onnx.AttrInt("num_heads", int64(o.Heads)))[0]
}

// interleave packs per-projection weights [in, H·D] into [in, H·n·D] with the n projections
// interleaved per head, as [B, S, H, n, D] expects.
func interleave(in, heads, d int, ws ...[]float32) []float32 {
	n := len(ws)
	out := make([]float32, in*heads*n*d)
	for r := range in {
		for h := range heads {
			for j, w := range ws {
				copy(out[r*heads*n*d+h*n*d+j*d:][:d], w[r*heads*d+h*d:][:d])
			}
		}
	}
	return out
}

func (g *gb) floats(dims []int64, vals []float32) string {
	g.consts++
	return g.Floats(fmt.Sprintf("onnx::MatMul_%d", g.consts), dims, vals)
}

func coreMHAPackedQKV(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c, h, d := o.Channels, o.Heads, o.Channels/o.Heads
	std := 1 / math.Sqrt(float64(inQ))
	_, wq := s.g.weight([]int64{int64(inQ), int64(c)}, std)
	_, wk := s.g.weight([]int64{int64(inQ), int64(c)}, std)
	_, wv := s.g.weight([]int64{int64(inQ), int64(c)}, std)
	t.Wq, t.Wk, t.Wv = wq, wk, wv
	w := s.g.floats([]int64{int64(inQ), int64(3 * c)}, interleave(inQ, h, d, wq, wk, wv))
	qkv := s.sub("to_qkv").node("MatMul", []string{x, w})
	packed := s.reshape(qkv, s.g.ints(0, 0, int64(h), 3, int64(d)))
	return fusedMHA(s, []string{packed}, o)
}

func coreMHAPackedKV(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c, h, d := o.Channels, o.Heads, o.Channels/o.Heads
	if t.Kind == "self" {
		return coreMHA(s, x, kv, inQ, inKV, o, t)
	}
	q, wq, _ := s.sub("to_q").linear(x, inQ, c, false)
	std := 1 / math.Sqrt(float64(inKV))
	_, wk := s.g.weight([]int64{int64(inKV), int64(c)}, std)
	_, wv := s.g.weight([]int64{int64(inKV), int64(c)}, std)
	t.Wq, t.Wk, t.Wv = wq, wk, wv
	w := s.g.floats([]int64{int64(inKV), int64(2 * c)}, interleave(inKV, h, d, wk, wv))
	kvp := s.sub("to_kv").node("MatMul", []string{kv, w})
	packed := s.reshape(kvp, s.g.ints(0, 0, int64(h), 2, int64(d)))
	return fusedMHA(s, []string{q, packed}, o)
}

func coreMSAttention(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c := o.Channels
	std := 1 / math.Sqrt(float64(inQ))
	_, wq := s.g.weight([]int64{int64(inQ), int64(c)}, std)
	_, wk := s.g.weight([]int64{int64(inQ), int64(c)}, std)
	_, wv := s.g.weight([]int64{int64(inQ), int64(c)}, std)
	t.Wq, t.Wk, t.Wv = wq, wk, wv
	merged := make([]float32, 0, inQ*3*c)
	for r := range inQ {
		merged = append(merged, wq[r*c:(r+1)*c]...)
		merged = append(merged, wk[r*c:(r+1)*c]...)
		merged = append(merged, wv[r*c:(r+1)*c]...)
	}
	w := s.g.floats([]int64{int64(inQ), int64(3 * c)}, merged)
	bname, bias := s.g.weight([]int64{int64(3 * c)}, 0.1)
	t.Bq, t.Bk, t.Bv = bias[:c], bias[c:2*c], bias[2*c:]
	g := s.g
	g.counter++
	return g.NodeIn("com.microsoft", "Attention", fmt.Sprintf("Attention_%d", g.counter), []string{x, w, bname}, 1, onnx.AttrInt("num_heads", int64(o.Heads)))[0]
}

func coreONNXAttention(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c := o.Channels
	q, wq, bq := s.sub("q_proj").linear(x, inQ, c, true)
	k, wk, bk := s.sub("k_proj").linear(kv, inKV, c, true)
	v, wv, bv := s.sub("v_proj").linear(kv, inKV, c, true)
	t.Wq, t.Wk, t.Wv, t.Bq, t.Bk, t.Bv = wq, wk, wv, bq, bk, bv
	return s.node("Attention", []string{q, k, v}, onnx.AttrInt("q_num_heads", int64(o.Heads)), onnx.AttrInt("kv_num_heads", int64(o.Heads)))
}

// coreGQA is grouped-query attention as Llama-style models export it at opset 23: the key and
// value projections are narrower (KVHeads = Heads/2 heads of the same size) and query head h
// reads key/value head h·KVHeads/Heads.
func coreGQA(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c := o.Channels
	kvHeads := max(1, o.Heads/2)
	kvc := kvHeads * c / o.Heads
	q, wq, bq := s.sub("q_proj").linear(x, inQ, c, true)
	k, wk, bk := s.sub("k_proj").linear(kv, inKV, kvc, true)
	v, wv, bv := s.sub("v_proj").linear(kv, inKV, kvc, true)
	t.Wq, t.Wk, t.Wv, t.Bq, t.Bk, t.Bv = wq, wk, wv, bq, bk, bv
	t.KVHeads = kvHeads
	return s.node("Attention", []string{q, k, v}, onnx.AttrInt("q_num_heads", int64(o.Heads)), onnx.AttrInt("kv_num_heads", int64(kvHeads)))
}

func coreQuantized(linear func(s scope, x string, in, out int) (string, []float32)) func(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	return func(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
		c, h, d := o.Channels, o.Heads, o.Channels/o.Heads
		q, wq := linear(s.sub("q_proj"), x, inQ, c)
		k, wk := linear(s.sub("k_proj"), kv, inKV, c)
		v, wv := linear(s.sub("v_proj"), kv, inKV, c)
		t.Wq, t.Wk, t.Wv = wq, wk, wv
		b, n := s.dim(x, 0), s.dim(x, 1)
		split := s.shape(b, n, h, d)
		q4 := s.transpose(s.reshape(q, split), 0, 2, 1, 3)
		kt := s.transpose(s.reshape(k, split), 0, 2, 3, 1)
		v4 := s.transpose(s.reshape(v, split), 0, 2, 1, 3)
		scores := s.node("MatMul", []string{q4, kt})
		scores = s.node("Mul", []string{scores, s.g.scalar(float32(t.Scale))})
		p := s.node("Softmax", []string{scores}, onnx.AttrInt("axis", -1))
		out := s.node("MatMul", []string{p, v4})
		out = s.transpose(out, 0, 2, 1, 3)
		return s.reshape(out, s.shape(b, n, c))
	}
}

// int8Weight adds a random int8 weight [in, out] and its zero point.
func (g *gb) int8Weight(in, out int) (w, zp string) {
	raw := make([]byte, in*out)
	for i := range raw {
		raw[i] = byte(int8(g.rng.IntN(255) - 127))
	}
	g.consts++
	w = g.Initializer(&onnxpb.TensorProto{Name: fmt.Sprintf("onnx::MatMul_%d_quantized", g.consts), Dims: []int64{int64(in), int64(out)}, DataType: int32(onnxpb.TensorProto_INT8), RawData: raw})
	g.consts++
	zp = g.Initializer(&onnxpb.TensorProto{Name: fmt.Sprintf("onnx::MatMul_%d_zero_point", g.consts), DataType: int32(onnxpb.TensorProto_INT8), RawData: []byte{0}})
	return w, zp
}

// quantLinear is onnxruntime's dynamic quantisation of a MatMul (+ bias), unfused.
func quantLinear(s scope, x string, in, out int) (string, []float32) {
	g := s.g
	q := s.nodeIn("", "DynamicQuantizeLinear", []string{x}, 3)
	w, wzp := g.int8Weight(in, out)
	mm := s.node("MatMulInteger", []string{q[0], w, q[2], wzp})
	f := s.node("Cast", []string{mm}, onnx.AttrInt("to", int64(onnx.Float)))
	scale := s.node("Mul", []string{q[1], g.scalar(float32(1 / (127 * math.Sqrt(float64(in)))))})
	y := s.node("Mul", []string{f, scale})
	bn, _ := g.weight([]int64{int64(out)}, 0.1)
	return s.node("Add", []string{bn, y}), nil
}

// quantFused is the same after ONNX Runtime's fusion: MatMulIntegerToFloat with the bias.
func quantFused(s scope, x string, in, out int) (string, []float32) {
	g := s.g
	q := s.nodeIn("", "DynamicQuantizeLinear", []string{x}, 3)
	w, wzp := g.int8Weight(in, out)
	bscale := g.scalar(float32(1 / (127 * math.Sqrt(float64(in)))))
	bn, _ := g.weight([]int64{int64(out)}, 0.1)
	return s.nodeIn("com.microsoft", "MatMulIntegerToFloat", []string{q[0], w, q[1], bscale, q[2], wzp, bn}, 1)[0], nil
}

// quant4Bit is MatMulNBits with 4-bit blocks of 16 and the default zero point 8; the truth
// weights are the dequantised values, so the projection is checked exactly.
func quant4Bit(s scope, x string, in, out int) (string, []float32) {
	g := s.g
	const block = 16
	blocks := (in + block - 1) / block
	packed := make([]byte, out*blocks*block/2)
	scales := make([]float32, out*blocks)
	w := make([]float32, in*out) // [in, out]
	for n := range out {
		for b := range blocks {
			scale := float32(0.05 + 0.05*g.rng.Float64())
			scales[n*blocks+b] = scale
			for j := range block {
				k := b*block + j
				q := g.rng.IntN(16)
				if k < in {
					w[k*out+n] = float32(q-8) * scale
				}
				idx := (n*blocks+b)*block/2 + j/2
				if j%2 == 0 {
					packed[idx] |= byte(q)
				} else {
					packed[idx] |= byte(q) << 4
				}
			}
		}
	}
	g.consts++
	bname := g.Initializer(&onnxpb.TensorProto{Name: fmt.Sprintf("onnx::MatMul_%d_Q4", g.consts), Dims: []int64{int64(out), int64(blocks), block / 2}, DataType: int32(onnxpb.TensorProto_UINT8), RawData: packed})
	g.consts++
	sname := g.Floats(fmt.Sprintf("onnx::MatMul_%d_scales", g.consts), []int64{int64(out * blocks)}, scales)
	y := s.nodeIn("com.microsoft", "MatMulNBits", []string{x, bname, sname}, 1,
		onnx.AttrInt("K", int64(in)), onnx.AttrInt("N", int64(out)), onnx.AttrInt("bits", 4), onnx.AttrInt("block_size", block))[0]
	return y, w
}

func coreONNXAttention4D(s scope, x, kv string, inQ, inKV int, o Options, t *LayerTruth) string {
	c, h, d := o.Channels, o.Heads, o.Channels/o.Heads
	q, wq, bq := s.sub("q_proj").linear(x, inQ, c, true)
	k, wk, bk := s.sub("k_proj").linear(kv, inKV, c, true)
	v, wv, bv := s.sub("v_proj").linear(kv, inKV, c, true)
	t.Wq, t.Wk, t.Wv, t.Bq, t.Bk, t.Bv = wq, wk, wv, bq, bk, bv
	split := func(y string) string {
		return s.transpose(s.reshape(y, s.g.ints(0, 0, int64(h), int64(d))), 0, 2, 1, 3)
	}
	out := s.node("Attention", []string{split(q), split(k), split(v)})
	out = s.transpose(out, 0, 2, 1, 3)
	return s.reshape(out, s.g.ints(0, 0, int64(c)))
}
