package ipadapter

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features/ipadapter/ipfixture"
	"github.com/diffsim/diffsim/features/safetensors"
)

// tinyShape is ipfixture's Resampler at small sizes with IP-Adapter Plus's structure.
var tinyShape = ResamplerShape(ipfixture.TinyShape())

// tensorSet is ipfixture.Weights with test failures instead of errors.
type tensorSet struct{ *ipfixture.Weights }

func newTensorSet(seed uint64, half bool) tensorSet {
	return tensorSet{ipfixture.NewWeights(seed, half)}
}

func (s tensorSet) file(t testing.TB) *safetensors.File {
	t.Helper()
	f, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (s tensorSet) write(t testing.TB, path string) {
	t.Helper()
	if err := s.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

func (s tensorSet) addResampler(r ResamplerShape) { s.AddResampler(ipfixture.Shape(r)) }

// addIPLayers adds the IP weights of the cross-attention layers of a U-Net, keyed by the order
// ipfixture states independently of the code: down, up, mid.
func (s tensorSet) addIPLayers(t testing.TB, layers []attention.Layer, ctx int) map[string]int {
	t.Helper()
	keys, err := s.AddIPLayers(layers, ctx)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func expectedKeys(t testing.TB, layers []attention.Layer) map[string]int {
	t.Helper()
	keys, err := ipfixture.Keys(layers)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func openRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	return enginetest.Runtime(t)
}

func load(t testing.TB, rt *engine.Runtime, m *onnxpb.ModelProto, outputs []string) engine.Runner {
	t.Helper()
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Load(data, engine.SessionOptions{Outputs: outputs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randoms(rng *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * std)
	}
	return v
}

// relErr is ‖got − want‖ / ‖want‖.
func relErr(got, want []float32) float64 {
	var d, w float64
	for i := range want {
		x := float64(got[i]) - float64(want[i])
		d += x * x
		w += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(d / w)
}

// plainUNet is the tiny SD U-Net of testgraphs with its cross-attention layers.
func plainUNet(t testing.TB) (*onnxpb.ModelProto, testgraphs.UNetOptions, []attention.Layer) {
	t.Helper()
	o := testgraphs.TinyUNet()
	m, _ := testgraphs.SDUNet(o)
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	var cross []attention.Layer
	for _, l := range layers {
		if l.Kind == attention.Cross {
			cross = append(cross, l)
		}
	}
	return m, o, cross
}

// tinyEncoder is testgraphs' CLIP vision encoder, and the name of its penultimate hidden state.
func tinyEncoder(width, heads, layers int, decomposedLN bool) (*onnxpb.ModelProto, string) {
	return testgraphs.CLIPVision(testgraphs.CLIPVisionOptions{Width: width, Heads: heads, Layers: layers, DecomposedLN: decomposedLN})
}

func writeModel(t testing.TB, dir, name string, m *onnxpb.ModelProto) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := onnx.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}
