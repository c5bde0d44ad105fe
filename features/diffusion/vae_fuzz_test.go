package diffusion

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
)

func vaeSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, edit := range []func(*testgraphs.VAEOptions){nil, func(o *testgraphs.VAEOptions) { o.ScaledMean = true }, func(o *testgraphs.VAEOptions) { o.Parameters = true }} {
		o := testgraphs.TinyVAE()
		if edit != nil {
			edit(&o)
		}
		m, _ := testgraphs.VAEEncoder(o)
		d, err := onnx.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, d)
	}
	return seeds
}

// FuzzTapVAEMean: any graph that parses is answered with a mean, or an error, never a panic;
// a mean it names is a tensor of the graph.
func FuzzTapVAEMean(f *testing.F) {
	for _, s := range vaeSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkTap(t, data) })
}

// TestTapVAEMeanMutated runs the fuzz property on seeded byte mutations, so plain `go test`
// covers malformed encoders too.
func TestTapVAEMeanMutated(t *testing.T) {
	seeds := vaeSeeds(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		d := bytes.Clone(seeds[rng.IntN(len(seeds))])
		for range 1 + rng.IntN(4) {
			d[rng.IntN(len(d))] = byte(rng.IntN(256))
		}
		checkTap(t, d)
	}
}

func checkTap(t *testing.T, data []byte) {
	m, err := onnx.Parse(data)
	if err != nil {
		return
	}
	mean, err := TapVAEMean(m)
	if err != nil || mean.Tensor == "" {
		return
	}
	for _, n := range m.GetGraph().GetNode() {
		for _, o := range n.GetOutput() {
			if o == mean.Tensor {
				return
			}
		}
	}
	for _, in := range m.GetGraph().GetInput() {
		if in.GetName() == mean.Tensor {
			return
		}
	}
	for _, in := range m.GetGraph().GetInitializer() {
		if in.GetName() == mean.Tensor {
			return
		}
	}
	t.Fatalf("TapVAEMean named %q, which no node, input or initializer of the graph produces", mean.Tensor)
}
