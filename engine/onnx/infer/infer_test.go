package infer_test

import (
	"slices"
	"testing"

	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/infer"
)

// TestSD15Taps infers every tapped tensor of the full-size SD 1.5 structure (weights declared
// external and absent: inference never reads one) at several sizes and batches; the runnable
// graphs are checked against real runs in engine/attention's tests.
func TestSD15Taps(t *testing.T) {
	m, truth := testgraphs.SDUNet(testgraphs.SD15())
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ batch, latent int64 }{{1, 64}, {2, 64}, {2, 32}, {4, 96}} {
		shapes := infer.Shapes(m, map[string][]int64{
			"sample":                {c.batch, 4, c.latent, c.latent},
			"timestep":              {c.batch},
			"encoder_hidden_states": {c.batch, 77, 768},
		})
		for i, l := range layers {
			// truth.Tokens is at 64×64 latents; each level halves the side.
			side := int64(64)
			for side*side > int64(truth.Layers[i].Tokens) {
				side /= 2
			}
			tokens := side * c.latent / 64 * side * c.latent / 64
			kv := tokens
			if l.Kind == attention.Cross {
				kv = 77
			}
			for _, tap := range []struct {
				name string
				want []int64
			}{{l.Q, []int64{c.batch, tokens, int64(l.Channels())}}, {l.K, []int64{c.batch, kv, int64(l.Channels())}}, {l.V, []int64{c.batch, kv, int64(l.Channels())}}} {
				if got := shapes[tap.name]; !slices.Equal(got, tap.want) {
					t.Errorf("batch %d, latent %d: %s %s: inferred %v, want %v", c.batch, c.latent, l.Name, tap.name, got, tap.want)
				}
			}
		}
		if got := shapes["out_sample"]; !slices.Equal(got, []int64{c.batch, 4, c.latent, c.latent}) {
			t.Errorf("out_sample: %v", got)
		}
	}
}

// TestOperators checks the shape rules one operator at a time, against ONNX's definitions.
func TestOperators(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *onnx.Builder) string
		want  []int64
	}{
		{"conv stride 2 pad 1", func(b *onnx.Builder) string {
			x := b.Input("x", onnx.Float, -1, 3, -1, -1)
			w := b.Floats("w", []int64{8, 3, 3, 3}, make([]float32, 8*27))
			return b.Node("Conv", "c", []string{x, w}, onnx.AttrInts("strides", 2, 2), onnx.AttrInts("pads", 1, 1, 1, 1))
		}, []int64{2, 8, 5, 5}},
		{"patchify conv", func(b *onnx.Builder) string {
			x := b.Input("x", onnx.Float, -1, 3, -1, -1)
			w := b.Floats("w", []int64{4, 3, 2, 2}, make([]float32, 48))
			return b.Node("Conv", "c", []string{x, w}, onnx.AttrInts("kernel_shape", 2, 2), onnx.AttrInts("strides", 2, 2))
		}, []int64{2, 4, 4, 4}},
		{"same-upper max pool", func(b *onnx.Builder) string {
			x := b.Input("x", onnx.Float, -1, 3, -1, -1)
			return b.Node("MaxPool", "p", []string{x}, onnx.AttrInts("kernel_shape", 3, 3), onnx.AttrInts("strides", 2, 2), onnx.AttrString("auto_pad", "SAME_UPPER"))
		}, []int64{2, 3, 5, 5}},
		{"resize by scales", func(b *onnx.Builder) string {
			x := b.Input("x", onnx.Float, -1, 3, -1, -1)
			sc := b.Floats("s", []int64{4}, []float32{1, 1, 2, 2})
			return b.Node("Resize", "r", []string{x, "", sc})
		}, []int64{2, 3, 18, 18}},
		{"reshape from shape arithmetic", func(b *onnx.Builder) string {
			x := b.Input("x", onnx.Float, -1, 3, -1, -1)
			sh := b.Node("Shape", "sh", []string{x})
			n := b.Node("Gather", "g", []string{sh, b.Ints("zero", []int64{1}, []int64{0})}, onnx.AttrInt("axis", 0))
			shape := b.Node("Concat", "cat", []string{n, b.Ints("rest", []int64{2}, []int64{-1, 3})}, onnx.AttrInt("axis", 0))
			return b.Node("Reshape", "r", []string{x, shape})
		}, []int64{2, 81, 3}},
		{"slice with negative end", func(b *onnx.Builder) string {
			x := b.Input("x", onnx.Float, -1, 3, -1, -1)
			return b.Node("Slice", "s", []string{x, b.Ints("st", []int64{1}, []int64{1}), b.Ints("en", []int64{1}, []int64{-1}), b.Ints("ax", []int64{1}, []int64{2})})
		}, []int64{2, 3, 7, 9}},
		{"flatten then gemm", func(b *onnx.Builder) string {
			x := b.Input("x", onnx.Float, -1, 3, -1, -1)
			f := b.Node("Flatten", "f", []string{x})
			w := b.Floats("w", []int64{5, 243}, make([]float32, 5*243))
			return b.Node("Gemm", "g", []string{f, w}, onnx.AttrInt("transB", 1))
		}, []int64{2, 5}},
		{"unknown operator", func(b *onnx.Builder) string {
			x := b.Input("x", onnx.Float, -1, 3, -1, -1)
			return b.NodeIn("example.com", "Mystery", "m", []string{x}, 1)[0]
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := onnx.NewBuilder("op")
			b.Opset("", 17)
			out := c.build(b)
			got := infer.Shapes(b.Model(), map[string][]int64{"x": {2, 3, 9, 9}})[out]
			if !slices.Equal(got, c.want) {
				t.Errorf("inferred %v, want %v", got, c.want)
			}
		})
	}
}
