package engine

import (
	"context"
	"math/rand/v2"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/diffsim/diffsim/engine/onnx"
)

// The engine's per-run overhead against calling onnxruntime_go directly on the same graph:
// compare BenchmarkRun/engine with BenchmarkRun/direct (scripts/bench.sh prints the ratio).
func BenchmarkRun(b *testing.B) {
	const s, c, h = 256, 64, 4
	m, _ := selfAttention(s, c, h)
	data, err := onnx.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	x := randomWeights(rand.New(rand.NewPCG(3, 3)), s*c, 1)
	rt := openRuntime(b)
	ctx := context.Background()

	b.Run("engine", func(b *testing.B) {
		sess, err := rt.Load(data, SessionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		in := F32("x", []int64{1, s, c}, x)
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
		sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{"x"}, []string{"y"}, opts)
		opts.Destroy()
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Destroy()
		b.ReportAllocs()
		for b.Loop() {
			in, err := ort.NewTensor(ort.NewShape(1, s, c), x)
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
