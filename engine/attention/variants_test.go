package attention_test

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/infer"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

func TestFindVariants(t *testing.T) {
	for _, v := range testgraphs.Variants() {
		t.Run(string(v), func(t *testing.T) {
			m, truth := testgraphs.Attention(v, testgraphs.DefaultOptions())
			layers, err := attention.Find(m)
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			checkLayers(t, layers, truth)
		})
	}
}

func checkLayers(t *testing.T, layers []attention.Layer, truth testgraphs.Truth) {
	t.Helper()
	if len(layers) != len(truth.Layers) {
		t.Fatalf("found %d layers, want %d:\n%s", len(layers), len(truth.Layers), attention.Describe(layers))
	}
	for i, l := range layers {
		want := truth.Layers[i]
		if l.Name != want.Name || string(l.Kind) != want.Kind || l.Heads != want.Heads || l.HeadDim != want.HeadDim {
			t.Errorf("layer %d = %s %s %d×%d, want %s %s %d×%d", i, l.Name, l.Kind, l.Heads, l.HeadDim, want.Name, want.Kind, want.Heads, want.HeadDim)
		}
		if wantKV := cmp.Or(want.KVHeads, want.Heads); l.KVHeads != wantKV {
			t.Errorf("layer %s: %d key/value heads, want %d", l.Name, l.KVHeads, wantKV)
		}
		if math.Abs(l.Scale-want.Scale) > 1e-6*want.Scale {
			t.Errorf("layer %s: scale %.8g, want %.8g", l.Name, l.Scale, want.Scale)
		}
		if l.Short != want.Short {
			t.Errorf("layer %s: short name %q, want %q", l.Name, l.Short, want.Short)
		}
		if l.Q == "" || l.K == "" || l.V == "" || l.Out == "" || l.Layout != attention.LayoutBSC {
			t.Errorf("layer %s: taps Q=%q K=%q V=%q Out=%q layout %q", l.Name, l.Q, l.K, l.V, l.Out, l.Layout)
		}
		wantImage := want.Kind == "self"
		if l.ImageKV != wantImage {
			t.Errorf("layer %s: ImageKV %v, want %v (KV inputs %v)", l.Name, l.ImageKV, wantImage, l.KVInputs)
		}
	}
}

// openRuntime opens the ONNX Runtime (see enginetest for when it skips).
func openRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	rt, err := engine.Open(engine.Options{Device: "cpu", Threads: 2})
	enginetest.Check(t, err)
	t.Cleanup(func() { rt.Close() })
	return rt
}

// TestInstrumentVariants runs every variant's instrumented graph and checks the exposed Q, K, V
// against the projections computed in Go, and softmax(Q·Kᵀ·scale)·V against the layer's own
// attention output.
func TestInstrumentVariants(t *testing.T) {
	rt := openRuntime(t)
	o := testgraphs.DefaultOptions()
	for _, v := range testgraphs.Variants() {
		t.Run(string(v), func(t *testing.T) {
			m, truth := testgraphs.Attention(v, o)
			tol := 1e-5
			if v == testgraphs.Float16 {
				tol = 5e-3
			}
			// ONNX Runtime's CPU provider has no packed MultiHeadAttention: the graph is cut to
			// what the taps need, so the slicing is checked against the Go projections, and the
			// attention output is left to a CUDA run.
			packed := v == testgraphs.MultiHeadPackedQKV || v == testgraphs.MultiHeadPackedKV
			runAndCheck(t, rt, m, truth, tol, packed)
		})
	}
}

func runAndCheck(t *testing.T, rt *engine.Runtime, m *onnxpb.ModelProto, truth testgraphs.Truth, tol float64, tapsOnly bool) {
	t.Helper()
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	inst, names, err := attention.Instrument(data, m, layers)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	// The test also reads what the projections read and the layers' own outputs.
	extra := map[string]bool{}
	for _, n := range names {
		extra[n] = true
	}
	var more []string
	isInput := map[string]bool{}
	for _, in := range truth.Inputs {
		isInput[in.Name] = true
	}
	for _, lt := range truth.Layers {
		for _, n := range []string{lt.QIn, lt.KIn, lt.Out} {
			if truth.Float16 && n != lt.Out {
				continue // float16 tensors cannot be read back; the projections are not checked
			}
			if n != "" && !extra[n] && !isInput[n] && !(truth.Float16 && n == lt.Out) {
				extra[n] = true
				more = append(more, n)
			}
		}
	}
	inst = onnx.AppendOutputs(inst, more)
	outputs := append(append([]string(nil), names...), more...)
	if tapsOnly {
		var keep []string
		for _, n := range outputs {
			if !isOutOf(layers, n) {
				keep = append(keep, n)
			}
		}
		outputs = keep
		inst = pruneTo(t, inst, outputs)
	}
	s, err := rt.Load(inst, engine.SessionOptions{Outputs: outputs})
	if err != nil {
		t.Fatalf("load instrumented graph: %v", err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	var feeds []engine.Tensor
	values := map[string]engine.Tensor{}
	for _, in := range truth.Inputs {
		n := 1
		for _, d := range in.Shape {
			n *= int(d)
		}
		var tn engine.Tensor
		if in.Elem == onnx.Int64 {
			ids := make([]int64, n)
			for i := range ids {
				ids[i] = rng.Int64N(49408)
			}
			tn = engine.I64(in.Name, in.Shape, ids)
		} else {
			vals := make([]float32, n)
			if in.Name != "attention_mask" {
				for i := range vals {
					vals[i] = float32(rng.NormFloat64())
				}
			}
			tn = engine.F32(in.Name, in.Shape, vals)
		}
		feeds = append(feeds, tn)
		values[in.Name] = tn
	}
	outs, err := s.Run(context.Background(), feeds...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, o := range outs {
		values[o.Name] = o
	}
	instModel, err := onnx.Parse(inst)
	if err != nil {
		t.Fatal(err)
	}
	checkInferred(t, instModel, truth, outs)
	for i, l := range layers {
		lt := truth.Layers[i]
		q, k, v := values[l.Q], values[l.K], values[l.V]
		for _, x := range []struct {
			name   string
			got    engine.Tensor
			in     string
			w, b   []float32
			inDim  int
			tokens int
		}{{"Q", q, lt.QIn, lt.Wq, lt.Bq, lt.InQ, 0}, {"K", k, lt.KIn, lt.Wk, lt.Bk, lt.InKV, 0}, {"V", v, lt.VIn, lt.Wv, lt.Bv, lt.InKV, 0}} {
			width := l.Channels()
			if x.name != "Q" {
				width = l.KVHeads * l.HeadDim // narrower under grouped-query attention
			}
			if x.got.Type != engine.Float32 || len(x.got.Shape) != 3 || int(x.got.Shape[2]) != width {
				t.Fatalf("%s %s: got %v %v, want float32 [B, S, %d]", l.Name, x.name, x.got.Type, x.got.Shape, width)
			}
			if x.w == nil || truth.Float16 {
				continue
			}
			in := values[x.in]
			want := project(in.Float32, x.w, x.b, x.inDim, width)
			if e := relErr(x.got.Float32, want); e > tol {
				t.Errorf("%s %s: relative error %.3g against x·W+b", l.Name, x.name, e)
			}
		}
		if tapsOnly {
			continue
		}
		ref := attend(q, k, v, l.Heads, l.HeadDim, l.Scale, lt.Causal)
		own := values[lt.Out]
		if truth.Float16 || own.Float32 == nil {
			own = values[l.Out]
		}
		if own.Float32 == nil {
			t.Fatalf("%s: no attention output to compare (Out %q, truth %q)", l.Name, l.Out, lt.Out)
		}
		if e := relErr(own.Float32, ref); e > tol {
			t.Errorf("%s: softmax(QKᵀ·%.4g)V differs from the layer's output: relative error %.3g", l.Name, l.Scale, e)
		}
		if l.Out != "" {
			if e := relErr(values[l.Out].Float32, ref); e > tol {
				t.Errorf("%s: exposed Out %q differs from the recomputed attention: relative error %.3g", l.Name, l.Out, e)
			}
		}
	}
}

// checkInferred checks that shape inference at the inputs' sizes tells every tapped tensor's
// shape (and any other output's it claims to know) as the run measured it: what pre-sizes the
// taps' buffers and gives inspect its token grids.
func checkInferred(t *testing.T, m *onnxpb.ModelProto, truth testgraphs.Truth, outs []engine.Tensor) {
	t.Helper()
	in := map[string][]int64{}
	for _, x := range truth.Inputs {
		in[x.Name] = x.Shape
	}
	shapes := infer.Shapes(m, in)
	for _, o := range outs {
		got, ok := shapes[o.Name]
		if !ok || slices.Contains(got, infer.Unknown) {
			t.Errorf("%s: inference could not tell its shape (%v); the run made %v", o.Name, got, o.Shape)
			continue
		}
		if !slices.Equal(got, o.Shape) {
			t.Errorf("%s: inferred shape %v, the run made %v", o.Name, got, o.Shape)
		}
	}
}

// project computes x·W + b for rows of width in.
func project(x, w, b []float32, in, out int) []float32 {
	rows := len(x) / in
	y := make([]float32, rows*out)
	for r := range rows {
		for c := range out {
			var s float64
			for i := range in {
				s += float64(x[r*in+i]) * float64(w[i*out+c])
			}
			if b != nil {
				s += float64(b[c])
			}
			y[r*out+c] = float32(s)
		}
	}
	return y
}

// attend is the float64 reference: per batch and head, softmax(Q·Kᵀ·scale)·V on [B, S, H·D].
func attend(q, k, v engine.Tensor, heads, dim int, scale float64, causal bool) []float32 {
	b, s, l := int(q.Shape[0]), int(q.Shape[1]), int(k.Shape[1])
	kvHeads := int(k.Shape[2]) / dim
	c := heads * dim
	out := make([]float32, b*s*c)
	row := make([]float64, l)
	for bi := range b {
		for h := range heads {
			kh := h * kvHeads / heads
			for i := range s {
				mx := math.Inf(-1)
				seen := l // keys query i attends to
				if causal {
					seen = i + 1
				}
				for j := range seen {
					var dot float64
					for d := range dim {
						dot += float64(q.Float32[(bi*s+i)*c+h*dim+d]) * float64(k.Float32[(bi*l+j)*kvHeads*dim+kh*dim+d])
					}
					row[j] = dot * scale
					mx = math.Max(mx, row[j])
				}
				var sum float64
				for j := range seen {
					row[j] = math.Exp(row[j] - mx)
					sum += row[j]
				}
				for d := range dim {
					var acc float64
					for j := range seen {
						acc += row[j] / sum * float64(v.Float32[(bi*l+j)*kvHeads*dim+kh*dim+d])
					}
					out[(bi*s+i)*c+h*dim+d] = float32(acc)
				}
			}
		}
	}
	return out
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
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func isOutOf(layers []attention.Layer, name string) bool {
	for _, l := range layers {
		if l.Out == name {
			return true
		}
	}
	return false
}

// pruneTo keeps only the nodes the named outputs need, and makes them the graph's outputs.
func pruneTo(t *testing.T, data []byte, outputs []string) []byte {
	t.Helper()
	m, err := onnx.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	g := m.GetGraph()
	need := map[string]bool{}
	g.Output = nil
	for _, o := range outputs {
		need[o] = true
		g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: o})
	}
	var kept []*onnxpb.NodeProto
	for i := len(g.Node) - 1; i >= 0; i-- {
		n := g.Node[i]
		use := false
		for _, o := range n.GetOutput() {
			use = use || need[o]
		}
		if !use {
			continue
		}
		kept = append([]*onnxpb.NodeProto{n}, kept...)
		for _, in := range n.GetInput() {
			need[in] = true
		}
	}
	g.Node = kept
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.Input {
		if need[in.GetName()] {
			inputs = append(inputs, in)
		}
	}
	g.Input = inputs
	out, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
