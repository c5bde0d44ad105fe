//go:build cgo

package engine

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

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

// benchmarkRun alternates an engine run and a direct onnxruntime_go run of the same graph in
// every iteration, so drift in the machine's load hits both alike, and reports each one's
// mean time and the engine's overhead.
func benchmarkRun(b *testing.B, m *onnxpb.ModelProto, shape []int64, x []float32) {
	data, err := onnx.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	rt := openRuntime(b)
	// A cancellable context, as the program's always are.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sess, err := rt.Load(data, SessionOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	in := F32("x", shape, x)

	opts, err := rt.sessionOptions(SessionOptions{})
	if err != nil {
		b.Fatal(err)
	}
	direct, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{"x"}, []string{m.GetGraph().GetOutput()[0].GetName()}, opts)
	opts.Destroy()
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Destroy()
	runDirect := func() {
		t, err := ort.NewTensor(ort.NewShape(shape...), x)
		if err != nil {
			b.Fatal(err)
		}
		outs := []ort.Value{nil}
		if err := direct.Run([]ort.Value{t}, outs); err != nil {
			b.Fatal(err)
		}
		_ = append([]float32(nil), outs[0].(*ort.Tensor[float32]).GetData()...)
		outs[0].Destroy()
		t.Destroy()
	}
	var engineTime, directTime time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := sess.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		runDirect()
		engineTime += mid.Sub(start)
		directTime += time.Since(mid)
	}
	n := float64(b.N)
	b.ReportMetric(float64(engineTime.Nanoseconds())/n, "engine-ns/run")
	b.ReportMetric(float64(directTime.Nanoseconds())/n, "direct-ns/run")
	b.ReportMetric(100*float64(engineTime-directTime)/float64(directTime), "overhead-%")
}
