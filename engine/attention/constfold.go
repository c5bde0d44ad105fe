package attention

import (
	"math"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// The constant folder: the finder reads head counts, head-split shapes and softmax scales
// from small constant subgraphs (Shape → Gather → Div → Sqrt …) without running the graph.
// Values it cannot know (a batch size read at run time) stay unknown rather than guessed.

// konst is a partially known constant: a tensor of at most maxConstElems values, some of which
// may be unknown (a batch or sequence size read from a Shape at run time).
type konst struct {
	dims  []int64
	vals  []float64
	known []bool
	isInt bool
}

func (k *konst) scalar() (float64, bool) {
	if k == nil || len(k.vals) != 1 || !k.known[0] {
		return 0, false
	}
	return k.vals[0], true
}

func (k *konst) allKnown() bool {
	if k == nil {
		return false
	}
	for _, ok := range k.known {
		if !ok {
			return false
		}
	}
	return true
}

func unknownKonst(n int, isInt bool) *konst {
	return &konst{dims: []int64{int64(n)}, vals: make([]float64, n), known: make([]bool, n), isInt: isInt}
}

func tensorKonst(t *onnxpb.TensorProto) *konst {
	if t == nil || onnx.IsExternal(t) {
		return nil
	}
	n := onnx.NumElements(t)
	if n < 0 || n > maxConstElems {
		return nil
	}
	k := &konst{dims: append([]int64(nil), t.GetDims()...)}
	switch t.GetDataType() {
	case onnx.Int64, onnx.Int32:
		v, err := onnx.Ints(t)
		if err != nil {
			return nil
		}
		k.isInt = true
		for _, x := range v {
			k.vals = append(k.vals, float64(x))
		}
	case onnx.Float, onnx.Float16, onnx.Double:
		v, err := onnx.Floats(t)
		if err != nil {
			return nil
		}
		for _, x := range v {
			k.vals = append(k.vals, float64(x))
		}
	default:
		return nil
	}
	k.known = make([]bool, len(k.vals))
	for i := range k.known {
		k.known[i] = true
	}
	return k
}

// evalConst evaluates the small subgraph that computes name, as far as it is constant: shape
// arithmetic (Concat, Gather, Unsqueeze, Div … of constants and Shape results) and scalars.
// It returns nil when the value is not a small constant or depends on data other than shapes.
func (ix *graph) evalConst(name string) *konst {
	return ix.evalDepth(name, 0)
}

// evalWithHeadSize evaluates a live scale subgraph assuming the tensors it reads the shape of
// end in headDim.
func (ix *graph) evalWithHeadSize(name string, headDim int) *konst {
	sub := *ix
	sub.consts = map[string]*konst{}
	sub.shapeLast = int64(headDim)
	return sub.evalDepth(name, 0)
}

func (ix *graph) evalDepth(name string, depth int) *konst {
	if k, ok := ix.consts[name]; ok {
		return k
	}
	if depth >= 32 {
		return nil
	}
	ix.consts[name] = nil // a cycle in a malformed graph evaluates to unknown
	k := ix.evalNode(name, depth)
	ix.consts[name] = k
	return k
}

func (ix *graph) evalNode(name string, depth int) *konst {
	if t, ok := ix.inits[name]; ok {
		return tensorKonst(t)
	}
	n := ix.producer[name]
	if n == nil || !isDefaultDomain(n) {
		return nil
	}
	arg := func(i int) *konst {
		in := input(n, i)
		if in == "" {
			return nil
		}
		return ix.evalDepth(in, depth+1)
	}
	switch n.GetOpType() {
	case "Constant":
		if a := onnx.Attr(n, "value"); a != nil {
			return tensorKonst(a.GetT())
		}
		if a := onnx.Attr(n, "value_int"); a != nil {
			return &konst{vals: []float64{float64(a.GetI())}, known: []bool{true}, isInt: true}
		}
		if a := onnx.Attr(n, "value_float"); a != nil {
			return &konst{vals: []float64{float64(a.GetF())}, known: []bool{true}}
		}
		if a := onnx.Attr(n, "value_ints"); a != nil && len(a.GetInts()) <= maxConstElems {
			k := unknownKonst(len(a.GetInts()), true)
			for i, v := range a.GetInts() {
				k.vals[i], k.known[i] = float64(v), true
			}
			return k
		}
		return nil
	case "Shape":
		// The rank is known only from type information; unknown sizes stay unknown.
		if vi := ix.types[input(n, 0)]; vi != nil {
			if sh := vi.GetType().GetTensorType().GetShape(); sh != nil && len(sh.GetDim()) <= maxConstElems {
				k := unknownKonst(len(sh.GetDim()), true)
				for i, d := range sh.GetDim() {
					if dv, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
						k.vals[i], k.known[i] = float64(dv.DimValue), true
					}
				}
				if last := len(k.vals) - 1; ix.shapeLast > 0 && last >= 0 && !k.known[last] {
					k.vals[last], k.known[last] = float64(ix.shapeLast), true
				}
				return sliceShape(k, n)
			}
		}
		if ix.shapeLast > 0 {
			k := unknownKonst(4, true)
			k.vals[3], k.known[3] = float64(ix.shapeLast), true
			return sliceShape(k, n)
		}
		return nil
	case "Identity", "Cast":
		k := arg(0)
		if k == nil || n.GetOpType() == "Identity" {
			return k
		}
		c := *k
		to := attrInt(n, "to", 0)
		c.isInt = to == int64(onnx.Int64) || to == int64(onnx.Int32)
		return &c
	case "Unsqueeze", "Squeeze", "Reshape", "Flatten":
		k := arg(0)
		if k == nil {
			return nil
		}
		c := *k
		c.dims = []int64{int64(len(k.vals))}
		return &c
	case "Concat":
		out := &konst{isInt: true}
		for i := range n.GetInput() {
			k := arg(i)
			if k == nil {
				return nil
			}
			out.vals = append(out.vals, k.vals...)
			out.known = append(out.known, k.known...)
			out.isInt = out.isInt && k.isInt
			if len(out.vals) > maxConstElems {
				return nil
			}
		}
		out.dims = []int64{int64(len(out.vals))}
		return out
	case "Gather":
		data, idx := arg(0), arg(1)
		if idx == nil || !idx.allKnown() {
			if data == nil && ix.producer[input(n, 0)] != nil && isOp(ix.producer[input(n, 0)], "Shape") && idx != nil {
				return unknownKonst(len(idx.vals), true)
			}
			return nil
		}
		if data == nil {
			// A size read from a shape at run time: unknown, but of a known count.
			if p := ix.producer[input(n, 0)]; isOp(p, "Shape") {
				out := unknownKonst(len(idx.vals), true)
				if len(idx.dims) == 0 {
					out.dims = nil
				}
				return out
			}
			return nil
		}
		out := unknownKonst(len(idx.vals), data.isInt)
		if len(idx.dims) == 0 {
			out.dims = nil
		}
		for i, v := range idx.vals {
			j := int(v)
			if j < 0 {
				j += len(data.vals)
			}
			if j < 0 || j >= len(data.vals) {
				return nil
			}
			out.vals[i], out.known[i] = data.vals[j], data.known[j]
		}
		return out
	case "Slice":
		data := arg(0)
		starts, ends := arg(1), arg(2)
		if data == nil || starts == nil || ends == nil || !starts.allKnown() || !ends.allKnown() || len(starts.vals) != 1 {
			return nil
		}
		return sliceRange(data, int64(starts.vals[0]), int64(ends.vals[0]))
	case "Add", "Sub", "Mul", "Div", "Pow":
		a, b := arg(0), arg(1)
		if a == nil || b == nil {
			return nil
		}
		return broadcast(a, b, n.GetOpType())
	case "Sqrt", "Neg", "Reciprocal", "Exp", "Floor", "Ceil":
		a := arg(0)
		if a == nil {
			return nil
		}
		c := &konst{dims: a.dims, vals: make([]float64, len(a.vals)), known: append([]bool(nil), a.known...), isInt: a.isInt}
		for i, v := range a.vals {
			switch n.GetOpType() {
			case "Sqrt":
				c.vals[i] = math.Sqrt(v)
			case "Neg":
				c.vals[i] = -v
			case "Reciprocal":
				c.vals[i] = 1 / v
			case "Exp":
				c.vals[i] = math.Exp(v)
			case "Floor":
				c.vals[i] = math.Floor(v)
			case "Ceil":
				c.vals[i] = math.Ceil(v)
			}
		}
		return c
	}
	return nil
}

func sliceShape(k *konst, n *onnxpb.NodeProto) *konst {
	start, end := attrInt(n, "start", 0), attrInt(n, "end", math.MaxInt32)
	if onnx.Attr(n, "start") == nil && onnx.Attr(n, "end") == nil {
		return k
	}
	return sliceRange(k, start, end)
}

func sliceRange(k *konst, start, end int64) *konst {
	size := int64(len(k.vals))
	clamp := func(v int64) int64 {
		if v < 0 {
			v += size
		}
		return max(0, min(v, size))
	}
	s, e := clamp(start), clamp(end)
	if e < s {
		e = s
	}
	return &konst{dims: []int64{e - s}, vals: k.vals[s:e], known: k.known[s:e], isInt: k.isInt}
}

func broadcast(a, b *konst, op string) *konst {
	n := max(len(a.vals), len(b.vals))
	if (len(a.vals) != n && len(a.vals) != 1) || (len(b.vals) != n && len(b.vals) != 1) {
		return nil
	}
	dims := a.dims
	if len(b.vals) > len(a.vals) || len(b.dims) > len(a.dims) {
		dims = b.dims
	}
	out := &konst{dims: dims, vals: make([]float64, n), known: make([]bool, n), isInt: a.isInt && b.isInt}
	for i := range n {
		ai, bi := min(i, len(a.vals)-1), min(i, len(b.vals)-1)
		x, y := a.vals[ai], b.vals[bi]
		out.known[i] = a.known[ai] && b.known[bi]
		switch op {
		case "Add":
			out.vals[i] = x + y
		case "Sub":
			out.vals[i] = x - y
		case "Mul":
			out.vals[i] = x * y
		case "Div":
			if y == 0 {
				out.known[i] = false
				continue
			}
			out.vals[i] = x / y
			if out.isInt {
				out.vals[i] = math.Trunc(out.vals[i])
			}
		case "Pow":
			out.vals[i] = math.Pow(x, y)
		}
	}
	return out
}

// isShapeDerived reports whether a value is computed only from constants and tensor shapes,
// never from tensor data: the live scale subgraph of an exported scaled_dot_product_attention.
func (ix *graph) isShapeDerived(name string, depth int) bool {
	if depth > 24 {
		return false
	}
	if v, ok := ix.shapeOnly[name]; ok {
		return v
	}
	ix.shapeOnly[name] = false // in progress: a cycle is not shape-only
	v := ix.shapeDerivedNode(name, depth)
	ix.shapeOnly[name] = v
	return v
}

func (ix *graph) shapeDerivedNode(name string, depth int) bool {
	if _, ok := ix.inits[name]; ok {
		return true
	}
	n := ix.producer[name]
	if n == nil {
		return false
	}
	if isOp(n, "Shape", "Size", "Constant", "ConstantOfShape") {
		return true
	}
	if !isDefaultDomain(n) {
		return false
	}
	switch n.GetOpType() {
	case "Slice", "Gather", "Cast", "Sqrt", "Div", "Mul", "Add", "Sub", "Reciprocal", "Pow",
		"Unsqueeze", "Squeeze", "Concat", "Identity", "Reshape", "Neg":
	default:
		return false
	}
	for _, in := range n.GetInput() {
		if in != "" && !ix.isShapeDerived(in, depth+1) {
			return false
		}
	}
	return true
}
