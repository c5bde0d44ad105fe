package testgraphs

import (
	"fmt"
	"math"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// UNetOptions size a U-Net shaped like Stable Diffusion 1.5's: four down blocks (three with
// two transformer blocks each), a mid block with one, four up blocks (three with three each),
// so 16 attn1 and 16 attn2 layers named as diffusers names them.
type UNetOptions struct {
	Batch         int    // batch size tests feed
	Height, Width int    // latent size (the image size / 8)
	Channels      [3]int // block widths: SD 1.5 uses 320, 640, 1280
	Heads         int    // SD 1.5: 8
	CtxTokens     int    // text tokens: 77
	CtxChannels   int    // text width: 768 for SD 1.x
	Seed          uint64
	// NoWeights declares every weight as external data in "weights.pb" without writing it:
	// a full-size graph for structure tests that must never load weights.
	NoWeights bool
	// Prefix wraps every module path, as pipeline wrappers do ("/unet").
	Prefix string
	// Full adds what surrounds attention in the real U-Net (full.go): every resnet's two
	// convolutions and each transformer block's feed-forward, for benchmarks at SD 1.5's size.
	Full bool
}

// SD15 is the full-size SD 1.5 U-Net structure at 512 px (64×64 latents), weights declared
// external and absent.
func SD15() UNetOptions {
	return UNetOptions{Batch: 1, Height: 64, Width: 64, Channels: [3]int{320, 640, 1280}, Heads: 8, CtxTokens: 77, CtxChannels: 768, Seed: 1, NoWeights: true}
}

// TinyUNet is a runnable miniature: 16×16 latents, widths 8/16/16, 2 heads, 77 text tokens of
// width 16.
func TinyUNet() UNetOptions {
	return UNetOptions{Batch: 2, Height: 16, Width: 16, Channels: [3]int{8, 16, 16}, Heads: 2, CtxTokens: 77, CtxChannels: 16, Seed: 3}
}

// SDUNet generates the U-Net: inputs sample [B, 4, h, w], timestep float32 [B],
// encoder_hidden_states [B, 77, ctx]; output out_sample [B, 4, h, w]. Attention follows
// diffusers' AttnProcessor as the TorchScript exporter writes it (bias-free to_q/to_k/to_v,
// head split with run-time shapes, baddbmm scaling, Cast after Softmax, Div after to_out).
func SDUNet(o UNetOptions) (*onnxpb.ModelProto, Truth) {
	g := newGB("main_graph", o.Seed)
	g.noData = o.NoWeights
	var truth Truth
	b := int64(-1)
	sample := g.Input("sample", onnx.Float, b, 4, -1, -1)
	timestep := g.Input("timestep", onnx.Float, b)
	ctx := g.Input("encoder_hidden_states", onnx.Float, b, -1, int64(o.CtxChannels))
	truth.Inputs = []Input{
		{"sample", onnx.Float, []int64{int64(o.Batch), 4, int64(o.Height), int64(o.Width)}},
		{"timestep", onnx.Float, []int64{int64(o.Batch)}},
		{"encoder_hidden_states", onnx.Float, []int64{int64(o.Batch), int64(o.CtxTokens), int64(o.CtxChannels)}},
	}
	u := &unet{gb: g, o: o, ctx: ctx, truth: &truth}
	c0, c1, c2 := o.Channels[0], o.Channels[1], o.Channels[2]
	h := u.conv(u.at("conv_in"), sample, 4, c0, 3, 1)
	// A stand-in for the time embedding: the timestep scaled into every channel.
	ts := u.at("time_proj")
	t4 := ts.reshape(timestep, g.ints(-1, 1, 1, 1))
	h = ts.node("Add", []string{h, ts.node("Mul", []string{t4, g.scalar(1e-3)})})

	hw := [2]int{o.Height, o.Width}
	widths := []int{c0, c1, c2, c2}
	in := c0
	for i := range 4 {
		blk := fmt.Sprintf("down_blocks.%d", i)
		h = u.conv(u.at(blk+"/resnets.0/conv1"), h, in, widths[i], 3, 1)
		in = widths[i]
		h = u.resnets(blk, h, in, 2)
		if i < 3 {
			for a := range 2 {
				h = u.transformer(fmt.Sprintf("%s/attentions.%d", blk, a), h, in, hw)
			}
			h = u.conv(u.at(blk+"/downsamplers.0/conv"), h, in, in, 3, 2)
			hw = [2]int{(hw[0] + 1) / 2, (hw[1] + 1) / 2}
		}
	}
	h = u.conv(u.at("mid_block/resnets.0/conv1"), h, in, in, 3, 1)
	h = u.resnets("mid_block", h, in, 1)
	h = u.transformer("mid_block/attentions.0", h, in, hw)
	h = u.conv(u.at("mid_block/resnets.1/conv1"), h, in, in, 3, 1)
	upWidths := []int{c2, c2, c1, c0}
	for i := range 4 {
		blk := fmt.Sprintf("up_blocks.%d", i)
		h = u.conv(u.at(blk+"/resnets.0/conv1"), h, in, upWidths[i], 3, 1)
		in = upWidths[i]
		h = u.resnets(blk, h, in, 3)
		if i > 0 {
			for a := range 3 {
				h = u.transformer(fmt.Sprintf("%s/attentions.%d", blk, a), h, in, hw)
			}
		}
		if i < 3 {
			s := u.at(blk + "/upsamplers.0")
			h = s.node("Resize", []string{h, "", g.floatConst(1, 1, 2, 2)}, onnx.AttrString("mode", "nearest"))
			h = u.conv(s.sub("conv"), h, in, in, 3, 1)
			hw = [2]int{hw[0] * 2, hw[1] * 2}
		}
	}
	out := u.conv(u.at("conv_out"), h, in, 4, 3, 1)
	g.scope("").node("Identity", []string{out})
	g.Last().Output[0] = "out_sample"
	g.Output("out_sample", onnx.Float, b, 4, -1, -1)
	return g.model(), truth
}

type unet struct {
	*gb
	o     UNetOptions
	ctx   string
	truth *Truth
}

func (u *unet) at(path string) scope { return u.scope(u.o.Prefix + "/" + path) }

func (g *gb) floatConst(vals ...float32) string {
	g.consts++
	return g.Floats(fmt.Sprintf("onnx::Resize_%d", g.consts), []int64{int64(len(vals))}, vals)
}

func (u *unet) conv(s scope, x string, in, out, k, stride int) string {
	w, _ := u.weight([]int64{int64(out), int64(in), int64(k), int64(k)}, 1/math.Sqrt(float64(in*k*k)))
	bias, _ := u.weight([]int64{int64(out)}, 0.05)
	p := int64(k / 2)
	return s.node("Conv", []string{x, w, bias}, onnx.AttrInts("kernel_shape", int64(k), int64(k)),
		onnx.AttrInts("pads", p, p, p, p), onnx.AttrInts("strides", int64(stride), int64(stride)))
}

// transformer is a Transformer2DModel with one BasicTransformerBlock (attn1, attn2).
func (u *unet) transformer(path string, x string, c int, hw [2]int) string {
	s := u.at(path)
	h := u.conv(s.sub("proj_in"), x, c, c, 1, 1)
	h = s.reshape(h, u.ints(0, int64(c), -1))
	h = s.transpose(h, 0, 2, 1)
	blk := s.sub("transformer_blocks.0")
	for i, name := range []string{"attn1", "attn2"} {
		norm := blk.sub(fmt.Sprintf("norm%d", i+1)).layerNorm(h, c)
		kv, inKV, kind := norm, c, "self"
		if name == "attn2" {
			kv, inKV, kind = u.ctx, u.o.CtxChannels, "cross"
		}
		d := c / u.o.Heads
		lt := LayerTruth{Name: expectedName(path) + ".transformer_blocks.0." + name, Kind: kind, Heads: u.o.Heads, HeadDim: d,
			Scale: 1 / math.Sqrt(float64(d)), QIn: norm, KIn: kv, VIn: kv, InQ: c, InKV: inKV, Tokens: hw[0] * hw[1]}
		lt.Short = shortOf(lt.Name)
		as := blk.sub(name)
		o := Options{Channels: c, Heads: u.o.Heads}
		out := coreBaddbmm(as, norm, kv, c, inKV, o, &lt)
		lt.Out = out
		proj, _, _ := as.sub("to_out.0").linear(out, c, c, true)
		proj = as.node("Div", []string{proj, u.scalar(1)})
		h = blk.node("Add", []string{proj, h})
		u.truth.Layers = append(u.truth.Layers, lt)
	}
	h = u.feedForward(blk, h, c)
	h = s.transpose(h, 0, 2, 1)
	h = s.reshape(h, s.node("Shape", []string{x}))
	h = u.conv(s.sub("proj_out"), h, c, c, 1, 1)
	return s.node("Add", []string{h, x})
}

// shortOf is the DiffSim paper's name for an SD 1.5 layer path.
func shortOf(name string) string {
	table := map[string]string{
		"down_blocks.0.attentions.1": "Down0", "down_blocks.1.attentions.1": "Down1", "down_blocks.2.attentions.1": "Down2",
		"mid_block.attentions.0":   "Mid",
		"up_blocks.1.attentions.2": "Up0", "up_blocks.2.attentions.2": "Up1", "up_blocks.3.attentions.2": "Up2",
	}
	for prefix, short := range table {
		if name == prefix+".transformer_blocks.0.attn1" {
			return short
		}
		if name == prefix+".transformer_blocks.0.attn2" {
			return short + ".x"
		}
	}
	return ""
}
