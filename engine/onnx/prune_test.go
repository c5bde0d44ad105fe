package onnx_test

import (
	"testing"

	"github.com/diffsim/diffsim/engine/onnx"
)

// TestParseStructureLeavesWeightsOut: the structure keeps every node, input, output and small
// constant, and no weight's data.
func TestParseStructureLeavesWeightsOut(t *testing.T) {
	b := onnx.NewBuilder("g")
	x := b.Input("x", onnx.Float, 1, 512)
	w := b.Floats("w", []int64{512, 512}, make([]float32, 512*512))
	shape := b.Ints("shape", []int64{2}, []int64{1, -1})
	y := b.Node("Reshape", "r", []string{b.Node("MatMul", "m", []string{x, w}), shape})
	b.Output(y, onnx.Float, 1, 512)
	data, err := onnx.Marshal(b.Model())
	if err != nil {
		t.Fatal(err)
	}
	s, err := onnx.ParseStructure(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.GetGraph().GetNode()) != 2 || len(s.GetGraph().GetInitializer()) != 2 {
		t.Fatalf("structure: %d nodes, %d initializers", len(s.GetGraph().GetNode()), len(s.GetGraph().GetInitializer()))
	}
	for _, init := range s.GetGraph().GetInitializer() {
		switch init.GetName() {
		case "w":
			if len(init.GetRawData()) != 0 || len(init.GetDims()) != 2 {
				t.Errorf("weight w: %d bytes of data, dims %v", len(init.GetRawData()), init.GetDims())
			}
		case "shape":
			if v, err := onnx.Ints(init); err != nil || len(v) != 2 {
				t.Errorf("small constant lost: %v %v", v, err)
			}
		}
	}
	if _, err := onnx.ParseStructure(append(data, 0xff)); err == nil {
		t.Error("damaged bytes parsed")
	}
}
