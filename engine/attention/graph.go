package attention

import (
	"strconv"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// graph indexes a model's main graph for upstream and downstream walks. It never decodes an
// initializer that is stored externally, and decodes inline ones only when they are small.
type graph struct {
	g         *onnxpb.GraphProto
	producer  map[string]*onnxpb.NodeProto
	consumers map[string][]*onnxpb.NodeProto
	inits     map[string]*onnxpb.TensorProto
	inputs    map[string]*onnxpb.ValueInfoProto // graph inputs that are not initializers
	types     map[string]*onnxpb.ValueInfoProto // value_info, inputs and outputs
	order     map[*onnxpb.NodeProto]int
	names     map[string]bool // every node and value name, for picking fresh ones

	consts    map[string]*konst // memo of evalConst
	shapeOnly map[string]bool   // memo of isShapeDerived
	deps      map[string][]string

	// shapeLast, when set, makes every Shape whose input's rank is unknown evaluate to a
	// rank-4 shape whose last size is shapeLast: the head size a live SDPA scale reads.
	shapeLast int64
}

// maxConstElems bounds the constants the evaluator decodes: shapes and scalars, never weights.
const maxConstElems = 64

func newGraph(m *onnxpb.ModelProto) *graph {
	g := m.GetGraph()
	ix := &graph{
		g:         g,
		producer:  map[string]*onnxpb.NodeProto{},
		consumers: map[string][]*onnxpb.NodeProto{},
		inits:     map[string]*onnxpb.TensorProto{},
		inputs:    map[string]*onnxpb.ValueInfoProto{},
		types:     map[string]*onnxpb.ValueInfoProto{},
		order:     map[*onnxpb.NodeProto]int{},
		names:     map[string]bool{},
		consts:    map[string]*konst{},
		shapeOnly: map[string]bool{},
		deps:      map[string][]string{},
	}
	for _, t := range g.GetInitializer() {
		ix.inits[t.GetName()] = t
		ix.names[t.GetName()] = true
	}
	for _, vi := range g.GetInput() {
		ix.types[vi.GetName()] = vi
		if _, ok := ix.inits[vi.GetName()]; !ok {
			ix.inputs[vi.GetName()] = vi
		}
		ix.names[vi.GetName()] = true
	}
	for _, vi := range g.GetValueInfo() {
		ix.types[vi.GetName()] = vi
	}
	for _, vi := range g.GetOutput() {
		ix.types[vi.GetName()] = vi
		ix.names[vi.GetName()] = true
	}
	for i, n := range g.GetNode() {
		ix.order[n] = i
		ix.names[n.GetName()] = true
		for _, out := range n.GetOutput() {
			if out != "" {
				ix.producer[out] = n
				ix.names[out] = true
			}
		}
		for _, in := range n.GetInput() {
			if in != "" {
				ix.consumers[in] = append(ix.consumers[in], n)
			}
		}
	}
	return ix
}

// input returns a node's i-th input, or "" when it has none there.
func input(n *onnxpb.NodeProto, i int) string {
	if n == nil || i >= len(n.GetInput()) {
		return ""
	}
	return n.GetInput()[i]
}

func output(n *onnxpb.NodeProto, i int) string {
	if n == nil || i >= len(n.GetOutput()) {
		return ""
	}
	return n.GetOutput()[i]
}

func attrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := onnx.Attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

func attrFloat(n *onnxpb.NodeProto, name string, def float64) float64 {
	if a := onnx.Attr(n, name); a != nil {
		return float64(a.GetF())
	}
	return def
}

// isDefaultDomain reports whether a node belongs to the standard ONNX operator set.
func isDefaultDomain(n *onnxpb.NodeProto) bool {
	return n.GetDomain() == "" || n.GetDomain() == "ai.onnx"
}

func isOp(n *onnxpb.NodeProto, ops ...string) bool {
	if n == nil || !isDefaultDomain(n) {
		return false
	}
	for _, op := range ops {
		if n.GetOpType() == op {
			return true
		}
	}
	return false
}

func isMSOp(n *onnxpb.NodeProto, op string) bool {
	return n != nil && n.GetDomain() == "com.microsoft" && n.GetOpType() == op
}

// isWeight reports whether a value is a constant tensor (an initializer, a Constant node, or
// one reached from them through a transpose, cast, reshape or dequantisation).
func (ix *graph) isWeight(name string) bool {
	for range 8 {
		if _, ok := ix.inits[name]; ok {
			return true
		}
		n := ix.producer[name]
		if n == nil {
			return false
		}
		if isOp(n, "Constant") {
			return true
		}
		if !isOp(n, "Transpose", "Cast", "Reshape", "Identity", "DequantizeLinear", "Unsqueeze", "Squeeze") &&
			!isMSOp(n, "DequantizeLinear") {
			return false
		}
		name = input(n, 0)
	}
	return false
}

// weightDims returns a constant tensor's dimensions, reading through a Transpose (reversed or
// with perm) without loading any data.
func (ix *graph) weightDims(name string) []int64 {
	var perms [][]int64
	for range 8 {
		if t, ok := ix.inits[name]; ok {
			dims := append([]int64(nil), t.GetDims()...)
			for i := len(perms) - 1; i >= 0; i-- {
				dims = permute(dims, perms[i])
			}
			return dims
		}
		n := ix.producer[name]
		if n == nil {
			return nil
		}
		switch {
		case isOp(n, "Constant"):
			if a := onnx.Attr(n, "value"); a != nil {
				dims := append([]int64(nil), a.GetT().GetDims()...)
				for i := len(perms) - 1; i >= 0; i-- {
					dims = permute(dims, perms[i])
				}
				return dims
			}
			return nil
		case isOp(n, "Transpose"):
			var perm []int64
			if a := onnx.Attr(n, "perm"); a != nil {
				perm = a.GetInts()
			}
			perms = append(perms, perm)
		case isOp(n, "Cast", "Identity", "DequantizeLinear") || isMSOp(n, "DequantizeLinear"):
		default:
			return nil
		}
		name = input(n, 0)
	}
	return nil
}

func permute(dims, perm []int64) []int64 {
	out := make([]int64, len(dims))
	if len(perm) == 0 {
		for i := range dims {
			out[i] = dims[len(dims)-1-i]
		}
		return out
	}
	if len(perm) != len(dims) {
		return dims
	}
	for i, p := range perm {
		if p < 0 || int(p) >= len(dims) {
			return dims
		}
		out[i] = dims[p]
	}
	return out
}

// staticDims returns the declared shape of a value when value_info or the graph I/O gives
// one; unknown sizes are -1.
func (ix *graph) staticDims(name string) []int64 {
	vi := ix.types[name]
	if vi == nil {
		return nil
	}
	sh := vi.GetType().GetTensorType().GetShape()
	if sh == nil {
		return nil
	}
	dims := make([]int64, len(sh.GetDim()))
	for i, d := range sh.GetDim() {
		dims[i] = -1
		if dv, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
			dims[i] = dv.DimValue
		}
	}
	return dims
}

// graphInputs lists the graph inputs a value depends on, in graph order, memoised.
func (ix *graph) graphInputs(name string) []string {
	if d, ok := ix.deps[name]; ok {
		return d
	}
	// Iterative post-order walk: real U-Nets are thousands of nodes deep.
	type frame struct {
		name string
		next int
	}
	stack := []frame{{name: name}}
	ix.deps[name] = nil // guards against cycles in malformed graphs
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		n := ix.producer[top.name]
		if n != nil && top.next < len(n.GetInput()) {
			in := n.GetInput()[top.next]
			top.next++
			if in == "" {
				continue
			}
			if _, done := ix.deps[in]; !done {
				ix.deps[in] = nil
				stack = append(stack, frame{name: in})
			}
			continue
		}
		var set []string
		if _, ok := ix.inputs[top.name]; ok {
			set = []string{top.name}
		}
		if n != nil {
			for _, in := range n.GetInput() {
				set = union(set, ix.deps[in])
			}
		}
		ix.deps[top.name] = set
		stack = stack[:len(stack)-1]
	}
	return ix.deps[name]
}

func union(a, b []string) []string {
	for _, x := range b {
		found := false
		for _, y := range a {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			a = append(append([]string(nil), a...), x)
		}
	}
	return a
}

// fresh returns a value or node name not yet used in the graph.
func (ix *graph) fresh(base string) string {
	name := base
	for i := 1; ix.names[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	ix.names[name] = true
	return name
}
