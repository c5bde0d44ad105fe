package ipadapter

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features/safetensors"
)

// tinyShape is a Resampler at small sizes with IP-Adapter Plus's structure: 4 layers, 16
// queries, width 16 (the tiny U-Net's context width), image features of width 24.
var tinyShape = ResamplerShape{Embedding: 24, Dim: 16, Queries: 16, Output: 16, Depth: 4, Heads: 2, HeadDim: 8, FeedForward: 64}

type tensorSet struct {
	list []safetensors.Tensor
	vals map[string][]float32
	rng  *rand.Rand
	half bool
}

func newTensorSet(seed uint64, half bool) *tensorSet {
	return &tensorSet{vals: map[string][]float32{}, rng: rand.New(rand.NewPCG(seed, 7)), half: half}
}

// add stores a random tensor (std around mean) and keeps the values the file will return.
func (s *tensorSet) add(name string, mean, std float64, shape ...int64) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + s.rng.NormFloat64()*std)
		if s.half {
			v[i] = onnx.HalfToFloat(onnx.FloatToHalf(v[i]))
		}
	}
	s.vals[name] = v
	if s.half {
		s.list = append(s.list, safetensors.Float16s(name, shape, v))
	} else {
		s.list = append(s.list, safetensors.Float32s(name, shape, v))
	}
}

func (s *tensorSet) file(t testing.TB) *safetensors.File {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, s.list, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (s *tensorSet) write(t testing.TB, path string) {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, s.list, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addResampler adds "image_proj.*" with the real key names.
func (s *tensorSet) addResampler(r ResamplerShape) {
	e, d, q, o, inner, ff := int64(r.Embedding), int64(r.Dim), int64(r.Queries), int64(r.Output), int64(r.Heads*r.HeadDim), int64(r.FeedForward)
	s.add("image_proj.latents", 0, 1/math.Sqrt(float64(d)), 1, q, d)
	s.add("image_proj.proj_in.weight", 0, 1/math.Sqrt(float64(e)), d, e)
	s.add("image_proj.proj_in.bias", 0, 0.1, d)
	for i := range r.Depth {
		p := fmt.Sprintf("image_proj.layers.%d.", i)
		for _, ln := range []string{"0.norm1", "0.norm2", "1.0"} {
			s.add(p+ln+".weight", 1, 0.2, d)
			s.add(p+ln+".bias", 0, 0.1, d)
		}
		s.add(p+"0.to_q.weight", 0, 1/math.Sqrt(float64(d)), inner, d)
		s.add(p+"0.to_kv.weight", 0, 1/math.Sqrt(float64(d)), 2*inner, d)
		s.add(p+"0.to_out.weight", 0, 1/math.Sqrt(float64(inner)), d, inner)
		s.add(p+"1.1.weight", 0, 1/math.Sqrt(float64(d)), ff, d)
		s.add(p+"1.3.weight", 0, 1/math.Sqrt(float64(ff)), d, ff)
	}
	s.add("image_proj.proj_out.weight", 0, 1/math.Sqrt(float64(d)), o, d)
	s.add("image_proj.proj_out.bias", 0, 0.1, o)
	s.add("image_proj.norm_out.weight", 1, 0.2, o)
	s.add("image_proj.norm_out.bias", 0, 0.1, o)
}

// addIPLayers adds "ip_adapter.<k>.to_{k,v}_ip.weight" for the cross-attention layers of a
// U-Net, keyed by the order the test states independently of the code: down, up, mid.
func (s *tensorSet) addIPLayers(t testing.TB, layers []attention.Layer, ctx int) map[string]int {
	t.Helper()
	keys := expectedKeys(t, layers)
	for _, l := range layers {
		k, ok := keys[l.Name]
		if !ok {
			continue
		}
		c := int64(l.Channels())
		s.add(fmt.Sprintf("ip_adapter.%d.to_k_ip.weight", k), 0, 1/math.Sqrt(float64(ctx)), c, int64(ctx))
		s.add(fmt.Sprintf("ip_adapter.%d.to_v_ip.weight", k), 0, 1/math.Sqrt(float64(ctx)), c, int64(ctx))
	}
	return keys
}

// expectedKeys lists the SD 1.5 attn2 layers in diffusers' attn_processors order (the U-Net
// registers down_blocks, up_blocks, then mid_block) and gives the i-th key 2i+1.
func expectedKeys(t testing.TB, layers []attention.Layer) map[string]int {
	t.Helper()
	var order []string
	for b, n := range []int{2, 2, 2} {
		for a := range n {
			order = append(order, fmt.Sprintf("down_blocks.%d.attentions.%d.transformer_blocks.0.attn2", b, a))
		}
	}
	for b := 1; b <= 3; b++ {
		for a := range 3 {
			order = append(order, fmt.Sprintf("up_blocks.%d.attentions.%d.transformer_blocks.0.attn2", b, a))
		}
	}
	order = append(order, "mid_block.attentions.0.transformer_blocks.0.attn2")
	have := map[string]bool{}
	for _, l := range layers {
		have[l.Name] = true
	}
	keys := map[string]int{}
	for i, name := range order {
		if !have[name] {
			t.Fatalf("the U-Net has no layer %s", name)
		}
		keys[name] = 2*i + 1
	}
	return keys
}

func openRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	rt, err := engine.Open(engine.Options{})
	if errors.Is(err, engine.ErrNoCgo) || errors.Is(err, engine.ErrNoLibrary) {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func load(t testing.TB, rt *engine.Runtime, m *onnxpb.ModelProto, outputs []string) *engine.Session {
	t.Helper()
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Load(data, engine.SessionOptions{Outputs: outputs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randoms(rng *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * std)
	}
	return v
}

// relErr is ‖got − want‖ / ‖want‖.
func relErr(got, want []float32) float64 {
	var d, w float64
	for i := range want {
		x := float64(got[i]) - float64(want[i])
		d += x * x
		w += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(d / w)
}

// plainUNet is the tiny SD U-Net of testgraphs with its cross-attention layers.
func plainUNet(t testing.TB) (*onnxpb.ModelProto, testgraphs.UNetOptions, []attention.Layer) {
	t.Helper()
	o := testgraphs.TinyUNet()
	m, _ := testgraphs.SDUNet(o)
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	var cross []attention.Layer
	for _, l := range layers {
		if l.Kind == attention.Cross {
			cross = append(cross, l)
		}
	}
	return m, o, cross
}

// tinyEncoder is a CLIP-vision-shaped encoder as Hugging Face's eager code exports it:
// pixel_values [B, 3, 224, 224] → 32-px patches + CLS + positions → pre_layrnorm → layers of
// (layer_norm1 → self_attn → residual, layer_norm2 → fc1 → GELU → fc2 → residual) →
// post_layernorm of CLS → visual_projection → image_embeds. It returns the graph and the name
// of hidden_states[-2], the output of the second-to-last layer.
func tinyEncoder(width, heads, layers int, decomposedLN bool) (*onnxpb.ModelProto, string) {
	b := onnx.NewBuilder("main_graph")
	rng := rand.New(rand.NewPCG(11, 13))
	n := 0
	w := func(std float64, mean float32, dims ...int64) string {
		n++
		k := int64(1)
		for _, d := range dims {
			k *= d
		}
		v := randoms(rng, int(k), std)
		for i := range v {
			v[i] += mean
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
	c := int64(width)
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
	p := b.Node("Conv", e+"/patch_embedding/Conv", []string{px, w(1/math.Sqrt(3*32*32), 0, c, 3, 32, 32)},
		onnx.AttrInts("kernel_shape", 32, 32), onnx.AttrInts("strides", 32, 32))
	p = b.Node("Transpose", e+"/Transpose", []string{b.Node("Reshape", e+"/Reshape", []string{p, ints(0, c, -1)})}, onnx.AttrInts("perm", 0, 2, 1))
	batch := b.Node("Slice", e+"/Slice", []string{b.Node("Shape", e+"/Shape", []string{px}), ints(0), ints(1)})
	cls := b.Node("Expand", e+"/Expand", []string{w(0.5, 0, 1, 1, c), b.Node("Concat", e+"/Concat", []string{batch, ints(1, c)}, onnx.AttrInt("axis", 0))})
	h := b.Node("Concat", e+"/Concat_1", []string{cls, p}, onnx.AttrInt("axis", 1))
	h = b.Node("Add", e+"/Add", []string{h, w(0.5, 0, 1, 50, c)})
	h = ln("/vision_model/pre_layrnorm", h, false)
	d := c / int64(heads)
	penultimate := ""
	for i := range layers {
		if i == layers-1 {
			penultimate = h
		}
		s := fmt.Sprintf("/vision_model/encoder/layers.%d", i)
		x := ln(s+"/layer_norm1", h, decomposedLN)
		a := s + "/self_attn"
		q := b.Node("Mul", a+"/Mul", []string{linear(a+"/q_proj", x, c, c), scalar(float32(1 / math.Sqrt(float64(d))))})
		k := linear(a+"/k_proj", x, c, c)
		v := linear(a+"/v_proj", x, c, c)
		split := func(name, t string, perm ...int64) string {
			r := b.Node("Reshape", a+"/"+name+"/Reshape", []string{t, ints(0, 0, int64(heads), d)})
			return b.Node("Transpose", a+"/"+name+"/Transpose", []string{r}, onnx.AttrInts("perm", perm...))
		}
		sc := b.Node("MatMul", a+"/MatMul", []string{split("q", q, 0, 2, 1, 3), split("k", k, 0, 2, 3, 1)})
		pr := b.Node("Softmax", a+"/Softmax", []string{sc}, onnx.AttrInt("axis", -1))
		o := b.Node("MatMul", a+"/MatMul_1", []string{pr, split("v", v, 0, 2, 1, 3)})
		o = b.Node("Reshape", a+"/Reshape", []string{b.Node("Transpose", a+"/Transpose", []string{o}, onnx.AttrInts("perm", 0, 2, 1, 3)), ints(0, 0, c)})
		h = b.Node("Add", s+"/Add", []string{h, linear(a+"/out_proj", o, c, c)})
		m := ln(s+"/layer_norm2", h, decomposedLN)
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
	b.Output("last_hidden_state", onnx.Float, -1, 50, c)
	return b.Model(), penultimate
}

func writeModel(t testing.TB, dir, name string, m *onnxpb.ModelProto) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := onnx.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}
