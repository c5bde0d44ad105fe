package aas

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
)

func randomJob(r *rand.Rand, tq, tk, c int) Job {
	f := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(r.NormFloat64())
		}
		return out
	}
	return Job{Q: f(tq * c), K: f(tk * c), V: f(tk * c), Tq: tq, Tk: tk}
}

// BenchmarkAttention compares Go and ONNX Runtime on AAS's four attention calls at the
// built-in model's and SD 1.5's layer shapes (512 px: 4096/1024/256/64 tokens).
func BenchmarkAttention(b *testing.B) {
	rt := enginetest.Runtime(b)
	defer rt.Close()
	ra := NewRuntimeAttention(rt)
	ra.MinWork = 0
	defer ra.Close()
	cases := []struct {
		tokens, heads, headDim int
	}{
		{64, 4, 6}, {256, 4, 6}, {1024, 4, 6}, // built-in
		{64, 8, 160}, {256, 8, 160}, {1024, 8, 80}, {4096, 8, 40}, // SD 1.5 at 512 px
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		s := Shape{Heads: c.heads, HeadDim: c.headDim, Scale: 0.125}
		ch := c.heads * c.headDim
		jobs := []Job{randomJob(r, c.tokens, c.tokens, ch), randomJob(r, c.tokens, c.tokens, ch), randomJob(r, c.tokens, c.tokens, ch), randomJob(r, c.tokens, c.tokens, ch)}
		flops := float64(4 * 4 * c.tokens * c.tokens * ch) // 4 jobs × (QKᵀ + PV) × 2 flops
		for _, impl := range []struct {
			name string
			a    Attention
		}{{"go", GoAttention{}}, {"ort", ra}} {
			if impl.name == "go" && c.tokens*c.tokens*ch > 1024*1024*320 {
				continue // minutes in Go
			}
			b.Run(fmt.Sprintf("%s/T%d_C%d", impl.name, c.tokens, ch), func(b *testing.B) {
				for b.Loop() {
					if _, err := impl.a.Attend(context.Background(), s, jobs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkMatMul measures the machine's fp32 matrix multiply rate through ONNX Runtime, the
// reference BenchmarkAttention's rates are compared with (scripts/bench.sh).
func BenchmarkMatMul(b *testing.B) {
	rt := enginetest.Runtime(b)
	defer rt.Close()
	const n = 1024
	g := onnx.NewBuilder("matmul")
	x := g.Input("x", onnx.Float, n, n)
	y := g.Node("MatMul", "/matmul", []string{x, x})
	g.Output(y, onnx.Float, n, n)
	data, err := onnx.Marshal(g.Model())
	if err != nil {
		b.Fatal(err)
	}
	sess, err := rt.Load(data, engine.SessionOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	r := rand.New(rand.NewPCG(1, 1))
	in := randomJob(r, n, 1, n).Q
	for b.Loop() {
		if _, err := sess.Run(context.Background(), engine.F32("x", []int64{n, n}, in)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
