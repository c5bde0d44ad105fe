package onnx

import (
	"fmt"
	"sort"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// Builder assembles a graph node by node. It names values the way the TorchScript exporter
// does (a node "/a/MatMul" produces "/a/MatMul_output_0"), so generated test graphs look like
// real exports to the attention finder.
type Builder struct {
	graph   *onnxpb.GraphProto
	opsets  map[string]int64
	IR      int64
	counter int
}

// NewBuilder starts an empty graph importing the default ONNX domain at opset 17.
func NewBuilder(name string) *Builder {
	return &Builder{
		graph:  &onnxpb.GraphProto{Name: name},
		opsets: map[string]int64{"": 17},
		IR:     8,
	}
}

// Opset sets the version imported for a domain ("" is the default ONNX domain).
func (b *Builder) Opset(domain string, version int64) { b.opsets[domain] = version }

// Input declares a graph input. A negative dimension is symbolic.
func (b *Builder) Input(name string, elem int32, dims ...int64) string {
	b.graph.Input = append(b.graph.Input, ValueInfo(name, elem, dims...))
	return name
}

// Output declares a graph output; elem 0 leaves its type unspecified.
func (b *Builder) Output(name string, elem int32, dims ...int64) {
	if elem == 0 {
		b.graph.Output = append(b.graph.Output, &onnxpb.ValueInfoProto{Name: name})
		return
	}
	b.graph.Output = append(b.graph.Output, ValueInfo(name, elem, dims...))
}

// ValueInfo describes a tensor value; negative dimensions become symbolic names.
func ValueInfo(name string, elem int32, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for i, d := range dims {
		if d < 0 {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{
				Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: fmt.Sprintf("%s_dim_%d", name, i)}})
			continue
		}
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{
			Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: elem, Shape: shape}}}}
}

// Initializer adds a constant tensor and returns its name.
func (b *Builder) Initializer(t *onnxpb.TensorProto) string {
	b.graph.Initializer = append(b.graph.Initializer, t)
	return t.GetName()
}

// Floats adds a float32 initializer.
func (b *Builder) Floats(name string, dims []int64, data []float32) string {
	if int64(len(data)) != product(dims) {
		panic(fmt.Sprintf("onnx.Builder.Floats(%q): %d values for shape %v", name, len(data), dims))
	}
	return b.Initializer(FloatTensor(name, dims, data))
}

// Ints adds an int64 initializer.
func (b *Builder) Ints(name string, dims []int64, data []int64) string {
	if int64(len(data)) != product(dims) {
		panic(fmt.Sprintf("onnx.Builder.Ints(%q): %d values for shape %v", name, len(data), dims))
	}
	return b.Initializer(IntTensor(name, dims, data))
}

// Scalar adds a 0-d float32 initializer.
func (b *Builder) Scalar(name string, v float32) string {
	return b.Initializer(FloatTensor(name, nil, []float32{v}))
}

// Node adds a node of the default domain with one output and returns that output's name.
func (b *Builder) Node(op, name string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.NodeIn("", op, name, inputs, 1, attrs...)[0]
}

// NodeIn adds a node of any domain with n outputs and returns their names.
func (b *Builder) NodeIn(domain, op, name string, inputs []string, n int, attrs ...*onnxpb.AttributeProto) []string {
	b.counter++
	if name == "" {
		name = fmt.Sprintf("%s_%d", op, b.counter)
	}
	outs := make([]string, n)
	for i := range outs {
		outs[i] = fmt.Sprintf("%s_output_%d", name, i)
	}
	b.graph.Node = append(b.graph.Node, &onnxpb.NodeProto{
		Name: name, OpType: op, Domain: domain, Input: inputs, Output: outs, Attribute: attrs,
	})
	return outs
}

// Last returns the node added most recently, for setting metadata or renaming outputs.
func (b *Builder) Last() *onnxpb.NodeProto { return b.graph.Node[len(b.graph.Node)-1] }

// Graph returns the graph built so far.
func (b *Builder) Graph() *onnxpb.GraphProto { return b.graph }

// Model wraps the graph in a model with the builder's opset imports.
func (b *Builder) Model() *onnxpb.ModelProto {
	domains := make([]string, 0, len(b.opsets))
	for d := range b.opsets {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	m := &onnxpb.ModelProto{IrVersion: b.IR, ProducerName: "diffsim", Graph: b.graph}
	for _, d := range domains {
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: d, Version: b.opsets[d]})
	}
	return m
}

// AttrInt makes an integer attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
}

// AttrInts makes an integer-list attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS, Ints: v}
}

// AttrFloat makes a float attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_FLOAT, F: v}
}

// AttrString makes a string attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_STRING, S: []byte(v)}
}

// AttrTensor makes a tensor attribute (as Constant nodes carry).
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_TENSOR, T: t}
}

// Attr finds a node's attribute by name.
func Attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func product(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}
