package ipadapter

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features/safetensors"
)

// Names Inject gives what it adds to a U-Net graph.
const (
	TokensInput = "ip_tokens"        // new graph input [B, tokens, ctx]
	ScaleName   = "ip_adapter_scale" // the scalar initializer holding the scale
	// LayerSuffix ends the name Find gives an injected IP attention: "<attn2 path>.ip".
	LayerSuffix = ".ip"
	// DefaultScale is the IP attention weight DiffSim's reference code runs with (api.Spec's
	// default, named here for the adapter's own callers).
	DefaultScale = api.DefaultIPScale
)

// InjectOptions configure Inject.
type InjectOptions struct {
	Scale float32 // weight of the IP attention; 0 turns it off (the graph then computes the plain U-Net)
}

// InjectedLayer is one attn2 that received IP attention.
type InjectedLayer struct {
	Name    string // the attn2 module path, e.g. up_blocks.1.attentions.2.transformer_blocks.0.attn2
	IPName  string // the name Find gives the IP attention: Name + LayerSuffix
	Key     int    // the adapter's processor index (ip_adapter.<Key>.to_k_ip.weight)
	Q       string // attn2's query tensor [B, S, C], shared by both attentions
	K, V    string // K_ip, V_ip [B, tokens, C]
	Out     string // attn(Q, K_text, V_text), attn2's own attention output [B, S, C]
	IPOut   string // attn(Q, K_ip, V_ip) [B, S, C]
	Sum     string // Out + scale · IPOut: what attn2's to_out now reads
	Heads   int
	HeadDim int
	Scale   float64 // the softmax scale, attn2's own
}

// Injection says what Inject added.
type Injection struct {
	Input  string // TokensInput
	Width  int    // IP token width: the U-Net's cross-attention width (768 for SD 1.5)
	Scale  float32
	Layers []InjectedLayer // in graph order
}

// ErrUnsupported is wrapped when a U-Net graph has a form Inject cannot edit.
var ErrUnsupported = errors.New("cannot add IP-Adapter attention to this U-Net graph")

// Inject adds the decoupled IP attention of the adapter weights f ("ip_adapter.<k>.to_k_ip.weight"
// and "…to_v_ip.weight", PyTorch [C, ctx]) to every text cross-attention layer of the U-Net m,
// in place. The caller re-encodes m (onnx.Marshal): initializers stored as external data keep
// their references untouched; the new weights are inline.
//
// Keys follow diffusers' attention-processor order, which IP-Adapter's weights use: every
// attention module of down_blocks, then up_blocks, then mid_block (the order the U-Net
// registers its children, not the order data flows), attn1 and attn2 alternating, so attn2
// layers carry the odd indices 1, 3, …, 31 and ip_adapter.31 is the mid block's.
//
// The graph must compute attention unfused in float32 (the TorchScript and dynamo exports);
// fused MultiHeadAttention graphs are refused with ErrUnsupported.
func Inject(m *onnxpb.ModelProto, f *safetensors.File, o InjectOptions) (Injection, error) {
	inj := Injection{Input: TokensInput, Scale: o.Scale}
	g := m.GetGraph()
	if g == nil {
		return inj, fmt.Errorf("%w: the model has no graph", ErrUnsupported)
	}
	for _, in := range g.GetInput() {
		if in.GetName() == TokensInput {
			return inj, fmt.Errorf("%w: it already has an input %q (IP-Adapter injected twice?)", ErrUnsupported, TokensInput)
		}
	}
	layers, err := attention.Find(m)
	if err != nil {
		return inj, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	var cross []attention.Layer
	for _, l := range layers {
		if l.Kind == attention.Cross && !l.ImageKV {
			cross = append(cross, l)
		}
	}
	if len(cross) == 0 {
		return inj, fmt.Errorf("%w: no cross-attention layer reads a text embedding", ErrUnsupported)
	}
	keys, err := processorKeys(cross)
	if err != nil {
		return inj, err
	}
	adapterKeys := countAdapterKeys(f)
	if adapterKeys != len(cross) {
		return inj, fmt.Errorf("IP-Adapter weights hold to_k_ip for %d layers, the U-Net has %d cross-attention layers: adapter and U-Net do not match (SD 1.5 has 16)", adapterKeys, len(cross))
	}

	ix := index(g)
	ctxWidth := 0
	for _, l := range cross {
		if err := ix.checkLayer(l); err != nil {
			return inj, err
		}
		w := ix.width(l.KVSource)
		if w <= 0 {
			return inj, fmt.Errorf("%w: %s: cannot tell the width of its keys' source %q", ErrUnsupported, l.Name, l.KVSource)
		}
		if ctxWidth != 0 && w != ctxWidth {
			return inj, fmt.Errorf("%w: cross-attention layers read contexts of widths %d and %d", ErrUnsupported, ctxWidth, w)
		}
		ctxWidth = w
	}
	inj.Width = ctxWidth

	g.Input = append(g.Input, onnx.ValueInfo(TokensInput, onnx.Float, -1, -1, int64(ctxWidth)))
	g.Initializer = append(g.Initializer, onnx.FloatTensor(ScaleName, nil, []float32{o.Scale}))
	r := weightReader{f}
	// New nodes go right after the node producing attn2's attention output, so the node list
	// stays topologically sorted.
	insertAfter := map[*onnxpb.NodeProto][]*onnxpb.NodeProto{}
	for _, l := range cross {
		key := keys[l.Name]
		c := l.Channels()
		wk, err := r.get(fmt.Sprintf("ip_adapter.%d.to_k_ip.weight", key), int64(c), int64(ctxWidth))
		if err != nil {
			return inj, fmt.Errorf("%s (adapter key %d): %w", l.Name, key, err)
		}
		wv, err := r.get(fmt.Sprintf("ip_adapter.%d.to_v_ip.weight", key), int64(c), int64(ctxWidth))
		if err != nil {
			return inj, fmt.Errorf("%s (adapter key %d): %w", l.Name, key, err)
		}
		il, nodes, inits := ipAttention(l, key, transpose(wk, c, ctxWidth), transpose(wv, c, ctxWidth), ctxWidth)
		g.Initializer = append(g.Initializer, inits...)
		// Every reader of the text attention output now reads the sum.
		for _, n := range ix.consumers[l.Out] {
			for i, in := range n.Input {
				if in == l.Out {
					n.Input[i] = il.Sum
				}
			}
		}
		p := ix.producer[l.Out]
		insertAfter[p] = append(insertAfter[p], nodes...)
		inj.Layers = append(inj.Layers, il)
	}
	nodes := make([]*onnxpb.NodeProto, 0, len(g.Node)+len(cross)*24)
	for _, n := range g.Node {
		nodes = append(nodes, n)
		nodes = append(nodes, insertAfter[n]...)
	}
	g.Node = nodes
	return inj, nil
}

// ipAttention makes the nodes and weights of one layer's IP attention. Node names put it in
// the scope "<attn2 path>/ip", so the attention finder names it "<attn2 path>.ip".
func ipAttention(l attention.Layer, key int, wk, wv []float32, ctx int) (InjectedLayer, []*onnxpb.NodeProto, []*onnxpb.TensorProto) {
	c, h, d := l.Channels(), l.Heads, l.HeadDim
	scope := "/" + l.Name + "/ip/"
	il := InjectedLayer{Name: l.Name, IPName: l.Name + LayerSuffix, Key: key, Q: l.Q, Out: l.Out, Heads: h, HeadDim: d, Scale: l.Scale}
	var nodes []*onnxpb.NodeProto
	var inits []*onnxpb.TensorProto
	node := func(op, name string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
		out := scope + name + "_output_0"
		nodes = append(nodes, &onnxpb.NodeProto{Name: scope + name, OpType: op, Input: inputs, Output: []string{out}, Attribute: attrs})
		return out
	}
	init := func(t *onnxpb.TensorProto) string {
		inits = append(inits, t)
		return t.GetName()
	}
	kw := init(onnx.FloatTensor(fmt.Sprintf("ip_adapter.%d.to_k_ip.weight", key), []int64{int64(ctx), int64(c)}, wk))
	vw := init(onnx.FloatTensor(fmt.Sprintf("ip_adapter.%d.to_v_ip.weight", key), []int64{int64(ctx), int64(c)}, wv))
	split := init(onnx.IntTensor(scope+"split_shape", []int64{4}, []int64{0, 0, int64(h), int64(d)}))
	merge := init(onnx.IntTensor(scope+"merge_shape", []int64{3}, []int64{0, 0, int64(c)}))
	scale := init(onnx.FloatTensor(scope+"scale", nil, []float32{float32(l.Scale)}))

	il.K = node("MatMul", "to_k_ip/MatMul", []string{TokensInput, kw})
	il.V = node("MatMul", "to_v_ip/MatMul", []string{TokensInput, vw})
	qh := node("Transpose", "Transpose", []string{node("Reshape", "Reshape", []string{l.Q, split})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	kt := node("Transpose", "Transpose_1", []string{node("Reshape", "Reshape_1", []string{il.K, split})}, onnx.AttrInts("perm", 0, 2, 3, 1))
	vh := node("Transpose", "Transpose_2", []string{node("Reshape", "Reshape_2", []string{il.V, split})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	scores := node("Mul", "Mul", []string{node("MatMul", "MatMul", []string{qh, kt}), scale})
	p := node("Softmax", "Softmax", []string{scores}, onnx.AttrInt("axis", -1))
	o := node("MatMul", "MatMul_1", []string{p, vh})
	o = node("Transpose", "Transpose_3", []string{o}, onnx.AttrInts("perm", 0, 2, 1, 3))
	il.IPOut = node("Reshape", "Reshape_3", []string{o, merge})
	weighted := node("Mul", "Mul_1", []string{il.IPOut, ScaleName})
	il.Sum = node("Add", "Add", []string{l.Out, weighted})
	return il, nodes, inits
}

type graphIndex struct {
	producer  map[string]*onnxpb.NodeProto
	consumers map[string][]*onnxpb.NodeProto
	inputs    map[string]*onnxpb.ValueInfoProto
	inits     map[string]*onnxpb.TensorProto
}

func index(g *onnxpb.GraphProto) graphIndex {
	ix := graphIndex{producer: map[string]*onnxpb.NodeProto{}, consumers: map[string][]*onnxpb.NodeProto{},
		inputs: map[string]*onnxpb.ValueInfoProto{}, inits: map[string]*onnxpb.TensorProto{}}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			ix.producer[o] = n
		}
		for _, in := range n.GetInput() {
			ix.consumers[in] = append(ix.consumers[in], n)
		}
	}
	for _, in := range g.GetInput() {
		ix.inputs[in.GetName()] = in
	}
	for _, t := range g.GetInitializer() {
		ix.inits[t.GetName()] = t
	}
	return ix
}

// checkLayer makes sure the layer's Q and attention output are float32 tensors of the graph
// itself (not values Instrument would have to create), so the IP attention can read and add
// to them.
func (ix graphIndex) checkLayer(l attention.Layer) error {
	if l.Op != "MatMul+Softmax" {
		return fmt.Errorf("%w: %s is a fused %s; IP-Adapter injection needs the unfused export (torch.onnx.export or optimum without ORT optimisation)", ErrUnsupported, l.Name, l.Op)
	}
	if l.Out == "" || ix.producer[l.Out] == nil {
		return fmt.Errorf("%w: %s: its attention output before to_out was not found", ErrUnsupported, l.Name)
	}
	if ix.producer[l.Q] == nil {
		return fmt.Errorf("%w: %s: its query %q is not a tensor of the graph (float16 graph?)", ErrUnsupported, l.Name, l.Q)
	}
	if in := ix.inputs[l.KVSource]; in != nil {
		if e := in.GetType().GetTensorType().GetElemType(); e != onnx.Float {
			return fmt.Errorf("%w: %s reads %q of element type %d; only float32 U-Nets are supported", ErrUnsupported, l.Name, l.KVSource, e)
		}
	}
	return nil
}

// width is the last dimension of a graph input, or the row count of the weight the K
// projection multiplies it with.
func (ix graphIndex) width(v string) int {
	if in := ix.inputs[v]; in != nil {
		dims := in.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) > 0 && dims[len(dims)-1].GetDimValue() > 0 {
			return int(dims[len(dims)-1].GetDimValue())
		}
	}
	for _, n := range ix.consumers[v] {
		if n.GetOpType() == "MatMul" && len(n.Input) == 2 && n.Input[0] == v {
			if t := ix.inits[n.Input[1]]; t != nil && len(t.Dims) == 2 {
				return int(t.Dims[0])
			}
		}
	}
	return 0
}

var adapterKey = regexp.MustCompile(`^ip_adapter\.(\d+)\.to_k_ip\.weight$`)

func countAdapterKeys(f *safetensors.File) int {
	n := 0
	for _, name := range f.Names() {
		if adapterKey.MatchString(name) {
			n++
		}
	}
	return n
}

// blockGroups ranks the U-Net's children in the order diffusers registers them, which is the
// order of unet.attn_processors and so of the adapter's keys. The original LDM layout's
// input/output/middle blocks are the same modules.
var blockGroups = map[string]int{"down_blocks": 0, "input_blocks": 0, "up_blocks": 1, "output_blocks": 1, "mid_block": 2, "middle_block": 2}

// processorKeys gives each cross-attention layer its adapter key: 2·rank + 1, rank being its
// position in diffusers' processor order.
func processorKeys(cross []attention.Layer) (map[string]int, error) {
	type place struct {
		name  string
		group int
		nums  []int
	}
	places := make([]place, 0, len(cross))
	for _, l := range cross {
		group, rest, _ := strings.Cut(l.Name, ".")
		rank, ok := blockGroups[group]
		if !ok {
			return nil, fmt.Errorf("%w: cross-attention layer %q has no U-Net block path (down_blocks…, up_blocks…, mid_block…), so it cannot be matched to an adapter key", ErrUnsupported, l.Name)
		}
		p := place{name: l.Name, group: rank}
		for _, part := range strings.Split(rest, ".") {
			if v, err := strconv.Atoi(part); err == nil {
				p.nums = append(p.nums, v)
			}
		}
		places = append(places, p)
	}
	slices.SortStableFunc(places, func(a, b place) int {
		return cmp.Or(cmp.Compare(a.group, b.group), slices.Compare(a.nums, b.nums))
	})
	keys := make(map[string]int, len(places))
	for i, p := range places {
		keys[p.name] = 2*i + 1
	}
	return keys, nil
}
