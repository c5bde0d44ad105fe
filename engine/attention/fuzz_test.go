package attention_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/infer"
)

// FuzzFind feeds arbitrary bytes to Parse, shape inference and Find (and Instrument when layers are found): no
// panic, whatever the input.
func FuzzFind(f *testing.F) {
	// Small seeds: the fuzzer's minimiser is slow on large inputs.
	small := testgraphs.Options{Batch: 1, Tokens: 2, Channels: 4, Heads: 2, CtxTokens: 2, CtxChannels: 2, Seed: 1}
	for _, v := range testgraphs.Variants() {
		m, _ := testgraphs.Attention(v, small)
		data, err := onnx.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte("\x08\x08:\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnx.Parse(data)
		if err != nil {
			return
		}
		infer.Shapes(m, nil)
		layers, _ := attention.Find(m)
		if len(layers) > 0 {
			if _, _, err := attention.Instrument(data, m, layers); err != nil {
				t.Fatalf("Instrument after Find: %v", err)
			}
		}
	})
}

// TestFindMutated runs the fuzz property on seeded random byte mutations of the variant
// graphs, so plain `go test` exercises malformed graphs too.
func TestFindMutated(t *testing.T) {
	var seeds [][]byte
	for _, v := range testgraphs.Variants() {
		m, _ := testgraphs.Attention(v, testgraphs.DefaultOptions())
		d, err := onnx.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, d)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	parsed := 0
	for range 3000 {
		d := bytes.Clone(seeds[rng.IntN(len(seeds))])
		for range 1 + rng.IntN(4) {
			d[rng.IntN(len(d))] = byte(rng.IntN(256))
		}
		m, err := onnx.Parse(d)
		if err != nil {
			continue
		}
		parsed++
		infer.Shapes(m, map[string][]int64{"hidden_states": {2, 12, 16}})
		layers, _ := attention.Find(m)
		if len(layers) > 0 {
			if _, _, err := attention.Instrument(d, m, layers); err != nil {
				t.Fatalf("Instrument after Find: %v", err)
			}
		}
	}
	t.Logf("%d mutated graphs parsed and searched", parsed)
}

// TestFindCycle gives the finder a malformed graph whose score path loops back on itself.
func TestFindCycle(t *testing.T) {
	b := onnx.NewBuilder("cycle")
	x := b.Input("x", onnx.Float, 1, 4, 8)
	s := b.Node("MatMul", "/a/MatMul", []string{x, "/a/Add_output_0"})
	b.Node("Add", "/a/Add", []string{s, "/a/Add_output_0"})
	p := b.Node("Softmax", "/a/Softmax", []string{"/a/Add_output_0"})
	b.Output(b.Node("MatMul", "/a/MatMul_1", []string{p, x}), 0)
	b.Node("Mul", "/a/Mul", []string{"/a/Mul_output_0", "/a/Mul_output_0"})
	_, err := attention.Find(b.Model())
	if err == nil {
		t.Fatal("Find accepted a cyclic graph")
	}
}
