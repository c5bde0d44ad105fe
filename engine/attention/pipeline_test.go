package attention_test

import (
	"context"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
)

func TestTextEncoder(t *testing.T) {
	m, truth := testgraphs.TextEncoder(testgraphs.TinyText())
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	checkLayers(t, layers, truth)
	rt := openRuntime(t)
	runAndCheck(t, rt, m, truth, 1e-5, false)
}

func TestVAEEncoder(t *testing.T) {
	m, truth := testgraphs.VAEEncoder(testgraphs.TinyVAE())
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	checkLayers(t, layers, truth.Truth)
	mean, err := attention.TapVAEMean(m)
	if err != nil {
		t.Fatal(err)
	}
	if mean.Tensor != truth.Mean || !mean.Sampled || mean.Parameters != "" {
		t.Fatalf("TapVAEMean = %+v, want the mean %q of an in-graph sample", mean, truth.Mean)
	}
	rt := openRuntime(t)
	runAndCheck(t, rt, m, truth.Truth, 1e-5, false)

	// The mean is deterministic; the sample is not.
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Load(onnx.AppendOutputs(data, []string{mean.Tensor}), engine.SessionOptions{Outputs: []string{mean.Tensor, "latent_sample"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := truth.Inputs[0]
	x := make([]float32, 2*3*64*64)
	for i := range x {
		x[i] = float32(i%17) / 17
	}
	run := func() []engine.Tensor {
		out, err := s.Run(context.Background(), engine.F32(in.Name, in.Shape, x))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a[0].Float32, b[0].Float32) {
		t.Error("the tapped mean differs between two runs")
	}
	if slices.Equal(a[1].Float32, b[1].Float32) {
		t.Error("latent_sample is identical between two runs; the graph was meant to sample")
	}
	if !slices.Equal(a[0].Shape, []int64{2, 4, 8, 8}) {
		t.Errorf("mean shape %v, want [2 4 8 8]", a[0].Shape)
	}
}

func TestVAEParameters(t *testing.T) {
	o := testgraphs.TinyVAE()
	o.Parameters = true
	m, _ := testgraphs.VAEEncoder(o)
	mean, err := attention.TapVAEMean(m)
	if err != nil {
		t.Fatal(err)
	}
	if mean.Parameters != "latent_parameters" || mean.Sampled || mean.Tensor != "" {
		t.Fatalf("TapVAEMean = %+v, want Parameters latent_parameters", mean)
	}
}

// TestViT: the patch embedding in front of the encoder changes nothing the finder reports,
// and the graph runs from pixels.
func TestViT(t *testing.T) {
	rt := openRuntime(t)
	for _, v := range []testgraphs.Variant{testgraphs.DINOv2Eager, testgraphs.CLIPEager} {
		t.Run(string(v), func(t *testing.T) {
			m, truth := testgraphs.ViT(v, testgraphs.TinyViT())
			layers, err := attention.Find(m)
			if err != nil {
				t.Fatal(err)
			}
			checkLayers(t, layers, truth)
			runAndCheck(t, rt, m, truth, 1e-5, false)
		})
	}
}
