// Package ipadapter adds IP-Adapter Plus to a Stable Diffusion 1.5 U-Net graph, for DiffSim-C:
// cross-attention AAS where the keys and values come from another image's IP tokens.
//
// Three graphs take part. The CLIP ViT-H/14 image encoder the user brings, with its
// penultimate hidden state (hidden_states[-2], [B, 257, 1280]) tapped as an extra output; the
// Resampler, built here as an ONNX graph from the adapter's "image_proj" weights, which turns
// that state into 16 IP tokens of width 768; and the user's U-Net, into which every attn2 gets
// the decoupled IP attention of the "ip_adapter" weights:
//
//	attn2(x) = attn(Q, K_text, V_text) + scale · attn(Q, K_ip, V_ip),  K_ip = to_k_ip(ip_tokens), V_ip = to_v_ip(ip_tokens)
//
// with the layer's own Q, head split and softmax scale. The IP attention is an ordinary
// unfused attention block in the graph, so the attention finder reports it as a layer of its
// own, named "<attn2 path>.ip", whose Q, K, V are (Q of attn2, K_ip, V_ip): exactly the
// features DiffSim-C compares (aas.Compare with KVTokens 16).
package ipadapter

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features/safetensors"
)

// Graph I/O names of the Resampler.
const (
	ResamplerInput  = "image_embeds" // [B, N, embedding] penultimate CLIP hidden state
	ResamplerOutput = "ip_tokens"    // [B, queries, output]
)

// DefaultHeadDim is the head size IP-Adapter Plus's perceiver attention uses (dim_head=64);
// the weights do not record it.
const DefaultHeadDim = 64

// ResamplerShape is what a Resampler's weights say about it. IP-Adapter Plus for SD 1.5:
// embedding 1280, dim 768, 16 queries, output 768, depth 4, 12 heads of 64, feed-forward 3072.
type ResamplerShape struct {
	Embedding, Dim, Queries, Output, Depth int
	Heads, HeadDim, FeedForward            int
}

// ResamplerOptions set what the weights cannot tell.
type ResamplerOptions struct {
	HeadDim int // 0 means DefaultHeadDim
}

// weightReader reads tensors by name with a shape check.
type weightReader struct {
	f *safetensors.File
}

func (r weightReader) get(name string, shape ...int64) ([]float32, error) {
	vals, info, err := r.f.Floats(name)
	if err != nil {
		return nil, fmt.Errorf("IP-Adapter weights: %w", err)
	}
	if len(shape) > 0 && !sameShape(info.Shape, shape) {
		return nil, fmt.Errorf("IP-Adapter weights: %s has shape %v, want %v", name, info.Shape, shape)
	}
	return vals, nil
}

func (r weightReader) shape(name string, rank int) ([]int64, error) {
	info, ok := r.f.Info(name)
	if !ok {
		return nil, fmt.Errorf("IP-Adapter weights: no tensor %q (is this an IP-Adapter Plus file in safetensors form?)", name)
	}
	if len(info.Shape) != rank {
		return nil, fmt.Errorf("IP-Adapter weights: %s has shape %v, want rank %d", name, info.Shape, rank)
	}
	return info.Shape, nil
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var resamplerLayer = regexp.MustCompile(`^image_proj\.layers\.(\d+)\.0\.to_q\.weight$`)

// ReadResamplerShape reads the Resampler's sizes from its weights.
func ReadResamplerShape(f *safetensors.File, o ResamplerOptions) (ResamplerShape, error) {
	r := weightReader{f}
	var s ResamplerShape
	lat, err := r.shape("image_proj.latents", 3)
	if err != nil {
		return s, err
	}
	pin, err := r.shape("image_proj.proj_in.weight", 2)
	if err != nil {
		return s, err
	}
	pout, err := r.shape("image_proj.proj_out.weight", 2)
	if err != nil {
		return s, err
	}
	s.Queries, s.Dim, s.Embedding, s.Output = int(lat[1]), int(lat[2]), int(pin[1]), int(pout[0])
	if lat[0] != 1 || pin[0] != lat[2] || pout[1] != lat[2] {
		return s, fmt.Errorf("IP-Adapter weights: latents %v, proj_in %v and proj_out %v do not fit together", lat, pin, pout)
	}
	for _, name := range f.Names() {
		if m := resamplerLayer.FindStringSubmatch(name); m != nil {
			i, _ := strconv.Atoi(m[1])
			s.Depth = max(s.Depth, i+1)
		}
	}
	if s.Depth == 0 {
		return s, fmt.Errorf("IP-Adapter weights: no image_proj.layers.N.0.to_q.weight: not an IP-Adapter Plus (Resampler) file")
	}
	q, err := r.shape("image_proj.layers.0.0.to_q.weight", 2)
	if err != nil {
		return s, err
	}
	ff, err := r.shape("image_proj.layers.0.1.1.weight", 2)
	if err != nil {
		return s, err
	}
	s.HeadDim = o.HeadDim
	if s.HeadDim <= 0 {
		s.HeadDim = DefaultHeadDim
	}
	inner := int(q[0])
	if inner%s.HeadDim != 0 {
		return s, fmt.Errorf("IP-Adapter weights: to_q width %d is not a multiple of the head size %d", inner, s.HeadDim)
	}
	s.Heads, s.FeedForward = inner/s.HeadDim, int(ff[0])
	return s, nil
}

// resampler builds the graph.
type resampler struct {
	*onnx.Builder
	r      weightReader
	consts int
}

// BuildResampler makes the IP-Adapter Plus Resampler (tencent-ailab IP-Adapter,
// ip_adapter/resampler.py) as an ONNX graph with its weights inline, from the "image_proj."
// tensors of f:
//
//	x = proj_in(image_embeds); latents = latents.repeat(B)
//	per layer: latents += to_out(attn(to_q(norm2(latents)), to_kv(concat(norm1(x), norm2(latents)))))
//	           latents += ff(latents), ff = LayerNorm → Linear → GELU → Linear (no biases)
//	ip_tokens = norm_out(proj_out(latents))
//
// The attention scales q and k each by 1/sqrt(sqrt(head_dim)) as the reference does.
func BuildResampler(f *safetensors.File, o ResamplerOptions) (*onnxpb.ModelProto, ResamplerShape, error) {
	s, err := ReadResamplerShape(f, o)
	if err != nil {
		return nil, s, err
	}
	b := &resampler{Builder: onnx.NewBuilder("ip_adapter_resampler"), r: weightReader{f}}
	in := b.Input(ResamplerInput, onnx.Float, -1, -1, int64(s.Embedding))
	x, err := b.linear("/image_proj/proj_in", in, "image_proj.proj_in", s.Embedding, s.Dim, true)
	if err != nil {
		return nil, s, err
	}
	lat0, err := b.r.get("image_proj.latents", 1, int64(s.Queries), int64(s.Dim))
	if err != nil {
		return nil, s, err
	}
	latName := b.Floats("image_proj.latents", []int64{1, int64(s.Queries), int64(s.Dim)}, lat0)
	batch := b.Node("Slice", "/image_proj/batch", []string{b.Node("Shape", "/image_proj/Shape", []string{in}), b.ints(0), b.ints(1)})
	shape := b.Node("Concat", "/image_proj/repeat_shape", []string{batch, b.ints(int64(s.Queries), int64(s.Dim))}, onnx.AttrInt("axis", 0))
	lat := b.Node("Expand", "/image_proj/latents_repeat", []string{latName, shape})
	for i := range s.Depth {
		if lat, err = b.perceiver(i, x, lat, s); err != nil {
			return nil, s, err
		}
		if lat, err = b.feedForward(i, lat, s); err != nil {
			return nil, s, err
		}
	}
	out, err := b.linear("/image_proj/proj_out", lat, "image_proj.proj_out", s.Dim, s.Output, true)
	if err != nil {
		return nil, s, err
	}
	if out, err = b.layerNorm("/image_proj/norm_out", out, "image_proj.norm_out", s.Output); err != nil {
		return nil, s, err
	}
	b.Node("Identity", "/image_proj/output", []string{out})
	b.Last().Output[0] = ResamplerOutput
	b.Output(ResamplerOutput, onnx.Float, -1, int64(s.Queries), int64(s.Output))
	m := b.Model()
	m.ProducerName = "diffsim"
	return m, s, nil
}

func (b *resampler) ints(vals ...int64) string {
	b.consts++
	return b.Ints(fmt.Sprintf("/image_proj/const_%d", b.consts), []int64{int64(len(vals))}, vals)
}

func (b *resampler) scalar(v float32) string {
	b.consts++
	return b.Scalar(fmt.Sprintf("/image_proj/scalar_%d", b.consts), v)
}

// linear is x·Wᵀ (+ b) for a PyTorch Linear weight [out, in] stored under key+".weight".
func (b *resampler) linear(scope, x, key string, in, out int, bias bool) (string, error) {
	w, err := b.r.get(key+".weight", int64(out), int64(in))
	if err != nil {
		return "", err
	}
	return b.linearValues(scope, x, key+".weight", w, in, out, bias, key)
}

// linearValues adds x·Wᵀ for weights w already read ([out, in]) and, with bias, + key.bias.
func (b *resampler) linearValues(scope, x, name string, w []float32, in, out int, bias bool, key string) (string, error) {
	wt := transpose(w, out, in)
	y := b.Node("MatMul", scope+"/MatMul", []string{x, b.Floats(name, []int64{int64(in), int64(out)}, wt)})
	if !bias {
		return y, nil
	}
	bv, err := b.r.get(key+".bias", int64(out))
	if err != nil {
		return "", err
	}
	return b.Node("Add", scope+"/Add", []string{y, b.Floats(key+".bias", []int64{int64(out)}, bv)}), nil
}

func (b *resampler) layerNorm(scope, x, key string, c int) (string, error) {
	g, err := b.r.get(key+".weight", int64(c))
	if err != nil {
		return "", err
	}
	beta, err := b.r.get(key+".bias", int64(c))
	if err != nil {
		return "", err
	}
	return b.Node("LayerNormalization", scope+"/LayerNormalization",
		[]string{x, b.Floats(key+".weight", []int64{int64(c)}, g), b.Floats(key+".bias", []int64{int64(c)}, beta)},
		onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-5)), nil
}

func (b *resampler) perceiver(i int, x, lat string, s ResamplerShape) (string, error) {
	key := fmt.Sprintf("image_proj.layers.%d.0", i)
	scope := fmt.Sprintf("/image_proj/layers.%d.0", i)
	inner := s.Heads * s.HeadDim
	xn, err := b.layerNorm(scope+"/norm1", x, key+".norm1", s.Dim)
	if err != nil {
		return "", err
	}
	ln, err := b.layerNorm(scope+"/norm2", lat, key+".norm2", s.Dim)
	if err != nil {
		return "", err
	}
	q, err := b.linear(scope+"/to_q", ln, key+".to_q", s.Dim, inner, false)
	if err != nil {
		return "", err
	}
	kvIn := b.Node("Concat", scope+"/Concat", []string{xn, ln}, onnx.AttrInt("axis", 1))
	kv, err := b.r.get(key+".to_kv.weight", int64(2*inner), int64(s.Dim))
	if err != nil {
		return "", err
	}
	// to_kv(...).chunk(2, dim=-1): the first inner output rows are K, the rest V.
	half := inner * s.Dim
	k, err := b.linearValues(scope+"/to_k", kvIn, key+".to_kv.weight.k", kv[:half], s.Dim, inner, false, "")
	if err != nil {
		return "", err
	}
	v, err := b.linearValues(scope+"/to_v", kvIn, key+".to_kv.weight.v", kv[half:], s.Dim, inner, false, "")
	if err != nil {
		return "", err
	}
	split := func(name, t string) string {
		r := b.Node("Reshape", scope+"/"+name+"/Reshape", []string{t, b.ints(0, 0, int64(s.Heads), int64(s.HeadDim))})
		return b.Node("Transpose", scope+"/"+name+"/Transpose", []string{r}, onnx.AttrInts("perm", 0, 2, 1, 3))
	}
	sc := b.scalar(float32(1 / math.Sqrt(math.Sqrt(float64(s.HeadDim)))))
	qh := b.Node("Mul", scope+"/q_scale", []string{split("q", q), sc})
	kh := b.Node("Mul", scope+"/k_scale", []string{split("k", k), sc})
	kt := b.Node("Transpose", scope+"/k/Transpose_1", []string{kh}, onnx.AttrInts("perm", 0, 1, 3, 2))
	w := b.Node("MatMul", scope+"/MatMul", []string{qh, kt})
	p := b.Node("Softmax", scope+"/Softmax", []string{w}, onnx.AttrInt("axis", -1))
	o := b.Node("MatMul", scope+"/MatMul_1", []string{p, split("v", v)})
	o = b.Node("Transpose", scope+"/Transpose", []string{o}, onnx.AttrInts("perm", 0, 2, 1, 3))
	o = b.Node("Reshape", scope+"/Reshape", []string{o, b.ints(0, 0, int64(inner))})
	out, err := b.linear(scope+"/to_out", o, key+".to_out", inner, s.Dim, false)
	if err != nil {
		return "", err
	}
	return b.Node("Add", scope+"/residual", []string{out, lat}), nil
}

func (b *resampler) feedForward(i int, lat string, s ResamplerShape) (string, error) {
	key := fmt.Sprintf("image_proj.layers.%d.1", i)
	scope := fmt.Sprintf("/image_proj/layers.%d.1", i)
	h, err := b.layerNorm(scope+"/0", lat, key+".0", s.Dim)
	if err != nil {
		return "", err
	}
	if h, err = b.linear(scope+"/1", h, key+".1", s.Dim, s.FeedForward, false); err != nil {
		return "", err
	}
	// nn.GELU(): the exact, erf form.
	e := b.Node("Erf", scope+"/2/Erf", []string{b.Node("Mul", scope+"/2/Mul", []string{h, b.scalar(float32(1 / math.Sqrt2))})})
	e = b.Node("Add", scope+"/2/Add", []string{e, b.scalar(1)})
	h = b.Node("Mul", scope+"/2/Mul_1", []string{b.Node("Mul", scope+"/2/Mul_2", []string{h, e}), b.scalar(0.5)})
	if h, err = b.linear(scope+"/3", h, key+".3", s.FeedForward, s.Dim, false); err != nil {
		return "", err
	}
	return b.Node("Add", scope+"/residual", []string{h, lat}), nil
}

// transpose turns a row-major rows×cols matrix into cols×rows.
func transpose(v []float32, rows, cols int) []float32 {
	out := make([]float32, len(v))
	for r := range rows {
		for c := range cols {
			out[c*rows+r] = v[r*cols+c]
		}
	}
	return out
}
