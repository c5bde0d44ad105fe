package testgraphs

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// ViTOptions size a runnable vision transformer: a patch embedding in front of Attention's
// two layers.
type ViTOptions struct {
	Batch                        int // batch size the returned Truth's input shape gives
	Crop, Patch, Channels, Heads int
	Seed                         uint64
}

// TinyViT is 4×4 patches of 14 px (a 56 px crop) plus CLS, 17 tokens of width 16, 2 heads.
func TinyViT() ViTOptions {
	return ViTOptions{Batch: 2, Crop: 56, Patch: 14, Channels: 16, Heads: 2, Seed: 1}
}

// ViT puts a patch embedding in front of the two-layer encoder Attention generates for
// variant v (a self-attention variant: DINOv2Eager, CLIPEager, HFEager4D, …):
// pixel_values [B, 3, crop, crop] → Conv(patch, stride patch) → tokens → a zero CLS token in
// front → position embedding → the encoder → last_hidden_state [B, tokens, C]; pooler_output
// [B, C] is the CLS token of the last hidden state. The Truth is Attention's, with
// pixel_values as the only input.
func ViT(v Variant, o ViTOptions) (*onnxpb.ModelProto, Truth) {
	side := o.Crop / o.Patch
	tokens := side*side + 1
	ao := DefaultOptions()
	ao.Batch, ao.Channels, ao.Heads, ao.Tokens, ao.Seed = o.Batch, o.Channels, o.Heads, tokens, o.Seed
	m, truth := Attention(v, ao)
	g := m.GetGraph()
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if in.GetName() != "hidden_states" {
			inputs = append(inputs, in)
		}
	}
	b := onnx.NewBuilder("stem")
	r := rand.New(rand.NewPCG(o.Seed, o.Seed))
	weights := func(n int, s float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(r.NormFloat64() * s)
		}
		return out
	}
	c, p, crop := int64(o.Channels), int64(o.Patch), int64(o.Crop)
	px := b.Input("pixel_values", onnx.Float, -1, 3, crop, crop)
	x := b.Node("Conv", "/embeddings/patch_embeddings/projection/Conv", []string{px, b.Floats("patch_w", []int64{c, 3, p, p}, weights(int(c*3*p*p), 0.05))},
		onnx.AttrInts("strides", p, p))
	x = b.Node("Reshape", "/embeddings/Reshape", []string{x, b.Ints("flat", []int64{3}, []int64{0, c, -1})})
	x = b.Node("Transpose", "/embeddings/Transpose", []string{x}, onnx.AttrInts("perm", 0, 2, 1))
	x = b.Node("Pad", "/embeddings/cls", []string{x, b.Ints("cls_pads", []int64{6}, []int64{0, 1, 0, 0, 0, 0})})
	b.Node("Add", "/embeddings/position", []string{x, b.Floats("pos", []int64{1, int64(tokens), c}, weights(tokens*o.Channels, 0.5))})
	b.Last().Output[0] = "hidden_states"
	stem := b.Graph()
	g.Node = append(stem.Node, g.Node...)
	g.Initializer = append(g.Initializer, stem.Initializer...)
	g.Input = append(stem.Input, inputs...)
	pool := &onnxpb.NodeProto{Name: "/pooler/Gather", OpType: "Gather", Input: []string{"last_hidden_state", "pool_index"}, Output: []string{"pooler_output"}, Attribute: []*onnxpb.AttributeProto{onnx.AttrInt("axis", 1)}}
	g.Node = append(g.Node, pool)
	g.Initializer = append(g.Initializer, onnx.IntTensor("pool_index", nil, []int64{0}))
	g.Output = append(g.Output, onnx.ValueInfo("pooler_output", onnx.Float, -1, c))
	truth.Inputs = []Input{{"pixel_values", onnx.Float, []int64{int64(o.Batch), 3, crop, crop}}}
	return m, truth
}

// CLIPVisionOptions size a CLIP vision encoder.
type CLIPVisionOptions struct {
	Width, Heads, Layers int
	Patch                int // patch side in pixels at 224 px: 32 (ViT-B/32, the default) or 16
	// DecomposedLN writes the layers' LayerNorms as ReduceMean → Sub → Pow → … → Add, as
	// older exporters do, instead of LayerNormalization nodes.
	DecomposedLN bool
}

// TinyCLIPVision is three layers of width 24 with two heads.
func TinyCLIPVision() CLIPVisionOptions { return CLIPVisionOptions{Width: 24, Heads: 2, Layers: 3} }

// CLIPVision generates a CLIP-vision-shaped encoder (the image encoder IP-Adapter reads) as
// Hugging Face's eager code exports it: pixel_values [B, 3, 224, 224] → 32-px patches + CLS +
// positions → pre_layrnorm → layers of (layer_norm1 → self_attn → residual, layer_norm2 →
// fc1 → GELU → fc2 → residual) → post_layernorm of CLS → visual_projection → image_embeds
// [B, 8]; last_hidden_state [B, 50, width] is an output too. It returns the graph and the
// name of hidden_states[-2], the output of the second-to-last layer (the input of the last).
func CLIPVision(o CLIPVisionOptions) (*onnxpb.ModelProto, string) {
	b := onnx.NewBuilder("main_graph")
	rng := rand.New(rand.NewPCG(11, 13))
	n := 0
	w := func(std float64, mean float32, dims ...int64) string {
		n++
		k := int64(1)
		for _, d := range dims {
			k *= d
		}
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(rng.NormFloat64()*std) + mean
		}
		return b.Floats(fmt.Sprintf("onnx::MatMul_%d", n), dims, v)
	}
	ints := func(vals ...int64) string {
		n++
		return b.Ints(fmt.Sprintf("onnx::Const_%d", n), []int64{int64(len(vals))}, vals)
	}
	scalar := func(v float32) string {
		n++
		return b.Scalar(fmt.Sprintf("onnx::Scalar_%d", n), v)
	}
	c := int64(o.Width)
	patch := int64(o.Patch)
	if patch == 0 {
		patch = 32
	}
	tokens := (224/patch)*(224/patch) + 1
	ln := func(scope, x string, decomposed bool) string {
		g, beta := w(0.2, 1, c), w(0.1, 0, c)
		if !decomposed {
			return b.Node("LayerNormalization", scope+"/LayerNormalization", []string{x, g, beta}, onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-5))
		}
		mean := b.Node("ReduceMean", scope+"/ReduceMean", []string{x}, onnx.AttrInts("axes", -1))
		d := b.Node("Sub", scope+"/Sub", []string{x, mean})
		v := b.Node("ReduceMean", scope+"/ReduceMean_1", []string{b.Node("Pow", scope+"/Pow", []string{d, scalar(2)})}, onnx.AttrInts("axes", -1))
		s := b.Node("Sqrt", scope+"/Sqrt", []string{b.Node("Add", scope+"/Add", []string{v, scalar(1e-5)})})
		y := b.Node("Div", scope+"/Div", []string{d, s})
		return b.Node("Add", scope+"/Add_1", []string{b.Node("Mul", scope+"/Mul", []string{y, g}), beta})
	}
	linear := func(scope, x string, in, out int64) string {
		y := b.Node("MatMul", scope+"/MatMul", []string{x, w(1/math.Sqrt(float64(in)), 0, in, out)})
		return b.Node("Add", scope+"/Add", []string{w(0.05, 0, out), y})
	}
	px := b.Input("pixel_values", onnx.Float, -1, 3, 224, 224)
	e := "/vision_model/embeddings"
	p := b.Node("Conv", e+"/patch_embedding/Conv", []string{px, w(1/math.Sqrt(float64(3*patch*patch)), 0, c, 3, patch, patch)},
		onnx.AttrInts("kernel_shape", patch, patch), onnx.AttrInts("strides", patch, patch))
	p = b.Node("Transpose", e+"/Transpose", []string{b.Node("Reshape", e+"/Reshape", []string{p, ints(0, c, -1)})}, onnx.AttrInts("perm", 0, 2, 1))
	batch := b.Node("Slice", e+"/Slice", []string{b.Node("Shape", e+"/Shape", []string{px}), ints(0), ints(1)})
	cls := b.Node("Expand", e+"/Expand", []string{w(0.5, 0, 1, 1, c), b.Node("Concat", e+"/Concat", []string{batch, ints(1, c)}, onnx.AttrInt("axis", 0))})
	h := b.Node("Concat", e+"/Concat_1", []string{cls, p}, onnx.AttrInt("axis", 1))
	h = b.Node("Add", e+"/Add", []string{h, w(0.5, 0, 1, tokens, c)})
	h = ln("/vision_model/pre_layrnorm", h, false)
	d := c / int64(o.Heads)
	penultimate := ""
	for i := range o.Layers {
		if i == o.Layers-1 {
			penultimate = h
		}
		s := fmt.Sprintf("/vision_model/encoder/layers.%d", i)
		x := ln(s+"/layer_norm1", h, o.DecomposedLN)
		a := s + "/self_attn"
		q := b.Node("Mul", a+"/Mul", []string{linear(a+"/q_proj", x, c, c), scalar(float32(1 / math.Sqrt(float64(d))))})
		k := linear(a+"/k_proj", x, c, c)
		v := linear(a+"/v_proj", x, c, c)
		split := func(name, t string, perm ...int64) string {
			r := b.Node("Reshape", a+"/"+name+"/Reshape", []string{t, ints(0, 0, int64(o.Heads), d)})
			return b.Node("Transpose", a+"/"+name+"/Transpose", []string{r}, onnx.AttrInts("perm", perm...))
		}
		sc := b.Node("MatMul", a+"/MatMul", []string{split("q", q, 0, 2, 1, 3), split("k", k, 0, 2, 3, 1)})
		pr := b.Node("Softmax", a+"/Softmax", []string{sc}, onnx.AttrInt("axis", -1))
		out := b.Node("MatMul", a+"/MatMul_1", []string{pr, split("v", v, 0, 2, 1, 3)})
		out = b.Node("Reshape", a+"/Reshape", []string{b.Node("Transpose", a+"/Transpose", []string{out}, onnx.AttrInts("perm", 0, 2, 1, 3)), ints(0, 0, c)})
		h = b.Node("Add", s+"/Add", []string{h, linear(a+"/out_proj", out, c, c)})
		m := ln(s+"/layer_norm2", h, o.DecomposedLN)
		m = linear(s+"/mlp/fc1", m, c, 4*c)
		m = b.Node("Mul", s+"/mlp/Mul", []string{m, b.Node("Sigmoid", s+"/mlp/Sigmoid", []string{b.Node("Mul", s+"/mlp/Mul_1", []string{m, scalar(1.702)})})})
		m = linear(s+"/mlp/fc2", m, 4*c, c)
		h = b.Node("Add", s+"/Add_1", []string{h, m})
	}
	b.Node("Identity", "/vision_model/Identity", []string{h})
	b.Last().Output[0] = "last_hidden_state"
	pooled := b.Node("Gather", "/vision_model/Gather", []string{h, b.Initializer(onnx.IntTensor("onnx::Gather_cls", nil, []int64{0}))}, onnx.AttrInt("axis", 1))
	pooled = ln("/vision_model/post_layernorm", pooled, false)
	emb := b.Node("MatMul", "/visual_projection/MatMul", []string{pooled, w(0.1, 0, c, 8)})
	b.Node("Identity", "/Identity", []string{emb})
	b.Last().Output[0] = "image_embeds"
	b.Output("image_embeds", onnx.Float, -1, 8)
	b.Output("last_hidden_state", onnx.Float, -1, tokens, c)
	return b.Model(), penultimate
}
