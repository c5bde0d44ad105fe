package attention

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// plan says how Instrument exposes a layer's tensors.
type plan struct {
	q, k, v, out tap
}

// tap derives one exposed tensor from a graph tensor, applying in order: a slice of a packed
// axis (then merging heads), a head merge of [B, H, S, D], a MatMul with a column slice of
// merged weights, a bias slice, and a Cast to float32.
type tap struct {
	name string // the exposed output's name
	src  string // the graph tensor it starts from; "" for no tap

	packed      int64 // >0: src is [B, S, H, packed, D]; take index packedIndex of axis 3
	packedIndex int64
	bhsd        bool // src is [B, H, S, D]

	weight                   string // MatMul(src, weight[:, off:off+size])
	weightOffset, weightSize int64
	bias                     string // Add(bias[off:off+size])
	biasOffset, biasSize     int64

	cast bool // to float32
}

func (t tap) direct() bool {
	return t.packed == 0 && !t.bhsd && t.weight == "" && t.bias == "" && !t.cast
}

// nameTaps decides, per tensor, whether it can be exposed as it is and names the outputs.
func (ix *graph) nameTaps(l *Layer) {
	if l.plan == nil {
		return
	}
	base := "diffsim/" + l.Name + "/"
	for _, t := range []struct {
		tap  *tap
		dst  *string
		what string
	}{{&l.plan.q, &l.Q, "q"}, {&l.plan.k, &l.K, "k"}, {&l.plan.v, &l.V, "v"}, {&l.plan.out, &l.Out, "out"}} {
		if t.tap.src == "" {
			continue
		}
		// The Go runtime wrapper cannot return float16 outputs: anything not known to be
		// float32 is cast (a MatMul with sliced weights computes in its input's type).
		t.tap.cast = ix.elemType(t.tap.src) != onnx.Float
		if t.tap.direct() {
			t.tap.name = t.tap.src
		} else {
			t.tap.name = ix.fresh(base + t.what)
		}
		*t.dst = t.tap.name
	}
}

// elemType infers a value's element type from declarations, initializers and producers;
// 0 when unknown.
func (ix *graph) elemType(v string) int32 {
	for range 4 * maxWalk {
		if vi := ix.types[v]; vi != nil {
			if e := vi.GetType().GetTensorType().GetElemType(); e != 0 {
				return e
			}
		}
		if t := ix.inits[v]; t != nil {
			return t.GetDataType()
		}
		n := ix.producer[v]
		if n == nil {
			return 0
		}
		switch {
		case isOp(n, "Cast"):
			return int32(attrInt(n, "to", 0))
		case isOp(n, "Constant"):
			if a := onnx.Attr(n, "value"); a != nil {
				return a.GetT().GetDataType()
			}
			return 0
		case isOp(n, "Shape", "Size", "NonZero", "ArgMax", "ArgMin"):
			return onnx.Int64
		case isOp(n, "DynamicQuantizeLinear", "QuantizeLinear"):
			return 0
		case isOp(n, "MatMulInteger", "ConvInteger"):
			return onnx.Int32
		case isOp(n, "Where"):
			v = input(n, 1)
		case isOp(n, "LayerNormalization", "SimplifiedLayerNormalization", "Softmax", "MatMul", "Gemm", "Add", "Sub", "Mul",
			"Div", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Slice", "Split", "Concat", "Gather",
			"Dropout", "Flatten", "Relu", "Sigmoid", "Tanh", "Erf", "Gelu", "Exp", "Sqrt", "Pow", "Conv", "Resize",
			"InstanceNormalization", "GroupNormalization", "Expand", "Neg", "ReduceMean", "Clip", "Tile"):
			v = input(n, 0)
		case n.GetDomain() == "com.microsoft":
			switch n.GetOpType() {
			case "MatMulIntegerToFloat", "DynamicQuantizeMatMul":
				return onnx.Float
			case "MatMulNBits":
				v = input(n, 0)
			default:
				v = input(n, 0)
			}
		default:
			return 0
		}
	}
	return 0
}

// Instrument returns the model bytes with every layer's Q, K, V (and Out, where present) added
// as graph outputs, and the names of the outputs it added, in layer order (Q, K, V, Out).
// Nodes it needs (slices of packed or merged projections, head merges, casts to float32) are
// appended with protobuf's merge rule, like the outputs, so the original bytes are kept as
// they are: ir_version, opsets, functions, metadata and external-data references included.
// m is the decoded model; layers come from Find on it.
func Instrument(model []byte, m *onnxpb.ModelProto, layers []Layer) ([]byte, []string, error) {
	if m.GetGraph() == nil {
		return nil, nil, errors.New("instrument: the model has no graph")
	}
	ix := newGraph(m)
	var extra onnxpb.GraphProto
	var names []string
	seen := map[string]bool{}
	for _, o := range m.GetGraph().GetOutput() {
		seen[o.GetName()] = true
	}
	for _, l := range layers {
		if l.plan == nil {
			return nil, nil, fmt.Errorf("instrument %s: layer was not returned by Find", l.Name)
		}
		for _, t := range []tap{l.plan.q, l.plan.k, l.plan.v, l.plan.out} {
			if t.src == "" {
				continue
			}
			if !ix.exists(t.src) {
				return nil, nil, fmt.Errorf("instrument %s: tensor %q is not in this graph (Find ran on another model?)", l.Name, t.src)
			}
			if !t.direct() {
				if err := emit(&extra, l.Name, t); err != nil {
					return nil, nil, err
				}
			}
			if !seen[t.name] {
				seen[t.name] = true
				names = append(names, t.name)
			}
		}
	}
	for _, name := range names {
		extra.Output = append(extra.Output, &onnxpb.ValueInfoProto{Name: name})
	}
	graph, err := proto.MarshalOptions{Deterministic: true}.Marshal(&extra)
	if err != nil {
		return nil, nil, err
	}
	out := make([]byte, 0, len(model)+len(graph)+8)
	out = append(out, model...)
	out = protowire.AppendTag(out, 7, protowire.BytesType) // ModelProto.graph: merged into the graph
	out = protowire.AppendBytes(out, graph)
	return out, names, nil
}

// emit appends the nodes and constants that compute one tap.
func emit(g *onnxpb.GraphProto, layer string, t tap) error {
	prefix := t.name
	if prefix == "" || t.src == "" {
		return fmt.Errorf("instrument %s: unnamed tap", layer)
	}
	step := 0
	cur := t.src
	next := func() string {
		step++
		return fmt.Sprintf("%s/%d", prefix, step)
	}
	ints := func(vals ...int64) string {
		name := next() + "/const"
		g.Initializer = append(g.Initializer, onnx.IntTensor(name, []int64{int64(len(vals))}, vals))
		return name
	}
	node := func(op string, inputs []string, attrs ...*onnxpb.AttributeProto) {
		name := next()
		g.Node = append(g.Node, &onnxpb.NodeProto{Name: name, OpType: op, Input: inputs, Output: []string{name}, Attribute: attrs})
		cur = name
	}
	switch {
	case t.packed > 0:
		node("Slice", []string{cur, ints(t.packedIndex), ints(t.packedIndex + 1), ints(3)})
		node("Reshape", []string{cur, ints(0, 0, -1)})
	case t.bhsd:
		node("Transpose", []string{cur}, onnx.AttrInts("perm", 0, 2, 1, 3))
		node("Reshape", []string{cur, ints(0, 0, -1)})
	}
	if t.weight != "" {
		x := cur
		node("Slice", []string{t.weight, ints(t.weightOffset), ints(t.weightOffset + t.weightSize), ints(1)})
		node("MatMul", []string{x, cur})
	}
	if t.bias != "" {
		y := cur
		node("Slice", []string{t.bias, ints(t.biasOffset), ints(t.biasOffset + t.biasSize), ints(0)})
		node("Add", []string{y, cur})
	}
	if t.cast {
		node("Cast", []string{cur}, onnx.AttrInt("to", int64(onnx.Float)))
	}
	// The last node produces the tap's name.
	last := g.Node[len(g.Node)-1]
	last.Output[0] = t.name
	return nil
}
