package engine

import (
	"context"
	"math/rand/v2"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// The engine's per-run overhead against calling onnxruntime_go directly on the same graph:
// compare BenchmarkRun/engine with BenchmarkRun/direct (scripts/bench.sh prints the ratio),
// on a self-attention layer and on a graph so small that only the overhead is left.
func BenchmarkRun(b *testing.B) {
	const s, c, h = 256, 64, 4
	m, _ := selfAttention(s, c, h)
	benchmarkRun(b, m, []int64{1, s, c}, randomWeights(rand.New(rand.NewPCG(3, 3)), s*c, 1))
}

func BenchmarkRunTiny(b *testing.B) {
	g := onnx.NewBuilder("add")
	x := g.Input("x", onnx.Float, 1, 8)
	g.Node("Add", "/add", []string{x, x})
	g.Last().Output[0] = "y"
	g.Output("y", onnx.Float, 1, 8)
	benchmarkRun(b, g.Model(), []int64{1, 8}, make([]float32, 8))
}

func benchmarkRun(b *testing.B, m *onnxpb.ModelProto, shape []int64, x []float32) {
	data, err := onnx.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	rt := openRuntime(b)
	// A cancellable context, as the program's always are.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	b.Run("engine", func(b *testing.B) {
		sess, err := rt.Load(data, SessionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		in := F32("x", shape, x)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sess.Run(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		opts, err := rt.sessionOptions(SessionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{"x"}, []string{m.GetGraph().GetOutput()[0].GetName()}, opts)
		opts.Destroy()
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Destroy()
		b.ReportAllocs()
		for b.Loop() {
			in, err := ort.NewTensor(ort.NewShape(shape...), x)
			if err != nil {
				b.Fatal(err)
			}
			outs := []ort.Value{nil}
			if err := sess.Run([]ort.Value{in}, outs); err != nil {
				b.Fatal(err)
			}
			_ = append([]float32(nil), outs[0].(*ort.Tensor[float32]).GetData()...)
			outs[0].Destroy()
			in.Destroy()
		}
	})
}
