package onnx

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// Field numbers of the ONNX messages this file reads at the wire level.
const (
	modelGraph = 7

	graphNode        = 1
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12
	graphValueInfo   = 13
	graphSparseInit  = 15

	tensorName    = 8
	tensorRawData = 9
	// TensorProto's typed data fields: float, int32, string, int64, double, uint64.
	tensorFloatData, tensorInt32Data, tensorStringData, tensorInt64Data, tensorDoubleData, tensorUint64Data = 4, 5, 6, 7, 10, 11

	valueInfoName = 1
)

// structureBytes is the largest initializer whose data ParseStructure keeps: shapes, scalars
// and small constants, never weights.
const structureBytes = 1024

// ParseStructure decodes a model's structure: every field as Parse decodes it, except the data
// of initializers larger than a kilobyte, which is left out (their name, type and dims stay).
// The graph's nodes, inputs, outputs and small constants are all there, for finding attention,
// inferring shapes and pruning; no weight is copied into Go memory, however the model stores
// its weights.
func ParseStructure(data []byte) (*onnxpb.ModelProto, error) {
	if len(data) > maxModelBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the 2 GiB protobuf limit", ErrNotONNX, len(data))
	}
	trimmed, err := rewriteGraphs(data, func(field protowire.Number, v []byte, out []byte) ([]byte, error) {
		if field != graphInitializer {
			return appendBytesField(out, field, v), nil
		}
		t, err := trimTensor(v)
		if err != nil {
			return nil, err
		}
		return appendBytesField(out, field, t), nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotONNX, err)
	}
	return Parse(trimmed)
}

// trimTensor drops the data of a TensorProto holding more than structureBytes.
func trimTensor(t []byte) ([]byte, error) {
	if len(t) <= structureBytes {
		return t, nil
	}
	out := make([]byte, 0, 256)
	for len(t) > 0 {
		num, typ, n := protowire.ConsumeTag(t)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, t[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		switch num {
		case tensorRawData, tensorFloatData, tensorInt32Data, tensorStringData, tensorInt64Data, tensorDoubleData, tensorUint64Data:
			if m > structureBytes {
				t = t[n+m:]
				continue
			}
		}
		out = append(out, t[:n+m]...)
		t = t[n+m:]
	}
	return out, nil
}

// rewriteGraphs copies a ModelProto's bytes with every field of its graph (and of graphs
// merged into it: protobuf concatenates repeated occurrences) passed through keep, which
// appends what it keeps to out. The model's other fields are copied as they are, and the
// graph is written back as one field.
func rewriteGraphs(data []byte, keep func(field protowire.Number, v []byte, out []byte) ([]byte, error)) ([]byte, error) {
	var head, graph []byte
	rest := data
	for len(rest) > 0 {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		if num != modelGraph || typ != protowire.BytesType {
			head = append(head, rest[:n+m]...)
			rest = rest[n+m:]
			continue
		}
		g, _ := protowire.ConsumeBytes(rest[n:])
		for len(g) > 0 {
			gnum, gtyp, k := protowire.ConsumeTag(g)
			if k < 0 {
				return nil, protowire.ParseError(k)
			}
			l := protowire.ConsumeFieldValue(gnum, gtyp, g[k:])
			if l < 0 {
				return nil, protowire.ParseError(l)
			}
			var err error
			if gtyp == protowire.BytesType {
				v, _ := protowire.ConsumeBytes(g[k:])
				graph, err = keep(gnum, v, graph)
			} else {
				graph = append(graph, g[:k+l]...)
			}
			if err != nil {
				return nil, err
			}
			g = g[k+l:]
		}
		rest = rest[n+m:]
	}
	out := make([]byte, 0, len(head)+len(graph)+16)
	out = append(out, head...)
	out = protowire.AppendTag(out, modelGraph, protowire.BytesType)
	return protowire.AppendBytes(out, graph), nil
}

func appendBytesField(out []byte, field protowire.Number, v []byte) []byte {
	out = protowire.AppendTag(out, field, protowire.BytesType)
	return protowire.AppendBytes(out, v)
}

// stringField reads the first occurrence of a string field of a message's bytes.
func stringField(msg []byte, field protowire.Number) string {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return ""
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return ""
		}
		if num == field && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(msg[n:])
			return string(v)
		}
		msg = msg[n+m:]
	}
	return ""
}

// Needed is what computing some of a graph's values takes: the nodes (by their index in
// structure's node list) and the values (graph inputs, initializers, node outputs) they read.
type Needed struct {
	Nodes  map[int]bool
	Values map[string]bool
}

// Need walks structure's graph backward from outputs: every node that contributes to them and
// every value those nodes read, subgraphs' references to outer values included.
func Need(structure *onnxpb.ModelProto, outputs []string) (Needed, error) {
	g := structure.GetGraph()
	producer := map[string]int{}
	for i, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" {
				producer[o] = i
			}
		}
	}
	need := Needed{Nodes: map[int]bool{}, Values: map[string]bool{}}
	stack := append([]string(nil), outputs...)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if v == "" || need.Values[v] {
			continue
		}
		need.Values[v] = true
		i, ok := producer[v]
		if !ok || need.Nodes[i] {
			continue
		}
		need.Nodes[i] = true
		n := g.GetNode()[i]
		stack = append(stack, n.GetInput()...)
		for _, a := range n.GetAttribute() {
			for _, sub := range append([]*onnxpb.GraphProto{a.GetG()}, a.GetGraphs()...) {
				stack = append(stack, outerReads(sub)...)
			}
		}
	}
	for _, o := range outputs {
		if _, ok := producer[o]; !ok && !isGraphValue(g, o) {
			return need, fmt.Errorf("prune: %q is computed by no node of the graph", o)
		}
	}
	return need, nil
}

// outerReads are the values a subgraph reads without computing them itself.
func outerReads(g *onnxpb.GraphProto) []string {
	if g == nil {
		return nil
	}
	own := map[string]bool{}
	for _, in := range g.GetInput() {
		own[in.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		own[t.GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			own[o] = true
		}
	}
	var out []string
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			if !own[in] {
				out = append(out, in)
			}
		}
		for _, a := range n.GetAttribute() {
			for _, sub := range append([]*onnxpb.GraphProto{a.GetG()}, a.GetGraphs()...) {
				for _, v := range outerReads(sub) {
					if !own[v] {
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}

func isGraphValue(g *onnxpb.GraphProto, name string) bool {
	for _, in := range g.GetInput() {
		if in.GetName() == name {
			return true
		}
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == name {
			return true
		}
	}
	return false
}

// Prune returns model cut down to what computes outputs, which become its only outputs: the
// nodes upstream of them, the initializers and inputs those read, nothing downstream and no
// unused weight. structure is the model decoded (ParseStructure is enough) with the same nodes
// in the same order. Everything else (opsets, IR version, functions, metadata, external-data
// references of the kept weights) is kept as it is; inline weights are copied from model's
// bytes, so a pruned model with inline weights holds only the ones it reads.
func Prune(model []byte, structure *onnxpb.ModelProto, outputs []string) ([]byte, error) {
	if structure.GetGraph() == nil {
		return nil, errors.New("prune: the model has no graph")
	}
	need, err := Need(structure, outputs)
	if err != nil {
		return nil, err
	}
	node := 0
	pruned, err := rewriteGraphs(model, func(field protowire.Number, v []byte, out []byte) ([]byte, error) {
		switch field {
		case graphNode:
			keep := need.Nodes[node]
			node++
			if !keep {
				return out, nil
			}
		case graphInitializer:
			if !need.Values[stringField(v, tensorName)] {
				return out, nil
			}
		case graphSparseInit:
			// A SparseTensorProto names itself in its values tensor (field 1).
			values, _ := firstBytes(v, 1)
			if !need.Values[stringField(values, tensorName)] {
				return out, nil
			}
		case graphInput, graphValueInfo:
			if !need.Values[stringField(v, valueInfoName)] {
				return out, nil
			}
		case graphOutput:
			return out, nil
		}
		return appendBytesField(out, field, v), nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if node != len(structure.GetGraph().GetNode()) {
		return nil, fmt.Errorf("prune: the model has %d nodes, its structure %d: not the same model", node, len(structure.GetGraph().GetNode()))
	}
	var outs onnxpb.GraphProto
	declared := map[string]*onnxpb.ValueInfoProto{}
	for _, o := range structure.GetGraph().GetOutput() {
		declared[o.GetName()] = o
	}
	for _, o := range outputs {
		vi := &onnxpb.ValueInfoProto{Name: o}
		if d, ok := declared[o]; ok {
			vi = d
		}
		outs.Output = append(outs.Output, vi)
	}
	suffix, err := marshalGraph(&outs)
	if err != nil {
		return nil, err
	}
	return append(pruned, suffix...), nil
}

// marshalGraph encodes g as a ModelProto's graph field, to be appended to a model's bytes.
func marshalGraph(g *onnxpb.GraphProto) ([]byte, error) {
	b, err := Marshal(&onnxpb.ModelProto{Graph: g})
	if err != nil {
		return nil, err
	}
	return b, nil
}

func firstBytes(msg []byte, field protowire.Number) ([]byte, bool) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return nil, false
		}
		if num == field && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(msg[n:])
			return v, true
		}
		msg = msg[n+m:]
	}
	return nil, false
}
