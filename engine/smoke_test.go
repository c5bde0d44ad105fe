package engine

import (
	"context"
	"testing"

	"github.com/diffsim/diffsim/engine/onnx"
)

func TestSmokeAdd(t *testing.T) {
	b := onnx.NewBuilder("add")
	x := b.Input("x", onnx.Float, 2, 3)
	y := b.Node("Add", "/add", []string{x, b.Floats("c", []int64{3}, []float32{1, 2, 3})})
	b.Output(y, onnx.Float, 2, 3)
	data, err := onnx.Marshal(b.Model())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	t.Log(rt.Device(), rt.Device().Notice, rt.Version())
	s, err := rt.Load(data, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), F32("x", []int64{2, 3}, []float32{0, 0, 0, 1, 1, 1}))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out[0])
}
