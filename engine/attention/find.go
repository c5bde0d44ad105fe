package attention

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// errNotAttention marks a Softmax that is not part of an attention layer (a classifier head).
var errNotAttention = errors.New("not attention")

// maxWalk bounds every upstream or downstream walk, so a malformed graph cannot loop.
const maxWalk = 64

// Find returns every attention layer of the model's main graph, in graph order. Layers it
// recognises but cannot resolve are reported in the error (one *WalkError each, joined) while
// the resolved ones are still returned. A graph without attention gives ErrNoAttention.
func Find(m *onnxpb.ModelProto) ([]Layer, error) {
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("%w: the model has no graph", ErrNoAttention)
	}
	ix := newGraph(m)
	var layers []Layer
	var errs []error
	for _, n := range m.GetGraph().GetNode() {
		var l *Layer
		var err error
		switch {
		case isOp(n, "Softmax"):
			l, err = ix.unfused(n)
		case isMSOp(n, "MultiHeadAttention"):
			l, err = ix.multiHead(n)
		case isMSOp(n, "Attention"):
			l, err = ix.msAttention(n)
		case isOp(n, "Attention"):
			l, err = ix.onnxAttention(n)
		default:
			continue
		}
		if errors.Is(err, errNotAttention) {
			continue
		}
		if err == nil {
			err = ix.checkPlan(n, l)
		}
		if err != nil {
			var we *WalkError
			if errors.As(err, &we) && we.Layer == "" {
				we.Layer = ix.scope(n)
			}
			errs = append(errs, err)
			continue
		}
		layers = append(layers, *l)
	}
	if len(layers) == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("%w in graph %q (%d nodes): no Softmax between two MatMuls and no fused attention operator", ErrNoAttention, m.GetGraph().GetName(), len(m.GetGraph().GetNode()))
	}
	ix.finish(layers)
	return layers, errors.Join(errs...)
}

// checkPlan rejects a layer whose tensors no node produces (a dangling input).
func (ix *graph) checkPlan(n *onnxpb.NodeProto, l *Layer) error {
	for _, t := range []tap{l.plan.q, l.plan.k, l.plan.v, l.plan.out, {src: l.plan.q.weight}, {src: l.plan.q.bias}} {
		if t.src != "" && !ix.exists(t.src) {
			return &WalkError{Node: n.GetName(), Op: n.GetOpType(), Reason: fmt.Sprintf("tensor %q is produced by no node, input or initializer", t.src)}
		}
	}
	return nil
}

func (ix *graph) exists(v string) bool {
	return ix.producer[v] != nil || ix.inputs[v] != nil || ix.inits[v] != nil
}

// finish names the layers, makes names unique, and fills the fields that need every layer.
func (ix *graph) finish(layers []Layer) {
	seen := map[string]int{}
	anon := 0
	for i := range layers {
		l := &layers[i]
		l.Index = i
		if l.Name == "" {
			l.Name = fmt.Sprintf("attn.%d", anon)
			anon++
		}
		if k := seen[l.Name]; k > 0 {
			seen[l.Name]++
			l.Name = fmt.Sprintf("%s#%d", l.Name, k)
		} else {
			seen[l.Name] = 1
		}
		l.Group, l.Short = unetPlace(l.Name)
		l.Layout = LayoutBSC
		if l.KVHeads == 0 {
			l.KVHeads = l.Heads
		}
		if l.KVSource != "" {
			l.KVInputs = ix.graphInputs(l.KVSource)
		}
		l.ImageKV = l.Kind == Self
		if l.Kind == Cross {
			for _, in := range l.KVInputs {
				if !ix.isConditioning(in) {
					l.ImageKV = true
				}
			}
		}
		ix.nameTaps(l)
	}
}

// isConditioning reports whether a graph input carries text or time conditioning rather than
// an image: integer token ids, or the names exporters give text embeddings and timesteps.
func (ix *graph) isConditioning(name string) bool {
	if vi := ix.inputs[name]; vi != nil {
		switch vi.GetType().GetTensorType().GetElemType() {
		case onnx.Int64, onnx.Int32:
			return true
		}
	}
	for _, hint := range []string{"encoder_hidden_states", "text", "input_ids", "prompt", "token", "timestep", "time_ids", "context", "attention_mask"} {
		if containsFold(name, hint) {
			return true
		}
	}
	return false
}

// ---- unfused attention: MatMul(Q, Kᵀ) → … → Softmax → … → MatMul(P, V) ----

// factor is one scalar multiplier met on the score path: a constant, or a value computed from
// shapes at run time (the live scale of an exported scaled_dot_product_attention).
type factor struct {
	value   float64 // for constants
	live    string  // the live value's name
	inverse bool    // divided by, rather than multiplied
}

type scoreWalk struct {
	matmul  *onnxpb.NodeProto
	factors []factor
}

func (ix *graph) unfused(sm *onnxpb.NodeProto) (*Layer, error) {
	sw, ok := ix.scoresUp(input(sm, 0), 0)
	if !ok {
		return nil, errNotAttention
	}
	pv := ix.probsDown(output(sm, 0))
	if pv == nil {
		return nil, &WalkError{Node: sm.GetName(), Op: "Softmax", Reason: "no MatMul(P, V) consumes the attention probabilities"}
	}
	name := ix.scope(sm)
	if name == "" {
		name = ix.scope(sw.matmul)
	}
	q, err := ix.projectionUp(input(sw.matmul, 0), true)
	if err != nil {
		return nil, withLayer(err, name)
	}
	k, err := ix.projectionUp(input(sw.matmul, 1), true)
	if err != nil {
		return nil, withLayer(err, name)
	}
	v, err := ix.projectionUp(input(pv, 1), false)
	if err != nil {
		return nil, withLayer(err, name)
	}
	l := &Layer{Name: name, Softmax: sm.GetName(), Op: "MatMul+Softmax", QSource: q.source, KVSource: k.source}
	l.Heads, l.HeadDim = ix.heads(q, k, v)
	if l.Heads == 0 || l.HeadDim == 0 {
		return nil, &WalkError{Layer: name, Node: q.node, Op: q.op, Reason: "cannot tell the head count from the head-split Reshape or the projection weights"}
	}
	if kh, kd := ix.heads(k, v, q); kd == l.HeadDim && kh > 0 {
		l.KVHeads = kh
	}
	factors := slices.Concat(sw.factors, q.factors, k.factors)
	l.Scale = ix.scale(factors, l.HeadDim)
	l.Kind = Self
	if q.source != k.source {
		l.Kind = Cross
	}
	out := ix.outputDown(output(pv, 0))
	l.plan = &plan{q: tap{src: q.tensor}, k: tap{src: k.tensor}, v: tap{src: v.tensor}}
	if out != "" {
		l.plan.out = tap{src: out}
	}
	return l, nil
}

func withLayer(err error, layer string) error {
	var we *WalkError
	if errors.As(err, &we) && we.Layer == "" {
		we.Layer = layer
	}
	return err
}

// scoresUp walks from the Softmax input up to the score MatMul, through scalings, masks,
// casts and reshapes, collecting the scalar factors on the way.
func (ix *graph) scoresUp(v string, depth int) (scoreWalk, bool) {
	var sw scoreWalk
	for step := 0; step < maxWalk && depth < 8; step++ {
		n := ix.producer[v]
		if n == nil || !isDefaultDomain(n) {
			return sw, false
		}
		switch n.GetOpType() {
		case "MatMul":
			if ix.isWeight(input(n, 0)) || ix.isWeight(input(n, 1)) {
				return sw, false
			}
			sw.matmul = n
			return sw, true
		case "Cast", "Identity", "Reshape", "Dropout":
			v = input(n, 0)
		case "Mul", "Div":
			data, f, ok := ix.scalarFactor(n)
			if !ok {
				return sw, false
			}
			sw.factors = append(sw.factors, f)
			v = data
		case "Add", "Where", "Sub":
			// A mask, a position bias, or baddbmm's leftover Add(Mul(empty, 0)): follow the one
			// operand that reaches the scores.
			first := 0
			if n.GetOpType() == "Where" {
				first = 1
			}
			var found []scoreWalk
			for i := first; i < len(n.GetInput()); i++ {
				if n.GetOpType() == "Sub" && i > 0 {
					break
				}
				if sub, ok := ix.scoresUp(input(n, i), depth+1); ok {
					found = append(found, sub)
				}
			}
			if len(found) != 1 {
				return sw, false
			}
			sw.matmul = found[0].matmul
			sw.factors = append(sw.factors, found[0].factors...)
			return sw, true
		default:
			return sw, false
		}
	}
	return sw, false
}

// scalarFactor splits a Mul or Div by a scalar into its data operand and the factor. The
// scalar is a constant or a value computed only from shapes.
func (ix *graph) scalarFactor(n *onnxpb.NodeProto) (data string, f factor, ok bool) {
	div := n.GetOpType() == "Div"
	for i := 1; i >= 0; i-- {
		if div && i == 0 {
			break // c / x is not a scaling of x
		}
		s := input(n, i)
		if k := ix.evalConst(s); k != nil {
			if val, isScalar := k.scalar(); isScalar {
				f = factor{value: val, inverse: div}
				return input(n, 1-i), f, true
			}
			continue
		}
		if ix.isShapeDerived(s, 0) {
			return input(n, 1-i), factor{live: s, inverse: div}, true
		}
	}
	return "", factor{}, false
}

// scale multiplies the factors into the effective softmax scale. A live factor is evaluated
// with the head size; when it cannot be, the live factors together are taken to be
// 1/sqrt(headDim), the default of scaled_dot_product_attention.
func (ix *graph) scale(factors []factor, headDim int) float64 {
	s := 1.0
	liveFailed := false
	for _, f := range factors {
		v := f.value
		if f.live != "" {
			k := ix.evalWithHeadSize(f.live, headDim)
			val, ok := k.scalar()
			if !ok || val == 0 || math.IsNaN(val) || math.IsInf(val, 0) {
				liveFailed = true
				continue
			}
			v = val
		}
		if f.inverse {
			v = 1 / v
		}
		s *= v
	}
	if liveFailed {
		s *= 1 / math.Sqrt(float64(headDim))
	}
	return s
}

// probsDown follows the attention probabilities down to the MatMul(P, V) that reads them.
func (ix *graph) probsDown(p string) *onnxpb.NodeProto {
	queue := []string{p}
	for steps := 0; len(queue) > 0 && steps < maxWalk; steps++ {
		v := queue[0]
		queue = queue[1:]
		for _, c := range ix.consumers[v] {
			switch {
			case isOp(c, "MatMul") && input(c, 0) == v && !ix.isWeight(input(c, 1)):
				return c
			case isOp(c, "Cast", "Identity", "Dropout", "Reshape"):
				queue = append(queue, output(c, 0))
			case isOp(c, "Where") && input(c, 0) != v:
				queue = append(queue, output(c, 0))
			}
		}
	}
	return nil
}

// projected is the result of walking from an attention operand up to its projection.
type projected struct {
	tensor   string // the projection output, [B, S, C]
	source   string // what the projection reads
	node, op string // the projection node (or where the walk stopped)
	factors  []factor
	splits   []*konst // head-split reshape shapes met on the way, nearest the projection first
	channels int      // C from the projection's weights, 0 when unknown
}

// projectionUp walks from an attention operand up through layout ops (and, for Q and K,
// scalar scalings) to the projection that produced it.
func (ix *graph) projectionUp(v string, scalings bool) (projected, error) {
	var p projected
	passedSplit := false
	var last *onnxpb.NodeProto
	for range maxWalk {
		n := ix.producer[v]
		if n == nil {
			if _, ok := ix.inputs[v]; ok && (passedSplit || len(ix.staticDims(v)) == 3) {
				p.tensor, p.source, p.node, p.op = v, v, v, "graph input"
				p.channels = lastDim(ix.staticDims(v))
				return p, nil
			}
			where := v
			if last != nil {
				where = last.GetName()
			}
			return p, &WalkError{Node: where, Op: last.GetOpType(), Reason: fmt.Sprintf("input %q is not produced by a projection", v)}
		}
		if src, ch, ok := ix.projection(n); ok {
			p.tensor, p.source, p.node, p.op, p.channels = v, ix.throughCasts(src), n.GetName(), n.GetOpType(), ch
			return p, nil
		}
		last = n
		switch {
		case isOp(n, "Reshape"):
			if k := ix.evalConst(input(n, 1)); k != nil && (len(k.vals) == 4 || len(k.vals) == 3) {
				p.splits = append([]*konst{k}, p.splits...)
				if len(k.vals) == 4 {
					passedSplit = true
				}
			}
			v = input(n, 0)
		case isOp(n, "Transpose", "Cast", "Identity", "Squeeze", "Unsqueeze", "Dropout", "Flatten", "Contiguous"):
			v = input(n, 0)
		case scalings && isOp(n, "Mul", "Div"):
			data, f, ok := ix.scalarFactor(n)
			if !ok {
				return ix.stopAt(p, n, v, passedSplit)
			}
			p.factors = append(p.factors, f)
			v = data
		default:
			return ix.stopAt(p, n, v, passedSplit)
		}
	}
	return p, &WalkError{Node: v, Reason: "walk too long"}
}

// stopAt ends a walk at a node that is neither a projection nor a layout op. The node's output
// still serves as Q, K or V when a head-split Reshape lies between it and the attention (so it
// is [B, S, C]): rotary or normalised projections. Otherwise the layer is not resolved.
func (ix *graph) stopAt(p projected, n *onnxpb.NodeProto, v string, passedSplit bool) (projected, error) {
	if !passedSplit {
		return p, &WalkError{Node: n.GetName(), Op: n.GetOpType(), Reason: "neither a projection nor a layout op, and no head-split Reshape lies after it"}
	}
	p.tensor, p.source, p.node, p.op = v, ix.throughCasts(v), n.GetName(), n.GetOpType()
	return p, nil
}

// projection recognises a node that ends a linear projection and returns what it reads and
// its output channel count (0 when unknown).
func (ix *graph) projection(n *onnxpb.NodeProto) (src string, channels int, ok bool) {
	switch {
	case isOp(n, "MatMul"):
		if w := input(n, 1); ix.isWeight(w) && !ix.isWeight(input(n, 0)) {
			return input(n, 0), lastDim(ix.weightDims(w)), true
		}
	case isOp(n, "Gemm"):
		if w := input(n, 1); ix.isWeight(w) {
			dims := ix.weightDims(w)
			ch := lastDim(dims)
			if attrInt(n, "transB", 0) == 1 && len(dims) == 2 {
				ch = int(dims[0])
			}
			return input(n, 0), ch, true
		}
	case isOp(n, "Add"):
		for i := range 2 {
			if b := input(n, 1-i); ix.isWeight(b) {
				if inner := ix.producer[input(n, i)]; inner != nil && !isOp(inner, "Add") {
					if src, ch, ok := ix.projection(inner); ok {
						if ch == 0 {
							ch = lastDim(ix.weightDims(b))
						}
						return src, ch, true
					}
				}
			}
		}
	case isOp(n, "Mul"):
		// DynamicQuantizeLinear → MatMulInteger → Cast → Mul(scale).
		for i := range 2 {
			c := ix.producer[input(n, i)]
			if !isOp(c, "Cast") {
				continue
			}
			if mm := ix.producer[input(c, 0)]; isOp(mm, "MatMulInteger") {
				return ix.dequantizedSource(input(mm, 0)), lastDim(ix.weightDims(input(mm, 1))), true
			}
		}
	case isMSOp(n, "MatMulIntegerToFloat") || isMSOp(n, "DynamicQuantizeMatMul"):
		return ix.dequantizedSource(input(n, 0)), lastDim(ix.weightDims(input(n, 1))), true
	case isMSOp(n, "MatMulNBits"):
		return input(n, 0), int(attrInt(n, "N", 0)), true
	case isMSOp(n, "FusedMatMul"):
		if w := input(n, 1); ix.isWeight(w) {
			return input(n, 0), 0, true
		}
	}
	return "", 0, false
}

// dequantizedSource returns the float tensor a DynamicQuantizeLinear quantised.
func (ix *graph) dequantizedSource(q string) string {
	if n := ix.producer[q]; isOp(n, "DynamicQuantizeLinear") || isOp(n, "QuantizeLinear") {
		return ix.throughCasts(input(n, 0))
	}
	return ix.throughCasts(q)
}

func (ix *graph) throughCasts(v string) string {
	for range maxWalk {
		n := ix.producer[v]
		if !isOp(n, "Cast", "Identity") {
			return v
		}
		v = input(n, 0)
	}
	return v
}

func lastDim(dims []int64) int {
	if len(dims) == 0 || dims[len(dims)-1] <= 0 {
		return 0
	}
	return int(dims[len(dims)-1])
}

// heads reads the head count and head size from the head-split Reshape of the first operand,
// using the projection width (C = H·D) to complete a -1 or a size read at run time.
func (ix *graph) heads(ps ...projected) (heads, dim int) {
	p := ps[0]
	c := p.channels
	if c == 0 {
		for _, o := range ps[1:] {
			// K and V of self-attention share the width; cross K/V may differ in input width
			// but their output width is the same C.
			if o.channels > 0 {
				c = o.channels
				break
			}
		}
	}
	known := func(k *konst, i int) int {
		if i < len(k.vals) && k.known[i] && k.vals[i] > 0 {
			return int(k.vals[i])
		}
		return 0
	}
	for _, k := range p.splits {
		if len(k.vals) != 4 {
			continue
		}
		h, d := known(k, 2), known(k, 3)
		switch {
		case h > 0 && d > 0:
			return h, d
		case h > 0 && c > 0 && c%h == 0:
			return h, c / h
		case d > 0 && c > 0 && c%d == 0:
			return c / d, d
		}
	}
	// 3-D heads [B·H, S, D] after the split: D may be the only constant.
	for _, k := range p.splits {
		if len(k.vals) == 3 {
			if d := known(k, 2); d > 0 && c > 0 && c%d == 0 {
				return c / d, d
			}
		}
	}
	if len(p.splits) == 0 && c > 0 {
		return 1, c // single head, no split at all
	}
	return 0, 0
}

// outputDown follows the attention output P·V through the head merge (Reshape, Transpose) to
// the tensor the output projection reads, [B, S, C]. "" when it cannot be found.
func (ix *graph) outputDown(v string) string {
	merged := false
	for range maxWalk {
		var cs []*onnxpb.NodeProto
		for _, c := range ix.consumers[v] {
			if !isOp(c, "Shape", "Size") { // reading a shape is not a use of the values
				cs = append(cs, c)
			}
		}
		if len(cs) != 1 {
			if merged {
				return v
			}
			return ""
		}
		c := cs[0]
		if _, _, ok := ix.projection(c); ok || isOp(c, "DynamicQuantizeLinear") || isMSOp(c, "MatMulNBits") {
			if merged || isOp(c, "MatMul", "Gemm") {
				return v
			}
			return ""
		}
		if isOp(c, "MatMul") && input(c, 0) == v && ix.isWeight(input(c, 1)) {
			return v
		}
		switch {
		case isOp(c, "Reshape"):
			merged = true
			v = output(c, 0)
		case isOp(c, "Transpose", "Cast", "Identity", "Dropout"):
			merged = false
			v = output(c, 0)
		default:
			if merged {
				return v
			}
			return ""
		}
	}
	return ""
}
