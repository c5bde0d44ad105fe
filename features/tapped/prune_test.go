package tapped_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features/tapped"
)

type graphCase struct {
	name  string
	model *onnxpb.ModelProto
	truth testgraphs.Truth
	full  bool
}

// everyFamily is a graph of each attention variant, the SD pipeline's three graphs, the U-Net
// layouts (wrapped, fixed-size, SDXL …) and the ViTs.
func everyFamily() []graphCase {
	var cases []graphCase
	for _, v := range testgraphs.Variants() {
		if v == testgraphs.Float16 {
			continue // its taps are cast to float32 by the instrumentation, as in every other case
		}
		m, truth := testgraphs.Attention(v, testgraphs.DefaultOptions())
		if v == testgraphs.MultiHeadPackedQKV || v == testgraphs.MultiHeadPackedKV {
			// ONNX Runtime's CPU provider cannot run packed MultiHeadAttention, which the
			// layers' outputs (and so the next layers) need: nothing to compare here.
			continue
		}
		cases = append(cases, graphCase{string(v), m, truth, true})
	}
	m, truth := testgraphs.SDUNet(testgraphs.TinyUNet())
	cases = append(cases, graphCase{"unet", m, truth, true})
	for name, o := range testgraphs.Layouts() {
		m, truth := testgraphs.SDUNet(o)
		cases = append(cases, graphCase{"unet-" + name, m, truth, true})
	}
	vae, vt := testgraphs.VAEEncoder(testgraphs.TinyVAE())
	cases = append(cases, graphCase{"vae", vae, vt.Truth, true})
	text, tt := testgraphs.TextEncoder(testgraphs.TinyText())
	cases = append(cases, graphCase{"text", text, tt, true})
	for _, v := range []testgraphs.Variant{testgraphs.DINOv2Eager, testgraphs.CLIPEager} {
		m, truth := testgraphs.ViT(v, testgraphs.TinyViT())
		cases = append(cases, graphCase{"vit-" + string(v), m, truth, true})
	}
	return cases
}

func feeds(truth testgraphs.Truth) []engine.Tensor {
	rng := rand.New(rand.NewPCG(7, 7))
	var out []engine.Tensor
	for _, in := range truth.Inputs {
		n := 1
		for _, d := range in.Shape {
			n *= int(d)
		}
		if in.Elem == onnx.Int64 {
			ids := make([]int64, n)
			for i := range ids {
				ids[i] = rng.Int64N(49408)
			}
			out = append(out, engine.I64(in.Name, in.Shape, ids))
			continue
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		out = append(out, engine.F32(in.Name, in.Shape, v))
	}
	return out
}

// TestPrunedEqualsFull runs every family's graph pruned to one layer at a time (and to a pair)
// and checks the layer's features bit for bit against the full graph's: pruning removes only
// what the taps do not depend on, so the runtime computes the same values.
func TestPrunedEqualsFull(t *testing.T) {
	rt := enginetest.Runtime(t)
	ctx := context.Background()
	for _, c := range everyFamily() {
		t.Run(c.name, func(t *testing.T) {
			data, err := onnx.Marshal(c.model)
			if err != nil {
				t.Fatal(err)
			}
			tm, err := tapped.Load(rt, c.name, data, "", tapped.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tm.Close()
			in := feeds(c.truth)
			var full tapped.Result
			if c.full {
				if full, err = tm.Run(ctx, 0, 0, in...); err != nil {
					t.Fatal(err)
				}
			}
			// Every layer of the small graphs; the first, a middle one and the last of a U-Net.
			sets := [][]int{}
			for li := range tm.Layers {
				if n := len(tm.Layers); n <= 6 || li == 0 || li == n/2 || li == n-1 {
					sets = append(sets, []int{li})
				}
			}
			if n := len(tm.Layers); n > 1 {
				sets = append(sets, []int{0, n - 1})
			}
			bits := 0
			defer func() {
				if bits > 0 {
					t.Logf("%d features equal to rounding, not bit for bit", bits)
				}
			}()
			for _, set := range sets {
				res, err := tm.RunLayers(ctx, set, 0, 0, in...)
				if err != nil {
					t.Fatalf("layers %v: %v", set, err)
				}
				for li := range tm.Layers {
					got := res.Features[0][li]
					if !slices.Contains(set, li) {
						if got.Q != nil {
							t.Errorf("layers %v: layer %d has features it was not asked for", set, li)
						}
						continue
					}
					if got.Q == nil {
						t.Fatalf("layers %v: no features for layer %d", set, li)
					}
					if !c.full {
						continue
					}
					for b := range full.Features {
						want, got := full.Features[b][li], res.Features[b][li]
						if slices.Equal(got.Q, want.Q) && slices.Equal(got.K, want.K) && slices.Equal(got.V, want.V) {
							continue
						}
						// The runtime may fuse a smaller graph differently (the layer's input
						// then comes through other kernels): equal to rounding.
						bits++
						if e := max(relErr(got.Q, want.Q), relErr(got.K, want.K), relErr(got.V, want.V)); e > 1e-6 {
							t.Errorf("layers %v: %s item %d differs from the full graph's by %.3g", set, tm.Layers[li].Name, b, e)
						}
					}
				}
			}
		})
	}
}

// TestPrunedGraphIsSmaller: a graph pruned to the first layer holds fewer nodes and weights
// than the full one, and none of what follows the layer.
func TestPrunedGraphIsSmaller(t *testing.T) {
	m, _ := testgraphs.SDUNet(testgraphs.TinyUNet())
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := tapped.Load(nil, "unet", data, "", tapped.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := tm.Layers[0]
	pruned, err := onnx.Prune(data, m, l.Taps())
	if err != nil {
		t.Fatal(err)
	}
	p, err := onnx.Parse(pruned)
	if err != nil {
		t.Fatal(err)
	}
	g, pg := m.GetGraph(), p.GetGraph()
	if len(pg.GetNode()) >= len(g.GetNode())/4 || len(pg.GetInitializer()) >= len(g.GetInitializer())/4 || len(pruned) >= len(data)/4 {
		t.Errorf("pruned to %s: %d of %d nodes, %d of %d weights, %d of %d bytes", l.Name, len(pg.GetNode()), len(g.GetNode()),
			len(pg.GetInitializer()), len(g.GetInitializer()), len(pruned), len(data))
	}
	for _, n := range pg.GetNode() {
		if n.GetName() == "/conv_out/Conv" || n.GetOpType() == "Resize" {
			t.Errorf("pruned graph keeps %s, downstream of %s", n.GetName(), l.Name)
		}
	}
	var outs []string
	for _, o := range pg.GetOutput() {
		outs = append(outs, o.GetName())
	}
	if !slices.Equal(outs, l.Taps()) {
		t.Errorf("outputs %v, want %v", outs, l.Taps())
	}
}
