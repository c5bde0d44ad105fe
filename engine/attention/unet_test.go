package attention_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
)

// TestSD15Structure finds the 32 attention layers of a full-size SD 1.5 U-Net whose weights
// are declared external and do not exist: finding must never need them.
func TestSD15Structure(t *testing.T) {
	// A U-Net exported through a wrapper module gets the plain export's names, whatever the
	// wrapper's attribute name.
	for _, prefix := range []string{"", "/unet", "/denoiser", "/u", "/pipe/model/diffusion_model"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			o := testgraphs.SD15()
			o.Prefix = prefix
			m, truth := testgraphs.SDUNet(o)
			start := time.Now()
			layers, err := attention.Find(m)
			t.Logf("Find on %d nodes: %v (timing for the log; BenchmarkFindSD15 measures it)", len(m.GetGraph().GetNode()), time.Since(start))
			if err != nil {
				t.Fatal(err)
			}
			checkLayers(t, layers, truth)
			var self, cross int
			grids := map[string]int{}
			for i, l := range layers {
				if l.Kind == attention.Self {
					self++
				} else {
					cross++
				}
				gh, gw, prefix := attention.Grid(truth.Layers[i].Tokens, 64, 64)
				if prefix != 0 || gh != gw {
					t.Errorf("%s: grid %dx%d+%d", l.Name, gh, gw, prefix)
				}
				grids[fmt.Sprint(gh)]++
				if l.Group == "" {
					t.Errorf("%s: no group", l.Name)
				}
			}
			if self != 16 || cross != 16 {
				t.Errorf("%d self and %d cross layers, want 16 and 16", self, cross)
			}
			// Down0-2: 2 blocks × 2 layers at 64, 32, 16; mid 2 at 8; up 3 × 2 at 16, 32, 64.
			want := map[string]int{"64": 10, "32": 10, "16": 10, "8": 2}
			if fmt.Sprint(grids) != fmt.Sprint(want) {
				t.Errorf("token grids %v, want %v", grids, want)
			}
			shorts := map[string]string{}
			for _, l := range layers {
				if l.Short != "" {
					shorts[l.Short] = l.Name
				}
			}
			if len(shorts) != 14 || shorts["Up0"] != "up_blocks.1.attentions.2.transformer_blocks.0.attn1" || shorts["Mid.x"] != "mid_block.attentions.0.transformer_blocks.0.attn2" {
				t.Errorf("short names: %v", shorts)
			}
			for _, l := range layers {
				if l.Kind == attention.Cross && (l.ImageKV || l.KVSource != "encoder_hidden_states") {
					t.Errorf("%s: cross-attention on text must have ImageKV false and KV source encoder_hidden_states, got %v %q", l.Name, l.ImageKV, l.KVSource)
				}
			}
			for _, init := range m.GetGraph().GetInitializer() {
				if len(init.GetRawData()) > 64 {
					t.Fatalf("initializer %s carries data; the structure graph must have none", init.GetName())
				}
			}
			data, err := onnx.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, names, err := attention.Instrument(data, m, layers); err != nil || len(names) != 32*4 {
				t.Fatalf("Instrument: %d outputs, %v", len(names), err)
			}
		})
	}
}

func BenchmarkFindSD15(b *testing.B) {
	m, _ := testgraphs.SDUNet(testgraphs.SD15())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := attention.Find(m); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTinyUNetRuns checks the runnable miniature end to end: every layer's Q, K, V against
// the projections, and the attention recomputed from them against the layer's own output.
func TestTinyUNetRuns(t *testing.T) {
	rt := openRuntime(t)
	m, truth := testgraphs.SDUNet(testgraphs.TinyUNet())
	runAndCheck(t, rt, m, truth, 1e-5, false)
}

// TestUNetLayoutsRun finds, taps and runs each layout: every layer's Q, K, V against the
// projections, the attention recomputed from them against the layer's own output, and every
// tapped shape as shape inference predicts it.
func TestUNetLayoutsRun(t *testing.T) {
	rt := openRuntime(t)
	for name, o := range testgraphs.Layouts() {
		t.Run(name, func(t *testing.T) {
			m, truth := testgraphs.SDUNet(o)
			layers, err := attention.Find(m)
			if err != nil {
				t.Fatal(err)
			}
			checkLayers(t, layers, truth)
			runAndCheck(t, rt, m, truth, 1e-5, false)
		})
	}
}
