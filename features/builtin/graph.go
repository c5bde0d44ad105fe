// Package builtin generates diffsim's built-in model: a small, deterministic attention network
// written as an ONNX graph at run time, with no learned weights, so the tool works on a fresh
// machine with nothing downloaded.
//
// What it computes, for a working size S (a multiple of 64):
//
//  1. Noise: x_t = √ᾱ_t·x + √(1−ᾱ_t)·ε in pixel space, with Stable Diffusion's scaled_linear
//     schedule (the same DDPM forward process as DiffSim-S, without a VAE). ε is an input, so
//     both images of a pair get the same noise.
//  2. Three scales ("fine", "medium", "coarse": 32×32, 16×16 and 8×8 patches of S/32, S/16 and
//     S/8 pixels). Each patch becomes a token with 14 fixed features of its pixels: mean
//     colour (3), log colour contrast (standard deviation per channel, 3), log mean magnitude of
//     luminance derivatives at 0°, 45°, 90°, 135° (4) and the same at half resolution (4).
//     Fixed constants centre and scale them; nothing is fitted to data.
//  3. One attention layer per scale with four heads (colour, contrast, fine texture, coarse
//     texture), each head six channels wide. The projections are fixed selection matrices that
//     make q·k = x_q·x_k − ½|x_k|², so softmax(q·k·s) is a Gaussian kernel on the distance between
//     the two tokens' features (bandwidth set by the layer's scale s): a token attends to the
//     tokens that look like it, wherever they are. V carries the features themselves.
//
// So AAS on this model compares colour and texture statistics and tolerates misalignment,
// and it knows nothing about objects or meaning.
package builtin

import (
	"fmt"
	"math"

	finder "github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/features/schedule"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features"
)

// Graph input and output names.
const (
	InputImage    = "image"     // float32 [B,3,S,S], RGB in [−1, 1]
	InputTimestep = "timestep"  // int64 [B], DDPM t in 0..999
	InputNoise    = "noise"     // float32 [B,3,S,S], standard normal
	OutputEmbed   = "embedding" // float32 [B,14]: the coarse scale's features averaged over tokens
)

// Description is the one line the tool shows wherever the built-in model's results appear.
const Description = "built-in model (no learned weights): patch colour, contrast and gradient statistics at 3 scales; judges low-level appearance, not semantics"

const (
	numFeatures = 14
	heads       = 4
	headDim     = 6
)

// Level is one scale of the built-in model.
type Level struct {
	Name  string
	Grid  int     // tokens per side
	Scale float32 // softmax scale: the Gaussian kernel's inverse bandwidth
}

// Levels are the model's scales, fine to coarse; each is one attention layer.
var Levels = []Level{
	{Name: "fine", Grid: 32, Scale: 4},
	{Name: "medium", Grid: 16, Scale: 4},
	{Name: "coarse", Grid: 8, Scale: 4},
}

// DefaultLayer is the layer the explorer opens on: medium patches balance texture and layout.
const DefaultLayer = 1

// CheckSize reports whether the working size suits the model.
func CheckSize(size int) error {
	if size < 64 || size%64 != 0 || size > 2048 {
		return fmt.Errorf("--size %d: the built-in model needs a multiple of 64 between 64 and 2048", size)
	}
	return nil
}

// headGroups are the feature indices each head sees.
var headGroups = [heads][]int{
	{0, 1, 2},        // mean colour
	{3, 4, 5},        // colour contrast
	{6, 7, 8, 9},     // fine oriented gradients
	{10, 11, 12, 13}, // coarse oriented gradients
}

// Feature centring: mean colour is already centred in [−1, 1]; the log statistics are centred
// on a typical value for natural images (contrast 0.15, gradient 0.08) and put on unit scale.
var (
	featureShift = [numFeatures]float32{0, 0, 0,
		-1.9, -1.9, -1.9,
		-2.5, -2.5, -2.5, -2.5,
		-2.5, -2.5, -2.5, -2.5}
	featureScale = [numFeatures]float32{2, 2, 2,
		1, 1, 1,
		1, 1, 1, 1,
		1, 1, 1, 1}
)

// Graph builds the model for working size size.
func Graph(size int) (*onnxpb.ModelProto, error) {
	if err := CheckSize(size); err != nil {
		return nil, err
	}
	b := onnx.NewBuilder("diffsim-builtin")
	img := b.Input(InputImage, onnx.Float, -1, 3, int64(size), int64(size))
	ts := b.Input(InputTimestep, onnx.Int64, -1)
	eps := b.Input(InputNoise, onnx.Float, -1, 3, int64(size), int64(size))

	x := noised(b, img, ts, eps)
	lum := b.Node("Conv", "/stem/luminance", []string{x, b.Floats("luminance_weight", []int64{1, 3, 1, 1}, []float32{0.299, 0.587, 0.114})})
	gradFine := gradients(b, "/stem/grad_fine", lum)
	half := b.Node("AveragePool", "/stem/half", []string{lum}, onnx.AttrInts("kernel_shape", 2, 2), onnx.AttrInts("strides", 2, 2))
	gradCoarse := gradients(b, "/stem/grad_coarse", half)

	var embed string
	for _, lv := range Levels {
		p := int64(size / lv.Grid)
		tokens := patchFeatures(b, lv.Name, x, gradFine, gradCoarse, p)
		attention(b, lv, tokens)
		embed = tokens
	}
	b.Node("ReduceMean", "/embedding", []string{embed}, onnx.AttrInts("axes", 1), onnx.AttrInt("keepdims", 0))
	b.Last().Output[0] = OutputEmbed
	b.Output(OutputEmbed, onnx.Float, -1, numFeatures)
	return b.Model(), nil
}

// noised applies the DDPM forward process with ᾱ gathered from a table by timestep.
func noised(b *onnx.Builder, img, ts, eps string) string {
	ab := schedule.AlphasCumprod()
	sa, sb := make([]float32, len(ab)), make([]float32, len(ab))
	for i, v := range ab {
		sa[i], sb[i] = float32(math.Sqrt(v)), float32(math.Sqrt(1-v))
	}
	shape := b.Ints("noise_coef_shape", []int64{4}, []int64{-1, 1, 1, 1})
	ca := b.Node("Gather", "/noise/sqrt_alpha_bar", []string{b.Floats("sqrt_alphas_cumprod", []int64{int64(len(sa))}, sa), ts})
	cb := b.Node("Gather", "/noise/sqrt_one_minus_alpha_bar", []string{b.Floats("sqrt_one_minus_alphas_cumprod", []int64{int64(len(sb))}, sb), ts})
	ca = b.Node("Reshape", "/noise/reshape_a", []string{ca, shape})
	cb = b.Node("Reshape", "/noise/reshape_b", []string{cb, shape})
	return b.Node("Add", "/noise/add", []string{
		b.Node("Mul", "/noise/scale_image", []string{img, ca}),
		b.Node("Mul", "/noise/scale_noise", []string{eps, cb}),
	})
}

// gradients returns |∂L| along 0°, 45°, 90° and 135° (Sobel-style 3×3 derivatives, each
// normalised so a unit step edge gives 1).
func gradients(b *onnx.Builder, name, lum string) string {
	k := []float32{
		// 0°: horizontal derivative
		-1, 0, 1, -2, 0, 2, -1, 0, 1,
		// 45°
		-2, -1, 0, -1, 0, 1, 0, 1, 2,
		// 90°: vertical derivative
		-1, -2, -1, 0, 0, 0, 1, 2, 1,
		// 135°
		0, -1, -2, 1, 0, -1, 2, 1, 0,
	}
	for i := range k {
		k[i] /= 4
	}
	g := b.Node("Conv", name, []string{lum, b.Floats(name[1:]+"_weight", []int64{4, 1, 3, 3}, k)}, onnx.AttrInts("pads", 1, 1, 1, 1))
	return b.Node("Abs", name+"/abs", []string{g})
}

// patchFeatures pools the pixel statistics into tokens [B, T, 14], centred and scaled.
func patchFeatures(b *onnx.Builder, level, x, gradFine, gradCoarse string, p int64) string {
	scope := "/" + level + "/features"
	pool := func(name, in string, k int64) string {
		return b.Node("AveragePool", scope+"/"+name, []string{in}, onnx.AttrInts("kernel_shape", k, k), onnx.AttrInts("strides", k, k))
	}
	logOf := func(name, in string) string {
		eps := b.Scalar(level+"_"+name+"_eps", 0.01)
		return b.Node("Log", scope+"/"+name+"_log", []string{b.Node("Add", scope+"/"+name+"_eps", []string{in, eps})})
	}
	mean := pool("mean", x, p)
	sq := pool("mean_sq", b.Node("Mul", scope+"/square", []string{x, x}), p)
	variance := b.Node("Sub", scope+"/variance", []string{sq, b.Node("Mul", scope+"/mean_square", []string{mean, mean})})
	std := b.Node("Sqrt", scope+"/std", []string{b.Node("Relu", scope+"/variance_relu", []string{variance})})
	gf := pool("grad_fine", gradFine, p)
	gc := pool("grad_coarse", gradCoarse, p/2)
	feats := b.Node("Concat", scope+"/concat", []string{mean, logOf("contrast", std), logOf("grad_fine", gf), logOf("grad_coarse", gc)}, onnx.AttrInt("axis", 1))

	shift := make([]float32, numFeatures)
	scale := make([]float32, numFeatures)
	for i := range shift {
		shift[i], scale[i] = featureShift[i], featureScale[i]
	}
	feats = b.Node("Sub", scope+"/centre", []string{feats, b.Floats(level+"_feature_shift", []int64{1, numFeatures, 1, 1}, shift)})
	feats = b.Node("Mul", scope+"/scale", []string{feats, b.Floats(level+"_feature_scale", []int64{1, numFeatures, 1, 1}, scale)})
	flat := b.Node("Reshape", scope+"/flatten", []string{feats, b.Ints(level+"_flatten_shape", []int64{3}, []int64{0, numFeatures, -1})})
	return b.Node("Transpose", scope+"/tokens", []string{flat}, onnx.AttrInts("perm", 0, 2, 1))
}

// attention adds one layer in the Hugging Face eager layout (4-D heads, K transposed to
// [0,2,3,1], Mul scale, Softmax, MatMul V), so the attention finder sees a common real pattern.
func attention(b *onnx.Builder, lv Level, tokens string) {
	scope := "/" + lv.Name + "/attn"
	const aug = numFeatures + 1 + heads // features, a constant 1, −½|x_h|² per head
	// z = [x, 1, −½|x_h|² …]
	sq := b.Node("Mul", scope+"/square", []string{tokens, tokens})
	groupSum := make([]float32, numFeatures*heads)
	for h, g := range headGroups {
		for _, f := range g {
			groupSum[f*heads+h] = -0.5
		}
	}
	halfNorms := b.Node("MatMul", scope+"/half_norms", []string{sq, b.Floats(lv.Name+"_group_sum", []int64{numFeatures, heads}, groupSum)})
	ones := b.Node("Add", scope+"/ones", []string{
		b.Node("Mul", scope+"/zero", []string{
			b.Node("ReduceSum", scope+"/any", []string{tokens, b.Ints(lv.Name+"_sum_axes", []int64{1}, []int64{2})}, onnx.AttrInt("keepdims", 1)),
			b.Scalar(lv.Name+"_zero", 0)}),
		b.Scalar(lv.Name+"_one", 1)})
	z := b.Node("Concat", scope+"/augment", []string{tokens, ones, halfNorms}, onnx.AttrInt("axis", 2))

	c := heads * headDim
	wq, wk, wv := make([]float32, aug*c), make([]float32, aug*c), make([]float32, aug*c)
	for h, g := range headGroups {
		for i, f := range g {
			col := h*headDim + i
			wq[f*c+col], wk[f*c+col], wv[f*c+col] = 1, 1, 1
		}
		last := h*headDim + headDim - 1
		wq[numFeatures*c+last] = 1       // q: 1
		wk[(numFeatures+1+h)*c+last] = 1 // k: −½|x_h|²
	}
	q := b.Node("MatMul", scope+"/to_q/MatMul", []string{z, b.Floats(lv.Name+"_to_q", []int64{aug, int64(c)}, wq)})
	k := b.Node("MatMul", scope+"/to_k/MatMul", []string{z, b.Floats(lv.Name+"_to_k", []int64{aug, int64(c)}, wk)})
	v := b.Node("MatMul", scope+"/to_v/MatMul", []string{z, b.Floats(lv.Name+"_to_v", []int64{aug, int64(c)}, wv)})

	split := b.Ints(lv.Name+"_head_shape", []int64{4}, []int64{0, 0, heads, headDim})
	qh := b.Node("Transpose", scope+"/Transpose", []string{b.Node("Reshape", scope+"/Reshape", []string{q, split})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	kh := b.Node("Transpose", scope+"/Transpose_1", []string{b.Node("Reshape", scope+"/Reshape_1", []string{k, split})}, onnx.AttrInts("perm", 0, 2, 3, 1))
	vh := b.Node("Transpose", scope+"/Transpose_2", []string{b.Node("Reshape", scope+"/Reshape_2", []string{v, split})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	scores := b.Node("MatMul", scope+"/MatMul", []string{qh, kh})
	scores = b.Node("Mul", scope+"/Mul", []string{scores, b.Scalar(lv.Name+"_scale", lv.Scale)})
	probs := b.Node("Softmax", scope+"/Softmax", []string{scores}, onnx.AttrInt("axis", -1))
	out := b.Node("MatMul", scope+"/MatMul_1", []string{probs, vh})
	out = b.Node("Transpose", scope+"/Transpose_3", []string{out}, onnx.AttrInts("perm", 0, 2, 1, 3))
	out = b.Node("Reshape", scope+"/Reshape_3", []string{out, b.Ints(lv.Name+"_merge_shape", []int64{3}, []int64{0, 0, int64(c)})})
	b.Output(out, onnx.Float, -1, -1, int64(c))
}

// Layers describes the model's attention layers at a working size.
func Layers() []features.Layer {
	out := make([]features.Layer, len(Levels))
	for i, lv := range Levels {
		q, k, v := Taps(lv.Name)
		out[i] = features.Layer{
			Layer: finder.Layer{
				Index: i, Name: lv.Name + ".attn", Kind: finder.Self,
				Heads: heads, KVHeads: heads, HeadDim: headDim, Scale: float64(lv.Scale), ImageKV: true,
				Q: q, K: k, V: v, Layout: finder.LayoutBSC, Op: "MatMul+Softmax",
			},
			Tokens: lv.Grid * lv.Grid, GridH: lv.Grid, GridW: lv.Grid,
		}
	}
	return out
}

// Taps are the graph tensors holding each layer's Q, K and V (the projection outputs).
func Taps(level string) (q, k, v string) {
	scope := "/" + level + "/attn"
	return scope + "/to_q/MatMul_output_0", scope + "/to_k/MatMul_output_0", scope + "/to_v/MatMul_output_0"
}
