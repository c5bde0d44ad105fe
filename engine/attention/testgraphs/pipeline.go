package testgraphs

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// VAEOptions size a VAE encoder.
type VAEOptions struct {
	Batch         int
	Height, Width int // image size; latents are /8
	Channels      int // width of the mid block
	Seed          uint64
	// Parameters outputs latent_parameters (mean ‖ logvar) instead of sampling inside.
	Parameters bool
	// ScaledMean scales the mean (Mul by 0.5) and casts it before the sampling Add, as some
	// exports do: the mean to tap is then the cast value, not the Split's output.
	ScaledMean bool
	// Full builds AutoencoderKL's whole encoder instead of one patchifying convolution:
	// conv_in to 128 channels, four down blocks of two resnets (128, 256, 512, 512; each but
	// the last halving the image), the mid block's resnets around its attention (at Channels),
	// then conv_out. GroupNorm + SiLU between convolutions is written as SiLU alone. SD's VAE
	// encoder at Channels 512: 34 M parameters, the cost a 512 px image really has.
	Full bool
}

// TinyVAE is a runnable miniature at 64×64 px.
func TinyVAE() VAEOptions { return VAEOptions{Batch: 2, Height: 64, Width: 64, Channels: 16, Seed: 5} }

// VAETruth adds what a VAE encoder graph holds beyond its attention layer.
type VAETruth struct {
	Truth
	Mean string // the tensor holding the latent mean, [B, 4, h, w]
}

// VAEEncoder generates an encoder shaped like diffusers' AutoencoderKL encoder as exported:
// input sample [B, 3, H, W]; a single-head attention in encoder.mid_block on [B, C, h·w]
// transposed; moments [B, 8, h, w] split into mean and logvar; output latent_sample drawn
// inside the graph (ConstantOfShape → RandomNormalLike, mean + exp(0.5·logvar)·noise), or
// latent_parameters with Parameters.
func VAEEncoder(o VAEOptions) (*onnxpb.ModelProto, VAETruth) {
	g := newGB("main_graph", o.Seed)
	var truth VAETruth
	sample := g.Input("sample", onnx.Float, -1, 3, -1, -1)
	truth.Inputs = []Input{{"sample", onnx.Float, []int64{int64(o.Batch), 3, int64(o.Height), int64(o.Width)}}}
	u := &unet{gb: g}
	c := o.Channels
	enc := g.scope("/encoder")
	var h string
	if o.Full {
		h = u.vaeDown(enc, sample, c)
	} else {
		// Patchify by 8 in one convolution: the real encoder's down blocks, collapsed.
		w, _ := g.weight([]int64{int64(c), 3, 8, 8}, 1/math.Sqrt(3*64))
		bias, _ := g.weight([]int64{int64(c)}, 0.05)
		h = enc.sub("conv_in").node("Conv", []string{sample, w, bias}, onnx.AttrInts("kernel_shape", 8, 8), onnx.AttrInts("strides", 8, 8))
	}

	s := enc.sub("mid_block/attentions.0")
	x := s.reshape(h, g.ints(0, int64(c), -1))
	x = s.transpose(x, 0, 2, 1)
	lt := LayerTruth{Name: "encoder.mid_block.attentions.0", Kind: "self", Heads: 1, HeadDim: c, Scale: 1 / math.Sqrt(float64(c)),
		QIn: x, KIn: x, VIn: x, InQ: c, InKV: c, Tokens: (o.Height / 8) * (o.Width / 8)}
	q, wq, bq := s.sub("to_q").linear(x, c, c, true)
	k, wk, bk := s.sub("to_k").linear(x, c, c, true)
	v, wv, bv := s.sub("to_v").linear(x, c, c, true)
	lt.Wq, lt.Wk, lt.Wv, lt.Bq, lt.Bk, lt.Bv = wq, wk, wv, bq, bk, bv
	q3, k3, v3 := headsTo3D(s, q, 1), headsTo3D(s, k, 1), headsTo3D(s, v, 1)
	scores := s.node("MatMul", []string{q3, s.transpose(k3, 0, 2, 1)})
	scores = s.node("Mul", []string{scores, g.scalar(float32(lt.Scale))})
	p := s.node("Softmax", []string{scores}, onnx.AttrInt("axis", -1))
	p = s.node("Cast", []string{p}, onnx.AttrInt("to", int64(onnx.Float)))
	att := heads3DTo2D(s, s.node("MatMul", []string{p, v3}), 1)
	lt.Out = att
	proj, _, _ := s.sub("to_out.0").linear(att, c, c, true)
	proj = s.transpose(proj, 0, 2, 1)
	proj = s.reshape(proj, s.node("Shape", []string{h}))
	h = s.node("Div", []string{s.node("Add", []string{proj, h}), g.scalar(1)})
	truth.Layers = append(truth.Layers, lt)

	moments := u.conv(enc.sub("conv_out"), h, c, 8, 3, 1)
	moments = u.conv(g.scope("/quant_conv"), moments, 8, 8, 1, 1)
	if o.Parameters {
		g.scope("").node("Identity", []string{moments})
		g.Last().Output[0] = "latent_parameters"
		g.Output("latent_parameters", onnx.Float, -1, 8, -1, -1)
		return g.model(), truth
	}
	root := g.scope("")
	halves := root.nodeIn("", "Split", []string{moments, g.ints(4, 4)}, 2, onnx.AttrInt("axis", 1))
	mean, logvar := halves[0], halves[1]
	if o.ScaledMean {
		mean = root.node("Mul", []string{mean, g.scalar(0.5)})
		mean = root.node("Cast", []string{mean}, onnx.AttrInt("to", int64(onnx.Float)))
	}
	truth.Mean = mean
	logvar = root.node("Clip", []string{logvar, g.scalar(-30), g.scalar(20)})
	std := root.node("Exp", []string{root.node("Mul", []string{logvar, g.scalar(0.5)})})
	zeros := root.node("ConstantOfShape", []string{root.node("Shape", []string{mean})}, onnx.AttrTensor("value", onnx.FloatTensor("value", []int64{1}, []float32{0})))
	noise := root.node("RandomNormalLike", []string{zeros}, onnx.AttrInt("dtype", int64(onnx.Float)))
	latent := root.node("Add", []string{mean, root.node("Mul", []string{std, noise})})
	root.node("Identity", []string{latent})
	g.Last().Output[0] = "latent_sample"
	g.Output("latent_sample", onnx.Float, -1, 4, -1, -1)
	return g.model(), truth
}

// TextOptions size a CLIP text encoder.
type TextOptions struct {
	Batch, Tokens, Channels, Heads, Layers, Vocab int
	Seed                                          uint64
	// Int32IDs declares input_ids int32, as optimum's export does (int64 otherwise).
	Int32IDs bool
}

// TinyText is a runnable miniature with the real vocabulary and 77 tokens.
func TinyText() TextOptions {
	return TextOptions{Batch: 2, Tokens: 77, Channels: 16, Heads: 2, Layers: 2, Vocab: 49408, Seed: 9}
}

// TextEncoder generates a CLIP text encoder as Hugging Face's eager code exports it:
// input_ids int64 [B, 77] → token and position embeddings → causal self-attention layers
// (3-D heads, Mul(scale) before the split) → final_layer_norm → last_hidden_state.
func TextEncoder(o TextOptions) (*onnxpb.ModelProto, Truth) {
	g := newGB("main_graph", o.Seed)
	var truth Truth
	idType := onnx.Int64
	if o.Int32IDs {
		idType = onnx.Int32
	}
	ids := g.Input("input_ids", idType, -1, int64(o.Tokens))
	truth.Inputs = []Input{{"input_ids", idType, []int64{int64(o.Batch), int64(o.Tokens)}}}
	c := o.Channels
	emb := g.scope("/text_model/embeddings")
	tok, _ := g.weight([]int64{int64(o.Vocab), int64(c)}, 1)
	pos, _ := g.weight([]int64{int64(o.Tokens), int64(c)}, 0.5)
	h := emb.sub("token_embedding").node("Gather", []string{tok, ids}, onnx.AttrInt("axis", 0))
	h = emb.node("Add", []string{h, pos})
	mask := make([]float32, o.Tokens*o.Tokens)
	for i := range o.Tokens {
		for j := i + 1; j < o.Tokens; j++ {
			mask[i*o.Tokens+j] = -3.4028235e38
		}
	}
	g.consts++
	causal := g.Floats(fmt.Sprintf("onnx::Add_%d", g.consts), []int64{1, 1, int64(o.Tokens), int64(o.Tokens)}, mask)
	opts := Options{Channels: c, Heads: o.Heads}
	for i := range o.Layers {
		layer := g.scope(fmt.Sprintf("/text_model/encoder/layers.%d", i))
		norm := layer.sub("layer_norm1").layerNorm(h, c)
		lt := LayerTruth{Name: fmt.Sprintf("text_model.encoder.layers.%d.self_attn", i), Kind: "self", Heads: o.Heads, HeadDim: c / o.Heads,
			Scale: 1 / math.Sqrt(float64(c/o.Heads)), QIn: norm, KIn: norm, VIn: norm, InQ: c, InKV: c, Tokens: o.Tokens, Causal: true}
		s := layer.sub("self_attn")
		out := clipAttention(s, norm, norm, c, c, opts, &lt, causal)
		lt.Out = out
		proj, _, _ := s.sub("out_proj").linear(out, c, c, true)
		h = layer.node("Add", []string{h, proj})
		truth.Layers = append(truth.Layers, lt)
	}
	h = g.scope("/text_model/final_layer_norm").layerNorm(h, c)
	g.scope("").node("Identity", []string{h})
	g.Last().Output[0] = "last_hidden_state"
	g.Output("last_hidden_state", onnx.Float, -1, int64(o.Tokens), int64(c))
	return g.model(), truth
}

// WriteTinyDiffusers writes a runnable miniature diffusers export into dir: unet/model.onnx
// (SDUNet(TinyUNet()): 16×16 latents, so 128 px images) with its weights in an external
// file, an in-graph-sampling VAE encoder for 128 px in vae_encoder/, a CLIP text encoder
// (TinyText) in text_encoder/, and model_index.json. It writes no tokenizer.
func WriteTinyDiffusers(dir string) error { return WriteDiffusers(dir, TinyUNet()) }

// WriteDiffusers is WriteTinyDiffusers with the U-Net of o, the VAE encoder sized for its
// latents.
func WriteDiffusers(dir string, o UNetOptions) error {
	unet, _ := SDUNet(o)
	vo := TinyVAE()
	vo.Height, vo.Width = 8*o.Height, 8*o.Width
	vae, _ := VAEEncoder(vo)
	text, _ := TextEncoder(TinyText())
	for _, part := range []struct {
		sub      string
		m        *onnxpb.ModelProto
		external bool
	}{{"unet", unet, true}, {"vae_encoder", vae, false}, {"text_encoder", text, false}} {
		d := filepath.Join(dir, part.sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if part.external {
			if err := onnx.MoveToExternal(part.m, d, "model.onnx_data", 64); err != nil {
				return err
			}
		}
		if err := onnx.WriteFile(filepath.Join(d, "model.onnx"), part.m); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(`{"_class_name": "StableDiffusionPipeline"}`), 0o644)
}

// vaeDown is AutoencoderKL's encoder up to its mid-block attention: conv_in, four down blocks
// of two resnets (three downsampling by 2 with a strided convolution), the mid block's first
// resnet; SiLU stands in for GroupNorm + SiLU.
func (u *unet) vaeDown(enc scope, x string, mid int) string {
	silu := func(s scope, h string) string { return s.node("Mul", []string{h, s.node("Sigmoid", []string{h})}) }
	resnet := func(s scope, h string, in, out int) string {
		y := u.conv(s.sub("conv1"), silu(s, h), in, out, 3, 1)
		y = u.conv(s.sub("conv2"), silu(s, y), out, out, 3, 1)
		if in != out {
			h = u.conv(s.sub("conv_shortcut"), h, in, out, 1, 1)
		}
		return s.node("Add", []string{h, y})
	}
	widths := []int{128, 256, 512, mid}
	h := u.conv(enc.sub("conv_in"), x, 3, widths[0], 3, 1)
	in := widths[0]
	for i, w := range widths {
		blk := enc.sub(fmt.Sprintf("down_blocks.%d", i))
		for r := range 2 {
			h = resnet(blk.sub(fmt.Sprintf("resnets.%d", r)), h, in, w)
			in = w
		}
		if i < len(widths)-1 {
			h = u.conv(blk.sub("downsamplers.0/conv"), h, w, w, 3, 2)
		}
	}
	return resnet(enc.sub("mid_block/resnets.0"), h, in, mid)
}
