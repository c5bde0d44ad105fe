// Package infer computes the shape of every tensor of an ONNX graph for given input shapes,
// without running it and without reading any weight: ONNX shape inference with data
// propagation (a Reshape whose target is computed from Shape, Gather and Concat at run time
// gets a concrete shape), for the operators diffusion U-Nets, VAE and text encoders and vision
// transformers are exported with, fused ONNX Runtime operators included.
//
// What it cannot tell (an operator it does not know, a shape read from data) it leaves
// unknown rather than guessed: callers fall back to what a run measures.
package infer

import (
	"math"
	"slices"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// Unknown marks a dimension inference could not tell.
const Unknown = -1

// maxRank bounds the rank of a tensor whose dims are all unknown (a damaged graph may claim any).
const maxRank = 16

// maxValues bounds the constants whose values are tracked: shapes and scalars, never weights.
const maxValues = 64

// value is what is known of one tensor: its dims (nil: not even the rank) and, for small
// tensors computed from shapes and constants, its values.
type value struct {
	dims []int64
	vals []float64 // nil unless every element is known
}

func (v value) known() bool {
	if v.dims == nil {
		return false
	}
	for _, d := range v.dims {
		if d < 0 {
			return false
		}
	}
	return true
}

func (v value) ints() ([]int64, bool) {
	if v.vals == nil {
		return nil, false
	}
	out := make([]int64, len(v.vals))
	for i, f := range v.vals {
		out[i] = int64(f)
	}
	return out, true
}

func count(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return Unknown
		}
		n *= d
	}
	return n
}

// Shapes infers the dims of every value of m's main graph, with the graph inputs given the
// shapes in inputs (an input missing there keeps its declared shape). A dimension that cannot
// be told is Unknown; a value whose rank cannot be told is absent.
func Shapes(m *onnxpb.ModelProto, inputs map[string][]int64) map[string][]int64 {
	vals := run(m.GetGraph(), inputs)
	out := make(map[string][]int64, len(vals))
	for name, v := range vals {
		if v.dims != nil {
			out[name] = v.dims
		}
	}
	return out
}

type state struct {
	vals     map[string]value
	declared map[string][]int64 // value_info with every dim fixed
	n        *onnxpb.NodeProto
}

func run(g *onnxpb.GraphProto, inputs map[string][]int64) map[string]value {
	s := &state{vals: map[string]value{}, declared: map[string][]int64{}}
	for _, vi := range g.GetValueInfo() {
		if d, ok := declaredDims(vi); ok {
			s.declared[vi.GetName()] = d
		}
	}
	for _, t := range g.GetInitializer() {
		s.vals[t.GetName()] = tensorValue(t)
	}
	for _, vi := range g.GetInput() {
		if _, init := s.vals[vi.GetName()]; init {
			continue
		}
		if d, ok := inputs[vi.GetName()]; ok {
			s.vals[vi.GetName()] = value{dims: slices.Clone(d)}
			continue
		}
		if d := typeDims(vi); d != nil {
			s.vals[vi.GetName()] = value{dims: d}
		}
	}
	for _, n := range g.GetNode() {
		s.n = n
		outs := s.node(n)
		for i, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			var v value
			if i < len(outs) {
				v = outs[i]
			}
			if !v.known() {
				if d, ok := s.declared[o]; ok {
					v = value{dims: d}
				}
			}
			if v.vals != nil && int64(len(v.vals)) != count(v.dims) {
				v.vals = nil
			}
			s.vals[o] = v
		}
	}
	return s.vals
}

func typeDims(vi *onnxpb.ValueInfoProto) []int64 {
	tt := vi.GetType().GetTensorType()
	if tt == nil || tt.GetShape() == nil {
		return nil
	}
	dims := []int64{}
	for _, d := range tt.GetShape().GetDim() {
		if v, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && v.DimValue >= 0 {
			dims = append(dims, v.DimValue)
		} else {
			dims = append(dims, Unknown)
		}
	}
	return dims
}

func declaredDims(vi *onnxpb.ValueInfoProto) ([]int64, bool) {
	d := typeDims(vi)
	return d, d != nil && count(d) >= 0
}

func tensorValue(t *onnxpb.TensorProto) value {
	v := value{dims: slices.Clone(t.GetDims())}
	if v.dims == nil {
		v.dims = []int64{}
	}
	n := onnx.NumElements(t)
	if n < 0 || n > maxValues || onnx.IsExternal(t) {
		return v
	}
	switch t.GetDataType() {
	case onnx.Int64, onnx.Int32:
		if x, err := onnx.Ints(t); err == nil {
			v.vals = make([]float64, len(x))
			for i, e := range x {
				v.vals[i] = float64(e)
			}
		}
	case onnx.Float, onnx.Float16, onnx.Double:
		if x, err := onnx.Floats(t); err == nil {
			v.vals = make([]float64, len(x))
			for i, e := range x {
				v.vals[i] = float64(e)
			}
		}
	}
	return v
}

// in is the node's i-th input (zero when absent or unknown).
func (s *state) in(i int) value {
	ins := s.n.GetInput()
	if i >= len(ins) || ins[i] == "" {
		return value{}
	}
	return s.vals[ins[i]]
}

func (s *state) has(i int) bool {
	ins := s.n.GetInput()
	return i < len(ins) && ins[i] != ""
}

func (s *state) attrInt(name string, def int64) int64 {
	if a := onnx.Attr(s.n, name); a != nil {
		return a.GetI()
	}
	return def
}

func (s *state) attrInts(name string) []int64 {
	if a := onnx.Attr(s.n, name); a != nil {
		return a.GetInts()
	}
	return nil
}

func (s *state) attrFloats(name string) []float32 {
	if a := onnx.Attr(s.n, name); a != nil {
		return a.GetFloats()
	}
	return nil
}

// intsFrom reads integer values from input i when present, else from attribute name.
func (s *state) intsFrom(i int, name string) ([]int64, bool) {
	if s.has(i) {
		return s.in(i).ints()
	}
	if a := onnx.Attr(s.n, name); a != nil {
		return a.GetInts(), true
	}
	return nil, false
}

func axis(a int64, rank int) int {
	if a < 0 {
		a += int64(rank)
	}
	return int(a)
}

func same(v value) []value { return []value{{dims: v.dims}} }

func unknownRank(n int) []int64 {
	if n < 0 || n > maxRank {
		return nil
	}
	d := make([]int64, n)
	for i := range d {
		d[i] = Unknown
	}
	return d
}

func (s *state) node(n *onnxpb.NodeProto) []value {
	domain := n.GetDomain()
	if domain != "" && domain != "ai.onnx" && domain != "com.microsoft" {
		return nil
	}
	x := s.in(0)
	switch n.GetOpType() {
	case "Identity", "Cast", "CastLike", "Dropout", "Neg", "Floor", "Ceil", "Round", "Abs":
		v := value{dims: x.dims}
		if x.vals != nil {
			v.vals = make([]float64, len(x.vals))
			for i, e := range x.vals {
				switch n.GetOpType() {
				case "Neg":
					e = -e
				case "Floor":
					e = math.Floor(e)
				case "Ceil":
					e = math.Ceil(e)
				case "Round":
					e = math.RoundToEven(e)
				case "Abs":
					e = math.Abs(e)
				case "Cast":
					if to := s.attrInt("to", 0); to == int64(onnx.Int64) || to == int64(onnx.Int32) {
						e = math.Trunc(e)
					}
				}
				v.vals[i] = e
			}
		}
		return []value{v}
	case "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Erf", "Reciprocal", "Softplus", "Softsign",
		"Gelu", "FastGelu", "QuickGelu", "BiasGelu", "Softmax", "LogSoftmax", "LayerNormalization",
		"SimplifiedLayerNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
		"InstanceNormalization", "GroupNormalization", "GroupNorm", "SkipGroupNorm", "BatchNormalization",
		"LpNormalization", "MeanVarianceNormalization", "Clip", "IsNaN", "IsInf", "Not", "Sin", "Cos",
		"HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu", "Mish", "Celu", "PRelu", "Trilu", "CumSum",
		"QuantizeLinear", "DequantizeLinear", "RotaryEmbedding", "Sign", "Shrink",
		"ThresholdedRelu", "Hardmax", "BiasDropout", "BitwiseNot":
		return same(x)
	case "DynamicQuantizeLinear": // y, and its scale and zero point as scalars
		return []value{{dims: x.dims}, {dims: []int64{}}, {dims: []int64{}}}
	case "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "LessOrEqual", "Greater",
		"GreaterOrEqual", "And", "Or", "Xor", "Max", "Min", "Sum", "Mean", "BiasAdd", "Where":
		return []value{s.elementwise(n.GetOpType())}
	case "Shape":
		if x.dims == nil {
			return nil
		}
		r := len(x.dims)
		start, end := axis(s.attrInt("start", 0), r), r
		if a := onnx.Attr(n, "end"); a != nil {
			end = axis(a.GetI(), r)
		}
		start, end = min(max(start, 0), r), min(max(end, 0), r)
		v := value{dims: []int64{int64(max(end-start, 0))}}
		if x.known() {
			for _, d := range x.dims[start:max(end, start)] {
				v.vals = append(v.vals, float64(d))
			}
			if v.vals == nil {
				v.vals = []float64{}
			}
		}
		return []value{v}
	case "Size":
		v := value{dims: []int64{}}
		if c := count(x.dims); x.dims != nil && c >= 0 {
			v.vals = []float64{float64(c)}
		}
		return []value{v}
	case "Constant":
		return []value{s.constant()}
	case "ConstantOfShape":
		shape, ok := x.ints()
		if !ok {
			if len(x.dims) == 1 && x.dims[0] >= 0 {
				return []value{{dims: unknownRank(int(x.dims[0]))}}
			}
			return nil
		}
		v := value{dims: shape}
		if c := count(shape); c >= 0 && c <= maxValues {
			fill := 0.0
			if a := onnx.Attr(n, "value"); a != nil {
				if t := tensorValue(a.GetT()); len(t.vals) == 1 {
					fill = t.vals[0]
				}
			}
			v.vals = make([]float64, c)
			for i := range v.vals {
				v.vals[i] = fill
			}
		}
		return []value{v}
	case "Range":
		a, b, d := s.in(0), s.in(1), s.in(2)
		if len(a.vals) == 1 && len(b.vals) == 1 && len(d.vals) == 1 && d.vals[0] != 0 {
			c := int64(math.Max(math.Ceil((b.vals[0]-a.vals[0])/d.vals[0]), 0))
			v := value{dims: []int64{c}}
			if c <= maxValues {
				v.vals = make([]float64, c)
				for i := range v.vals {
					v.vals[i] = a.vals[0] + float64(i)*d.vals[0]
				}
			}
			return []value{v}
		}
		return []value{{dims: []int64{Unknown}}}
	case "Gather":
		return []value{s.gather()}
	case "Unsqueeze":
		return []value{s.unsqueeze()}
	case "Squeeze":
		return []value{s.squeeze()}
	case "Concat":
		return []value{s.concat()}
	case "Reshape":
		return []value{s.reshape()}
	case "Flatten":
		if x.dims == nil {
			return nil
		}
		a := axis(s.attrInt("axis", 1), len(x.dims))
		return []value{{dims: []int64{count(x.dims[:a]), count(x.dims[a:])}}}
	case "Transpose":
		if x.dims == nil {
			return nil
		}
		perm := s.attrInts("perm")
		if perm == nil {
			for i := len(x.dims) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		if len(perm) != len(x.dims) {
			return nil
		}
		d := make([]int64, len(perm))
		for i, p := range perm {
			if p < 0 || int(p) >= len(x.dims) {
				return nil
			}
			d[i] = x.dims[p]
		}
		return []value{{dims: d}}
	case "MatMul", "MatMulInteger", "MatMulIntegerToFloat", "FusedMatMul":
		a, b := x, s.in(1)
		if n.GetOpType() == "FusedMatMul" {
			a, b = transposeLast(a, s.attrInt("transA", 0) != 0), transposeLast(b, s.attrInt("transB", 0) != 0)
		}
		return []value{{dims: matmul(a.dims, b.dims)}}
	case "MatMulNBits":
		if x.dims == nil {
			return nil
		}
		d := slices.Clone(x.dims)
		d[len(d)-1] = s.attrInt("N", Unknown)
		return []value{{dims: d}}
	case "Gemm":
		a, b := x.dims, s.in(1).dims
		if len(a) != 2 || len(b) != 2 {
			return nil
		}
		m, k := a[0], b[1]
		if s.attrInt("transA", 0) != 0 {
			m = a[1]
		}
		if s.attrInt("transB", 0) != 0 {
			k = b[0]
		}
		return []value{{dims: []int64{m, k}}}
	case "Conv", "ConvInteger", "QLinearConv":
		w := s.in(1)
		if n.GetOpType() == "QLinearConv" {
			x, w = s.in(0), s.in(3)
		}
		return []value{{dims: s.conv(x.dims, w.dims)}}
	case "ConvTranspose":
		return []value{{dims: s.convTranspose(x.dims, s.in(1).dims)}}
	case "MaxPool", "AveragePool", "LpPool":
		return []value{{dims: s.pool(x.dims)}}
	case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool":
		if len(x.dims) < 2 {
			return nil
		}
		d := slices.Clone(x.dims)
		for i := 2; i < len(d); i++ {
			d[i] = 1
		}
		return []value{{dims: d}}
	case "Resize", "Upsample":
		return []value{{dims: s.resize()}}
	case "Slice":
		return []value{s.slice()}
	case "Split":
		return s.split()
	case "Expand":
		shape, ok := s.in(1).ints()
		if !ok {
			if r := s.in(1).dims; len(r) == 1 && r[0] >= 0 && x.dims != nil {
				return []value{{dims: unknownRank(max(int(r[0]), len(x.dims)))}}
			}
			return nil
		}
		return []value{{dims: broadcast(x.dims, shape)}}
	case "Tile":
		reps, ok := s.in(1).ints()
		if x.dims == nil {
			return nil
		}
		d := slices.Clone(x.dims)
		for i := range d {
			if !ok || i >= len(reps) || d[i] < 0 {
				d[i] = Unknown
			} else {
				d[i] *= reps[i]
			}
		}
		return []value{{dims: d}}
	case "Pad":
		if x.dims == nil {
			return nil
		}
		pads, ok := s.intsFrom(1, "pads")
		d := slices.Clone(x.dims)
		axes, haveAxes := s.in(3).ints()
		if !haveAxes {
			axes = nil
			for i := range d {
				axes = append(axes, int64(i))
			}
		}
		for j, a := range axes {
			i := axis(a, len(d))
			if !ok || len(pads) != 2*len(axes) || i < 0 || i >= len(d) || d[i] < 0 {
				if i >= 0 && i < len(d) {
					d[i] = Unknown
				}
				continue
			}
			d[i] += pads[j] + pads[j+len(axes)]
		}
		return []value{{dims: d}}
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
		"ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin":
		return []value{{dims: s.reduce()}}
	case "DepthToSpace", "SpaceToDepth":
		if len(x.dims) != 4 {
			return nil
		}
		b := s.attrInt("blocksize", 1)
		d := slices.Clone(x.dims)
		if n.GetOpType() == "DepthToSpace" {
			d[1], d[2], d[3] = div(d[1], b*b), mul(d[2], b), mul(d[3], b)
		} else {
			d[1], d[2], d[3] = mul(d[1], b*b), div(d[2], b), div(d[3], b)
		}
		return []value{{dims: d}}
	case "BiasSplitGelu":
		if x.dims == nil {
			return nil
		}
		d := slices.Clone(x.dims)
		d[len(d)-1] = div(d[len(d)-1], 2)
		return []value{{dims: d}}
	case "Attention":
		if domain == "com.microsoft" {
			return s.msAttention()
		}
		return s.onnxAttention()
	case "MultiHeadAttention", "GroupQueryAttention", "PackedMultiHeadAttention":
		return s.multiHead()
	}
	return nil
}

func mul(a, b int64) int64 {
	if a < 0 || b < 0 {
		return Unknown
	}
	return a * b
}

func div(a, b int64) int64 {
	if a < 0 || b <= 0 {
		return Unknown
	}
	return a / b
}

func transposeLast(v value, t bool) value {
	if !t || len(v.dims) < 2 {
		return v
	}
	d := slices.Clone(v.dims)
	d[len(d)-1], d[len(d)-2] = d[len(d)-2], d[len(d)-1]
	return value{dims: d}
}

// broadcast is numpy's broadcast of two shapes.
func broadcast(a, b []int64) []int64 {
	if a == nil || b == nil {
		return nil
	}
	r := max(len(a), len(b))
	out := make([]int64, r)
	for i := range r {
		da, db := int64(1), int64(1)
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		case da < 0 || db < 0:
			// One side unknown: the result is the other side when that is not 1 (it cannot
			// broadcast to anything else), unknown otherwise.
			out[i] = max(da, db)
			if da < 0 && db < 0 {
				out[i] = Unknown
			}
		default:
			out[i] = max(da, db)
		}
	}
	return out
}

func matmul(a, b []int64) []int64 {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	if len(a) == 1 && len(b) == 1 {
		return []int64{}
	}
	if len(a) == 1 {
		d := slices.Clone(b[:len(b)-2])
		return append(d, b[len(b)-1])
	}
	if len(b) == 1 {
		return slices.Clone(a[:len(a)-1])
	}
	batch := broadcast(a[:len(a)-2], b[:len(b)-2])
	return append(batch, a[len(a)-2], b[len(b)-1])
}

func (s *state) elementwise(op string) value {
	ins := s.n.GetInput()
	var dims []int64
	for i := range ins {
		v := s.in(i)
		if v.dims == nil {
			return value{}
		}
		if i == 0 {
			dims = v.dims
		} else {
			dims = broadcast(dims, v.dims)
		}
	}
	out := value{dims: dims}
	c := count(dims)
	if c < 0 || c > maxValues {
		return out
	}
	args := make([][]float64, len(ins))
	for i := range ins {
		v := s.in(i)
		if v.vals == nil {
			return out
		}
		args[i] = v.vals
	}
	// Values of shape arithmetic: broadcast by index over the flattened result, which is exact
	// for the scalars and equal-length vectors shape subgraphs use.
	at := func(a []float64, i int) float64 {
		if len(a) == 1 {
			return a[0]
		}
		if i < len(a) {
			return a[i]
		}
		return math.NaN()
	}
	vals := make([]float64, c)
	for i := range vals {
		a, b := at(args[0], i), 0.0
		if len(args) > 1 {
			b = at(args[1], i)
		}
		var r float64
		switch op {
		case "Add", "Sum", "BiasAdd":
			r = a + b
		case "Sub":
			r = a - b
		case "Mul":
			r = a * b
		case "Div":
			if b == 0 {
				return out
			}
			r = a / b
			if isInt(args[0]) && isInt(args[1]) {
				r = math.Trunc(r)
			}
		case "Pow":
			r = math.Pow(a, b)
		case "Mod":
			if b == 0 {
				return out
			}
			r = math.Mod(a, b)
		case "Max":
			r = math.Max(a, b)
		case "Min":
			r = math.Min(a, b)
		case "Equal":
			r = b2f(a == b)
		case "Less":
			r = b2f(a < b)
		case "Greater":
			r = b2f(a > b)
		case "Where":
			r = at(args[2], i)
			if a != 0 {
				r = b
			}
		default:
			return out
		}
		vals[i] = r
	}
	out.vals = vals
	return out
}

// isInt is a guess that values are integers (shape arithmetic): Div truncates then.
func isInt(v []float64) bool {
	for _, x := range v {
		if x != math.Trunc(x) {
			return false
		}
	}
	return true
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (s *state) constant() value {
	for _, a := range s.n.GetAttribute() {
		switch a.GetName() {
		case "value":
			return tensorValue(a.GetT())
		case "value_int":
			return value{dims: []int64{}, vals: []float64{float64(a.GetI())}}
		case "value_float":
			return value{dims: []int64{}, vals: []float64{float64(a.GetF())}}
		case "value_ints":
			v := value{dims: []int64{int64(len(a.GetInts()))}, vals: []float64{}}
			for _, x := range a.GetInts() {
				v.vals = append(v.vals, float64(x))
			}
			return v
		case "value_floats":
			v := value{dims: []int64{int64(len(a.GetFloats()))}, vals: []float64{}}
			for _, x := range a.GetFloats() {
				v.vals = append(v.vals, float64(x))
			}
			return v
		}
	}
	return value{}
}

func (s *state) gather() value {
	data, idx := s.in(0), s.in(1)
	if data.dims == nil || idx.dims == nil || len(data.dims) == 0 {
		return value{}
	}
	a := axis(s.attrInt("axis", 0), len(data.dims))
	if a < 0 || a >= len(data.dims) {
		return value{}
	}
	dims := append(append(append([]int64{}, data.dims[:a]...), idx.dims...), data.dims[a+1:]...)
	out := value{dims: dims}
	if len(data.dims) == 1 && data.vals != nil && idx.vals != nil {
		for _, i := range idx.vals {
			j := int(i)
			if j < 0 {
				j += len(data.vals)
			}
			if j < 0 || j >= len(data.vals) {
				return value{dims: dims}
			}
			out.vals = append(out.vals, data.vals[j])
		}
		if out.vals == nil {
			out.vals = []float64{}
		}
	}
	return out
}

func (s *state) unsqueeze() value {
	x := s.in(0)
	axes, ok := s.intsFrom(1, "axes")
	if x.dims == nil || !ok {
		return value{}
	}
	r := len(x.dims) + len(axes)
	set := map[int]bool{}
	for _, a := range axes {
		set[axis(a, r)] = true
	}
	dims := make([]int64, 0, r)
	j := 0
	for i := range r {
		if set[i] {
			dims = append(dims, 1)
		} else if j < len(x.dims) {
			dims = append(dims, x.dims[j])
			j++
		}
	}
	return value{dims: dims, vals: x.vals}
}

func (s *state) squeeze() value {
	x := s.in(0)
	if x.dims == nil {
		return value{}
	}
	axes, ok := s.intsFrom(1, "axes")
	set := map[int]bool{}
	if ok && len(axes) > 0 {
		for _, a := range axes {
			set[axis(a, len(x.dims))] = true
		}
	} else {
		for i, d := range x.dims {
			if d < 0 {
				return value{}
			}
			if d == 1 {
				set[i] = true
			}
		}
	}
	var dims []int64
	for i, d := range x.dims {
		if !set[i] {
			dims = append(dims, d)
		}
	}
	if dims == nil {
		dims = []int64{}
	}
	return value{dims: dims, vals: x.vals}
}

func (s *state) concat() value {
	ins := s.n.GetInput()
	if len(ins) == 0 {
		return value{}
	}
	first := s.in(0)
	if first.dims == nil {
		return value{}
	}
	r := len(first.dims)
	a := axis(s.attrInt("axis", 0), r)
	if a < 0 || a >= r {
		return value{}
	}
	dims := slices.Clone(first.dims)
	dims[a] = 0
	vals := []float64{}
	for i := range ins {
		v := s.in(i)
		if len(v.dims) != r {
			return value{}
		}
		dims[a] = addDim(dims[a], v.dims[a])
		for k := range r {
			if k != a && dims[k] < 0 {
				dims[k] = v.dims[k]
			}
		}
		if vals != nil && v.vals != nil && r == 1 {
			vals = append(vals, v.vals...)
		} else {
			vals = nil
		}
	}
	return value{dims: dims, vals: vals}
}

func addDim(a, b int64) int64 {
	if a < 0 || b < 0 {
		return Unknown
	}
	return a + b
}

func (s *state) reshape() value {
	x, shape := s.in(0), s.in(1)
	target, ok := shape.ints()
	if !ok {
		if len(shape.dims) == 1 && shape.dims[0] >= 0 {
			return value{dims: unknownRank(int(shape.dims[0]))}
		}
		return value{}
	}
	allowZero := s.attrInt("allowzero", 0) != 0
	dims := make([]int64, len(target))
	infer := -1
	for i, t := range target {
		switch {
		case t == 0 && !allowZero:
			if x.dims == nil || i >= len(x.dims) {
				dims[i] = Unknown
			} else {
				dims[i] = x.dims[i]
			}
		case t == -1:
			infer = i
			dims[i] = Unknown
		default:
			dims[i] = t
		}
	}
	if infer >= 0 {
		total := count(x.dims)
		rest := int64(1)
		for i, d := range dims {
			if i == infer {
				continue
			}
			rest = mul(rest, d)
		}
		if x.dims != nil && total >= 0 && rest > 0 {
			dims[infer] = total / rest
		}
	}
	return value{dims: dims, vals: x.vals}
}

// spatial reads kernel_shape, strides, dilations and pads for n spatial axes.
func (s *state) spatial(n int, kernel []int64) (k, strides, dil, pads []int64) {
	k = s.attrInts("kernel_shape")
	if k == nil {
		k = kernel
	}
	strides, dil, pads = s.attrInts("strides"), s.attrInts("dilations"), s.attrInts("pads")
	fill := func(v []int64, def int64, l int) []int64 {
		if len(v) == l {
			return v
		}
		out := make([]int64, l)
		for i := range out {
			out[i] = def
		}
		return out
	}
	return fill(k, Unknown, n), fill(strides, 1, n), fill(dil, 1, n), fill(pads, 0, 2*n)
}

func (s *state) conv(x, w []int64) []int64 {
	if len(x) < 3 {
		return nil
	}
	n := len(x) - 2
	var kernel []int64
	if len(w) == len(x) {
		kernel = w[2:]
	}
	k, strides, dil, pads := s.spatial(n, kernel)
	out := []int64{x[0], Unknown}
	if len(w) > 0 {
		out[1] = w[0]
	}
	autoPad := attrString(s.n, "auto_pad")
	for i := range n {
		in := x[2+i]
		switch {
		case in < 0 || k[i] < 0 || strides[i] <= 0:
			out = append(out, Unknown)
		case autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			out = append(out, (in+strides[i]-1)/strides[i])
		default:
			if autoPad == "VALID" {
				pads[i], pads[i+n] = 0, 0
			}
			eff := dil[i]*(k[i]-1) + 1
			out = append(out, (in+pads[i]+pads[i+n]-eff)/strides[i]+1)
		}
	}
	return out
}

func (s *state) convTranspose(x, w []int64) []int64 {
	if len(x) < 3 {
		return nil
	}
	n := len(x) - 2
	var kernel []int64
	group := s.attrInt("group", 1)
	out := []int64{x[0], Unknown}
	if len(w) == len(x) {
		kernel = w[2:]
		out[1] = mul(w[1], group)
	}
	if os := s.attrInts("output_shape"); len(os) == n {
		return append(out, os...)
	}
	k, strides, dil, pads := s.spatial(n, kernel)
	outPad := s.attrInts("output_padding")
	for i := range n {
		in := x[2+i]
		if in < 0 || k[i] < 0 {
			out = append(out, Unknown)
			continue
		}
		op := int64(0)
		if len(outPad) == n {
			op = outPad[i]
		}
		out = append(out, strides[i]*(in-1)+op+(k[i]-1)*dil[i]+1-pads[i]-pads[i+n])
	}
	return out
}

func (s *state) pool(x []int64) []int64 {
	if len(x) < 3 {
		return nil
	}
	n := len(x) - 2
	k, strides, dil, pads := s.spatial(n, nil)
	ceil := s.attrInt("ceil_mode", 0) != 0
	autoPad := attrString(s.n, "auto_pad")
	out := []int64{x[0], x[1]}
	for i := range n {
		in := x[2+i]
		switch {
		case in < 0 || k[i] < 0 || strides[i] <= 0:
			out = append(out, Unknown)
		case autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			out = append(out, (in+strides[i]-1)/strides[i])
		default:
			if autoPad == "VALID" {
				pads[i], pads[i+n] = 0, 0
			}
			eff := dil[i]*(k[i]-1) + 1
			num := in + pads[i] + pads[i+n] - eff
			if ceil {
				out = append(out, (num+strides[i]-1)/strides[i]+1)
			} else {
				out = append(out, num/strides[i]+1)
			}
		}
	}
	return out
}

func attrString(n *onnxpb.NodeProto, name string) string {
	if a := onnx.Attr(n, name); a != nil {
		return string(a.GetS())
	}
	return ""
}

// resize handles Resize (sizes or scales, as inputs 3 and 2, or 1 in opset 10) and Upsample
// (scales as input 1 or attribute).
func (s *state) resize() []int64 {
	x := s.in(0)
	if x.dims == nil {
		return nil
	}
	r := len(x.dims)
	axes := s.attrInts("axes")
	if axes == nil {
		for i := range r {
			axes = append(axes, int64(i))
		}
	}
	out := slices.Clone(x.dims)
	unknown := func() []int64 { return unknownRank(r) }
	var sizes []int64
	var scales []float64
	switch {
	case s.n.GetOpType() == "Upsample":
		if s.has(1) {
			scales = s.in(1).vals
		} else {
			for _, f := range s.attrFloats("scales") {
				scales = append(scales, float64(f))
			}
		}
	case len(s.n.GetInput()) == 2: // Resize-10: X, scales
		scales = s.in(1).vals
	default:
		if v := s.in(3); s.has(3) && count(v.dims) > 0 {
			var ok bool
			if sizes, ok = v.ints(); !ok {
				return unknown()
			}
		} else {
			scales = s.in(2).vals
		}
	}
	switch {
	case sizes != nil && len(sizes) == len(axes):
		for j, a := range axes {
			if i := axis(a, r); i >= 0 && i < r {
				out[i] = sizes[j]
			}
		}
	case scales != nil && len(scales) == len(axes):
		for j, a := range axes {
			i := axis(a, r)
			if i >= 0 && i < r && out[i] >= 0 {
				out[i] = int64(math.Floor(float64(out[i]) * scales[j]))
			}
		}
	default:
		return unknown()
	}
	return out
}

func (s *state) slice() value {
	x := s.in(0)
	if x.dims == nil {
		return value{}
	}
	starts, ok1 := s.intsFrom(1, "starts")
	ends, ok2 := s.intsFrom(2, "ends")
	axes, okA := s.intsFrom(3, "axes")
	steps, okS := s.in(4).ints()
	if !ok1 || !ok2 || len(starts) != len(ends) {
		return value{dims: unknownRank(len(x.dims))}
	}
	if !okA || len(axes) == 0 {
		axes = nil
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if !okS || len(steps) != len(starts) {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	dims := slices.Clone(x.dims)
	vals := x.vals
	for j, a := range axes {
		i := axis(a, len(dims))
		if i < 0 || i >= len(dims) || j >= len(starts) || steps[j] == 0 {
			return value{dims: unknownRank(len(x.dims))}
		}
		d := dims[i]
		if d < 0 {
			vals = nil
			continue
		}
		lo, hi, step := clampSlice(starts[j], ends[j], steps[j], d)
		var n int64
		if step > 0 && hi > lo {
			n = (hi - lo + step - 1) / step
		} else if step < 0 && lo > hi {
			n = (lo - hi - step - 1) / -step
		}
		dims[i] = n
		if vals != nil && len(dims) == 1 {
			var nv []float64
			for k := lo; (step > 0 && k < hi) || (step < 0 && k > hi); k += step {
				nv = append(nv, x.vals[k])
			}
			if nv == nil {
				nv = []float64{}
			}
			vals = nv
		} else {
			vals = nil
		}
	}
	return value{dims: dims, vals: vals}
}

func clampSlice(start, end, step, d int64) (int64, int64, int64) {
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	if step > 0 {
		start, end = min(max(start, 0), d), min(max(end, 0), d)
	} else {
		start, end = min(max(start, -1), d-1), min(max(end, -1), d-1)
	}
	return start, end, step
}

func (s *state) split() []value {
	x := s.in(0)
	nOut := len(s.n.GetOutput())
	if x.dims == nil {
		return nil
	}
	a := axis(s.attrInt("axis", 0), len(x.dims))
	if a < 0 || a >= len(x.dims) {
		return nil
	}
	sizes, ok := s.intsFrom(1, "split")
	if !ok || len(sizes) != nOut {
		sizes = nil
		d := x.dims[a]
		parts := int64(nOut)
		if k := s.attrInt("num_outputs", 0); k > 0 {
			parts = k
		}
		for i := range nOut {
			if d < 0 || parts <= 0 {
				sizes = append(sizes, Unknown)
				continue
			}
			chunk := (d + parts - 1) / parts
			sizes = append(sizes, min(chunk, max(d-int64(i)*chunk, 0)))
		}
	}
	out := make([]value, nOut)
	for i := range out {
		d := slices.Clone(x.dims)
		d[a] = sizes[i]
		out[i] = value{dims: d}
	}
	return out
}

func (s *state) reduce() []int64 {
	x := s.in(0)
	if x.dims == nil {
		return nil
	}
	keep := s.attrInt("keepdims", 1) != 0
	var axes []int64
	if op := s.n.GetOpType(); op == "ArgMax" || op == "ArgMin" {
		axes = []int64{s.attrInt("axis", 0)}
	} else {
		var ok bool
		axes, ok = s.intsFrom(1, "axes")
		if s.has(1) && !ok {
			return nil
		}
		if len(axes) == 0 {
			if s.attrInt("noop_with_empty_axes", 0) != 0 {
				return slices.Clone(x.dims)
			}
			for i := range x.dims {
				axes = append(axes, int64(i))
			}
		}
	}
	set := map[int]bool{}
	for _, a := range axes {
		set[axis(a, len(x.dims))] = true
	}
	dims := []int64{}
	for i, d := range x.dims {
		switch {
		case !set[i]:
			dims = append(dims, d)
		case keep:
			dims = append(dims, 1)
		}
	}
	return dims
}

// msAttention is com.microsoft.Attention: input [B, S, in], weights [in, 3C] (or
// qkv_hidden_sizes): output [B, S, C_v].
func (s *state) msAttention() []value {
	x, w := s.in(0), s.in(1)
	if len(x.dims) != 3 {
		return nil
	}
	v := int64(Unknown)
	if hs := s.attrInts("qkv_hidden_sizes"); len(hs) == 3 {
		v = hs[2]
	} else if len(w.dims) == 2 && w.dims[1] >= 0 {
		v = w.dims[1] / 3
	}
	return []value{{dims: []int64{x.dims[0], x.dims[1], v}}}
}

// multiHead is com.microsoft.MultiHeadAttention and GroupQueryAttention: output [B, S, Dv],
// Dv from V ([B, S, Dv] or [B, H, S, d]), or from packed Q ([B, S, H, 3, d]) or packed KV.
func (s *state) multiHead() []value {
	q := s.in(0)
	heads := s.attrInt("num_heads", Unknown)
	switch len(q.dims) {
	case 3:
		v := s.in(2)
		out := int64(Unknown)
		switch {
		case len(v.dims) == 3:
			out = v.dims[2]
		case len(v.dims) == 4:
			out = mul(heads, v.dims[3])
		case len(s.in(1).dims) == 5: // packed KV [B, S, H, 2, d]
			out = mul(s.in(1).dims[2], s.in(1).dims[4])
		case s.n.GetOpType() == "GroupQueryAttention":
			out = q.dims[2]
		default:
			out = q.dims[2]
		}
		return []value{{dims: []int64{q.dims[0], q.dims[1], out}}}
	case 5: // packed QKV [B, S, H, 3, d]
		return []value{{dims: []int64{q.dims[0], q.dims[1], mul(q.dims[2], q.dims[4])}}}
	}
	return nil
}

// onnxAttention is ONNX Attention (opset 23): Q, K, V 3-D [B, S, H·d] or 4-D [B, H, S, d].
func (s *state) onnxAttention() []value {
	q, v := s.in(0), s.in(2)
	switch {
	case len(q.dims) == 4 && len(v.dims) == 4:
		return []value{{dims: []int64{q.dims[0], q.dims[1], q.dims[2], v.dims[3]}}}
	case len(q.dims) == 3 && len(v.dims) == 3:
		qh, kvh := s.attrInt("q_num_heads", Unknown), s.attrInt("kv_num_heads", Unknown)
		vd := int64(Unknown)
		if qh > 0 && kvh > 0 && v.dims[2] >= 0 {
			vd = v.dims[2] / kvh * qh
		}
		return []value{{dims: []int64{q.dims[0], q.dims[1], vd}}}
	}
	return nil
}
