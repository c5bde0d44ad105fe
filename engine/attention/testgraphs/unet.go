package testgraphs

import (
	"fmt"
	"math"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// UNetOptions size a U-Net shaped like Stable Diffusion 1.5's: four down blocks (three with
// two transformer blocks each), a mid block with one, four up blocks (three with three each),
// so 16 attn1 and 16 attn2 layers named as diffusers names them. Down, FixedSize and SDXL
// give other layouts, as diffusers' UNet2DConditionModel configurations do.
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
	// Down lists the down blocks (block_out_channels and down_block_types); the up blocks
	// mirror them, each down block but the last halves the latent. Empty means SD 1.5's:
	// Channels[0..2] with attention, then Channels[2] without.
	Down []Block
	// FixedSize declares the sample input's latent size fixed (the batch stays dynamic), as
	// an export traced at one size without dynamic spatial axes is.
	FixedSize bool
	// SDXL adds SDXL's extra conditioning inputs, text_embeds [B, 1280] and time_ids [B, 6],
	// mixed into the time embedding.
	SDXL bool
}

// Block is one down block of a U-Net and, mirrored, its up block.
type Block struct {
	Width     int
	Attention bool // CrossAttnDownBlock2D / CrossAttnUpBlock2D; else DownBlock2D / UpBlock2D
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

// TwoLevelUNet is a miniature of another layout than SD's, as a small diffusers config
// exports it: two down blocks (one downsample), the second without attention, and a fixed
// 8×8 latent (64 px images).
func TwoLevelUNet() UNetOptions {
	o := TinyUNet()
	o.Height, o.Width, o.FixedSize = 8, 8, true
	o.Down = []Block{{Width: 8, Attention: true}, {Width: 16}}
	return o
}

// Layouts are runnable U-Nets of other layouts than SD 1.5's, by name, as diffusers
// configurations export them: fewer and more down blocks, a fixed-size input, SDXL's extra
// inputs, a wrapper prefix, an oblong latent.
func Layouts() map[string]UNetOptions {
	two := TwoLevelUNet()
	wrapped := two
	wrapped.Prefix = "/unet"
	five := TinyUNet()
	five.Height, five.Width = 32, 32
	five.Down = []Block{{8, true}, {8, true}, {16, true}, {16, true}, {16, false}}
	xl := TinyUNet()
	xl.SDXL = true
	xl.Down = []Block{{8, false}, {16, true}, {16, true}}
	oblong := TinyUNet()
	oblong.Height, oblong.Width = 8, 12
	return map[string]UNetOptions{"two-levels-fixed-8x8": two, "two-levels-wrapped": wrapped, "five-levels": five, "sdxl-inputs": xl, "oblong": oblong}
}

func (o UNetOptions) blocks() []Block {
	if len(o.Down) > 0 {
		return o.Down
	}
	c := o.Channels
	return []Block{{c[0], true}, {c[1], true}, {c[2], true}, {c[2], false}}
}

// SDUNet generates the U-Net: inputs sample [B, 4, h, w], timestep float32 [B],
// encoder_hidden_states [B, 77, ctx] (and with SDXL text_embeds, time_ids); output out_sample
// [B, 4, h, w]. Attention follows diffusers' AttnProcessor as the TorchScript exporter writes
// it (bias-free to_q/to_k/to_v, head split with run-time shapes, baddbmm scaling, Cast after
// Softmax, Div after to_out).
func SDUNet(o UNetOptions) (*onnxpb.ModelProto, Truth) {
	g := newGB("main_graph", o.Seed)
	g.noData = o.NoWeights
	var truth Truth
	b, lh, lw := int64(-1), int64(-1), int64(-1)
	if o.FixedSize {
		lh, lw = int64(o.Height), int64(o.Width)
	}
	sample := g.Input("sample", onnx.Float, b, 4, lh, lw)
	timestep := g.Input("timestep", onnx.Float, b)
	ctx := g.Input("encoder_hidden_states", onnx.Float, b, -1, int64(o.CtxChannels))
	truth.Inputs = []Input{
		{"sample", onnx.Float, []int64{int64(o.Batch), 4, int64(o.Height), int64(o.Width)}},
		{"timestep", onnx.Float, []int64{int64(o.Batch)}},
		{"encoder_hidden_states", onnx.Float, []int64{int64(o.Batch), int64(o.CtxTokens), int64(o.CtxChannels)}},
	}
	u := &unet{gb: g, o: o, ctx: ctx, truth: &truth}
	blocks := o.blocks()
	h := u.conv(u.at("conv_in"), sample, 4, blocks[0].Width, 3, 1)
	// A stand-in for the time embedding: the timestep scaled into every channel.
	ts := u.at("time_proj")
	t4 := ts.reshape(timestep, g.ints(-1, 1, 1, 1))
	temb := ts.node("Mul", []string{t4, g.scalar(1e-3)})
	if o.SDXL {
		// SDXL's added conditioning: the pooled text embedding and the six size numbers,
		// summed into one value per batch item.
		emb := g.Input("text_embeds", onnx.Float, b, 1280)
		ids := g.Input("time_ids", onnx.Float, b, 6)
		truth.Inputs = append(truth.Inputs,
			Input{"text_embeds", onnx.Float, []int64{int64(o.Batch), 1280}},
			Input{"time_ids", onnx.Float, []int64{int64(o.Batch), 6}})
		add := u.at("add_embedding")
		sum := add.node("Add", []string{
			add.node("ReduceMean", []string{emb}, onnx.AttrInts("axes", 1)),
			add.node("ReduceMean", []string{ids}, onnx.AttrInts("axes", 1))})
		temb = add.node("Add", []string{temb, add.node("Mul", []string{add.reshape(sum, g.ints(-1, 1, 1, 1)), g.scalar(1e-3)})})
	}
	h = ts.node("Add", []string{h, temb})

	hw := [2]int{o.Height, o.Width}
	in := blocks[0].Width
	for i, blk := range blocks {
		name := fmt.Sprintf("down_blocks.%d", i)
		h = u.conv(u.at(name+"/resnets.0/conv1"), h, in, blk.Width, 3, 1)
		in = blk.Width
		h = u.resnets(name, h, in, 2)
		if blk.Attention {
			for a := range 2 {
				h = u.transformer(fmt.Sprintf("%s/attentions.%d", name, a), h, in, hw)
			}
		}
		if i < len(blocks)-1 {
			h = u.conv(u.at(name+"/downsamplers.0/conv"), h, in, in, 3, 2)
			hw = [2]int{(hw[0] + 1) / 2, (hw[1] + 1) / 2}
		}
	}
	h = u.conv(u.at("mid_block/resnets.0/conv1"), h, in, in, 3, 1)
	h = u.resnets("mid_block", h, in, 1)
	h = u.transformer("mid_block/attentions.0", h, in, hw)
	h = u.conv(u.at("mid_block/resnets.1/conv1"), h, in, in, 3, 1)
	for i := range blocks {
		blk := blocks[len(blocks)-1-i]
		name := fmt.Sprintf("up_blocks.%d", i)
		h = u.conv(u.at(name+"/resnets.0/conv1"), h, in, blk.Width, 3, 1)
		in = blk.Width
		h = u.resnets(name, h, in, 3)
		if blk.Attention {
			for a := range 3 {
				h = u.transformer(fmt.Sprintf("%s/attentions.%d", name, a), h, in, hw)
			}
		}
		if i < len(blocks)-1 {
			s := u.at(name + "/upsamplers.0")
			h = s.node("Resize", []string{h, "", g.floatConst(1, 1, 2, 2)}, onnx.AttrString("mode", "nearest"))
			h = u.conv(s.sub("conv"), h, in, in, 3, 1)
			hw = [2]int{hw[0] * 2, hw[1] * 2}
		}
	}
	out := u.conv(u.at("conv_out"), h, in, 4, 3, 1)
	g.scope("").node("Identity", []string{out})
	g.Last().Output[0] = "out_sample"
	g.Output("out_sample", onnx.Float, b, 4, lh, lw)
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
