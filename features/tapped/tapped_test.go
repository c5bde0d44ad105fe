package tapped_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/tapped"
)

func TestRepeatKV(t *testing.T) {
	for _, tc := range []struct {
		name                string
		kvHeads, heads, dim int
		in, want            []float32
	}{
		{"one group of three", 1, 3, 2, []float32{1, 2, 3, 4}, []float32{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}},
		{"two groups of two", 2, 4, 1, []float32{1, 2, 3, 4}, []float32{1, 1, 2, 2, 3, 3, 4, 4}},
		{"no grouping", 2, 2, 1, []float32{1, 2}, []float32{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tapped.RepeatKV(tc.in, tc.kvHeads, tc.heads, tc.dim); !slices.Equal(got, tc.want) {
				t.Errorf("RepeatKV = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGroupedQueryAttention runs a generated grouped-query graph (8 query heads over 4 key/value
// heads) through the tapped model: its features have one key/value head per query head, and
// plain multi-head attention in Go on them reproduces the graph's own attention output, so
// AAS on a GQA layer is the attention the model computes.
func TestGroupedQueryAttention(t *testing.T) {
	o := testgraphs.DefaultOptions()
	o.Heads = 4
	m, truth := testgraphs.Attention(testgraphs.GroupedQuery, o)
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	found, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	var outs []string // each layer's attention output, as the instrumented graph exposes it
	for _, l := range found {
		outs = append(outs, l.Out)
	}
	rt := enginetest.Runtime(t)
	tm, err := tapped.Load(rt, "gqa", data, "", tapped.Options{Extra: outs})
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	for _, l := range tm.Describe(0, 0) {
		if !l.Grouped() || l.KVHeads != 2 || l.Heads != 4 {
			t.Fatalf("layer %s: %d heads over %d key/value heads, want 4 over 2", l.Name, l.Heads, l.KVHeads)
		}
	}
	in := truth.Inputs[0]
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, o.Batch*o.Tokens*o.Channels)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	res, err := tm.Run(context.Background(), 0, 0, engine.F32(in.Name, in.Shape, x))
	if err != nil {
		t.Fatal(err)
	}
	for li, lt := range truth.Layers {
		own := res.Extra[outs[li]]
		per := len(own.Float32) / o.Batch
		for b := range o.Batch {
			f := res.Features[b][li]
			if len(f.K) != f.Tokens*f.Channels() || len(f.V) != len(f.K) {
				t.Fatalf("%s: K has %d values, want %d tokens × %d channels", lt.Name, len(f.K), f.Tokens, f.Channels())
			}
			got, err := aas.GoAttention{}.Attend(context.Background(), aas.Shape{Heads: f.Heads, HeadDim: f.HeadDim, Scale: f.Scale},
				[]aas.Job{{Q: f.Q, K: f.K, V: f.V, Tq: f.Tokens, Tk: f.KV()}})
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(got[0], own.Float32[b*per:(b+1)*per]); e > 1e-5 {
				t.Errorf("%s, item %d: Go attention on the repeated K/V differs from the graph's by %.3g", lt.Name, b, e)
			}
			c, err := aas.Compare(context.Background(), aas.GoAttention{}, f, f)
			if err != nil || math.Abs(c.Score()-1) > 1e-5 {
				t.Errorf("%s: AAS(A, A) = %.6f, %v; want 1", lt.Name, c.Score(), err)
			}
		}
	}
}

func relErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range got {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}
