// Package testgraphs generates small ONNX graphs shaped like real exports, one per attention
// variant the attention finder recognises, plus runnable miniatures of the Stable Diffusion
// pipeline (U-Net, VAE encoder, text encoder; WriteTinyDiffusers writes them as a diffusers
// folder), a ViT with its patch embedding and a CLIP vision encoder (IP-Adapter's image
// encoder). Weights are random from a fixed seed; most generators also return the ground truth
// a test checks the finder against.
package testgraphs

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// Truth is what a generated graph holds.
type Truth struct {
	Layers []LayerTruth
	Inputs []Input // graph inputs with the shapes the generator chose
	// Float16 marks graphs computing in float16: their own tensors cannot be read as float32.
	Float16 bool
}

// Input is one graph input and a shape to feed it.
type Input struct {
	Name  string
	Elem  int32
	Shape []int64
}

// LayerTruth describes one attention layer of a generated graph.
type LayerTruth struct {
	Name    string
	Short   string
	Kind    string // self or cross
	Heads   int
	KVHeads int // key/value heads of grouped-query attention; 0 means Heads
	HeadDim int
	Scale   float64

	// QIn, KIn and VIn are the tensors the projections read ([B, S, in]); W* are the
	// projection weights as [in, C] row-major, B* the biases (nil when none). W* are nil for
	// quantised projections.
	QIn, KIn, VIn string
	Wq, Wk, Wv    []float32
	Bq, Bk, Bv    []float32
	InQ, InKV     int

	// Out is the tensor holding the layer's attention output, [B, S, C], before the output
	// projection.
	Out string
	// Tokens is the query token count at the generator's sizes.
	Tokens int
	// Causal marks layers with a causal mask: query i sees keys 0…i only.
	Causal bool
}

// gb wraps onnx.Builder with TorchScript- or dynamo-style naming and seeded weights.
type gb struct {
	*onnx.Builder
	rng    *rand.Rand
	used   map[string]int
	consts int
	// noData declares weights as external data that does not exist: structure only.
	noData  bool
	extOff  int64
	dynamo  bool
	fp16    bool
	counter int
}

func newGB(name string, seed uint64) *gb {
	return &gb{Builder: onnx.NewBuilder(name), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), used: map[string]int{}}
}

// scope is a module path in TorchScript form ("/a/b") for naming nodes.
type scope struct {
	g    *gb
	path string // "/down_blocks.0/attentions.0"
}

func (g *gb) scope(path string) scope { return scope{g: g, path: path} }

func (s scope) sub(name string) scope { return scope{g: s.g, path: s.path + "/" + name} }

// node adds a default-domain node named like the exporters do and returns its output.
func (s scope) node(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return s.nodeIn("", op, inputs, 1, attrs...)[0]
}

func (s scope) nodeIn(domain, op string, inputs []string, n int, attrs ...*onnxpb.AttributeProto) []string {
	g := s.g
	if g.dynamo {
		g.counter++
		val := fmt.Sprintf("%s_%d", strings.ToLower(op), g.counter)
		outs := g.NodeIn(domain, op, "node_"+val, inputs, n, attrs...)
		last := g.Last()
		for i := range last.Output {
			last.Output[i] = val
			if i > 0 {
				last.Output[i] = fmt.Sprintf("%s_%d", val, i)
			}
		}
		outs = append([]string(nil), last.Output...)
		// Cumulative module paths, root first, the node's own name last.
		parts := strings.Split(strings.Trim(s.path, "/"), "/")
		scopes := []string{"''"}
		acc := ""
		for _, p := range parts {
			if p == "" {
				continue
			}
			if acc != "" {
				acc += "."
			}
			acc += p
			scopes = append(scopes, "'"+acc+"'")
		}
		scopes = append(scopes, "'"+val+"'")
		last.MetadataProps = append(last.MetadataProps, &onnxpb.StringStringEntryProto{Key: "pkg.torch.onnx.name_scopes", Value: "[" + strings.Join(scopes, ", ") + "]"})
		return outs
	}
	base := s.path + "/" + op
	k := g.used[base]
	g.used[base]++
	name := base
	if k > 0 {
		name = fmt.Sprintf("%s_%d", base, k)
	}
	return g.NodeIn(domain, op, name, inputs, n, attrs...)
}

// ints adds an int64 constant named like TorchScript's anonymous initializers.
func (g *gb) ints(vals ...int64) string {
	g.consts++
	return g.Ints(fmt.Sprintf("onnx::Const_%d", g.consts), []int64{int64(len(vals))}, vals)
}

// scalarInt adds a 0-d int64 constant.
func (g *gb) scalarInt(v int64) string {
	g.consts++
	return g.Initializer(onnx.IntTensor(fmt.Sprintf("onnx::Const_%d", g.consts), nil, []int64{v}))
}

// scalar adds a 0-d float constant of the graph's float type.
func (g *gb) scalar(v float32) string {
	g.consts++
	name := fmt.Sprintf("onnx::Scalar_%d", g.consts)
	if g.fp16 {
		return g.Initializer(halfTensor(name, nil, []float32{v}))
	}
	return g.Scalar(name, v)
}

// weight adds a random float initializer of the given shape (scaled like a Kaiming init) and
// returns its name and values (float32 even when stored as float16).
func (g *gb) weight(dims []int64, std float64) (string, []float32) {
	g.consts++
	name := fmt.Sprintf("onnx::MatMul_%d", g.consts)
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	if g.noData {
		t := &onnxpb.TensorProto{Name: name, Dims: dims, DataType: onnx.Float, DataLocation: onnxpb.TensorProto_EXTERNAL,
			ExternalData: []*onnxpb.StringStringEntryProto{
				{Key: "location", Value: "weights.pb"},
				{Key: "offset", Value: fmt.Sprint(g.extOff)},
				{Key: "length", Value: fmt.Sprint(4 * n)},
			}}
		g.extOff += 4 * n
		return g.Initializer(t), nil
	}
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(g.rng.NormFloat64() * std)
	}
	if g.fp16 {
		for i, v := range vals {
			vals[i] = onnx.HalfToFloat(onnx.FloatToHalf(v))
		}
		return g.Initializer(halfTensor(name, dims, vals)), vals
	}
	return g.Floats(name, dims, vals), vals
}

func halfTensor(name string, dims []int64, vals []float32) *onnxpb.TensorProto {
	raw := make([]byte, 2*len(vals))
	for i, v := range vals {
		h := onnx.FloatToHalf(v)
		raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
	}
	return &onnxpb.TensorProto{Name: name, Dims: append([]int64(nil), dims...), DataType: onnx.Float16, RawData: raw}
}

// linear is a projection x·W (+ b): TorchScript order Add(b, MatMul) or dynamo order
// Add(MatMul(x, Transpose(W)), b).
func (s scope) linear(x string, in, out int, bias bool) (y string, w, b []float32) {
	g := s.g
	std := 1 / math.Sqrt(float64(in))
	if g.dynamo {
		wn, wv := g.weight([]int64{int64(out), int64(in)}, std) // PyTorch's [out, in]
		wt := s.node("Transpose", []string{wn}, onnx.AttrInts("perm", 1, 0))
		y = s.node("MatMul", []string{x, wt})
		w = transpose(wv, out, in)
	} else {
		var wn string
		wn, w = g.weight([]int64{int64(in), int64(out)}, std)
		y = s.node("MatMul", []string{x, wn})
	}
	if bias {
		var bn string
		bn, b = g.weight([]int64{int64(out)}, 0.1)
		if g.dynamo {
			y = s.node("Add", []string{y, bn})
		} else {
			y = s.node("Add", []string{bn, y})
		}
	}
	return y, w, b
}

func transpose(v []float32, rows, cols int) []float32 {
	if v == nil {
		return nil
	}
	out := make([]float32, len(v))
	for r := range rows {
		for c := range cols {
			out[c*rows+r] = v[r*cols+c]
		}
	}
	return out
}

// layerNorm adds a LayerNormalization over the last axis.
func (s scope) layerNorm(x string, c int) string {
	g := s.g
	scale, _ := g.weight([]int64{int64(c)}, 0.2)
	bias, _ := g.weight([]int64{int64(c)}, 0.1)
	if !g.noData {
		// Centre the scale on 1 so activations stay well conditioned.
		t := g.Graph().Initializer[len(g.Graph().Initializer)-2]
		if t.GetDataType() == onnx.Float {
			vals, _ := onnx.Floats(t)
			for i := range vals {
				vals[i] += 1
			}
			*t = *onnx.FloatTensor(t.GetName(), t.GetDims(), vals)
		}
	}
	return s.node("LayerNormalization", []string{x, scale, bias}, onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-5))
}

// dim reads one size of x at run time: Gather(Shape(x), i), a 0-d int64.
func (s scope) dim(x string, i int64) string {
	sh := s.node("Shape", []string{x})
	return s.node("Gather", []string{sh, s.g.scalarInt(i)}, onnx.AttrInt("axis", 0))
}

// unsq turns a 0-d int64 into [1].
func (s scope) unsq(x string) string {
	return s.node("Unsqueeze", []string{x, s.g.ints(0)})
}

// shape concatenates pieces into a 1-D shape: int64 constants or 0-d run-time sizes.
func (s scope) shape(pieces ...any) string {
	var ins []string
	for _, p := range pieces {
		switch v := p.(type) {
		case int:
			ins = append(ins, s.g.ints(int64(v)))
		case string:
			ins = append(ins, s.unsq(v))
		}
	}
	return s.node("Concat", ins, onnx.AttrInt("axis", 0))
}

func (s scope) reshape(x, shape string) string { return s.node("Reshape", []string{x, shape}) }

func (s scope) transpose(x string, perm ...int64) string {
	return s.node("Transpose", []string{x}, onnx.AttrInts("perm", perm...))
}

func (g *gb) model() *onnxpb.ModelProto {
	m := g.Model()
	m.ProducerName = "pytorch"
	m.ProducerVersion = "2.1.0"
	return m
}
