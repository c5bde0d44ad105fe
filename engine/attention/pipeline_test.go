package attention_test

import (
	"testing"

	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
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

// TestVAEEncoder: the encoder's mid-block attention is found like any other (the diffusion
// family's tests check how its latent mean is tapped).
func TestVAEEncoder(t *testing.T) {
	full := testgraphs.TinyVAE()
	full.Full, full.Height, full.Width, full.Batch = true, 32, 32, 1
	for name, o := range map[string]testgraphs.VAEOptions{"collapsed": testgraphs.TinyVAE(), "full": full} {
		t.Run(name, func(t *testing.T) {
			m, truth := testgraphs.VAEEncoder(o)
			layers, err := attention.Find(m)
			if err != nil {
				t.Fatal(err)
			}
			checkLayers(t, layers, truth.Truth)
			runAndCheck(t, openRuntime(t), m, truth.Truth, 1e-5, false)
		})
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
