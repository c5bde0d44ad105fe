package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/session/bench"
)

// tinyViTFolder writes a transformers.js-layout DINOv2 of two generated attention layers over
// 4×4 patches of a 56 px crop (as features/vision's tests build it): a model without timesteps.
func tinyViTFolder(t *testing.T) string {
	t.Helper()
	const patch, crop, channels = 14, 56, 16
	o := testgraphs.DefaultOptions()
	o.Channels, o.Heads, o.Tokens = channels, 2, 17
	m, _ := testgraphs.Attention(testgraphs.DINOv2Eager, o)
	g := m.GetGraph()
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if in.GetName() != "hidden_states" {
			inputs = append(inputs, in)
		}
	}
	b := onnx.NewBuilder("stem")
	r := rand.New(rand.NewPCG(1, 1))
	weights := func(n int, s float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(r.NormFloat64() * s)
		}
		return out
	}
	px := b.Input("pixel_values", onnx.Float, -1, 3, crop, crop)
	x := b.Node("Conv", "/embeddings/patch_embeddings/projection/Conv", []string{px, b.Floats("patch_w", []int64{channels, 3, patch, patch}, weights(channels*3*patch*patch, 0.05))},
		onnx.AttrInts("strides", patch, patch))
	x = b.Node("Reshape", "/embeddings/Reshape", []string{x, b.Ints("flat", []int64{3}, []int64{0, channels, -1})})
	x = b.Node("Transpose", "/embeddings/Transpose", []string{x}, onnx.AttrInts("perm", 0, 2, 1))
	x = b.Node("Pad", "/embeddings/cls", []string{x, b.Ints("cls_pads", []int64{6}, []int64{0, 1, 0, 0, 0, 0})})
	b.Node("Add", "/embeddings/position", []string{x, b.Floats("pos", []int64{1, 17, channels}, weights(17*channels, 0.5))})
	b.Last().Output[0] = "hidden_states"
	stem := b.Graph()
	g.Node = append(stem.Node, g.Node...)
	g.Initializer = append(g.Initializer, stem.Initializer...)
	g.Input = append(stem.Input, inputs...)

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "onnx"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onnx.WriteFile(filepath.Join(dir, "onnx", "model.onnx"), m); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"config.json":              `{"model_type": "dinov2"}`,
		"preprocessor_config.json": `{"do_resize": true, "size": {"shortest_edge": 64}, "crop_size": {"height": 56, "width": 56}, "do_center_crop": true}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSweepRankBenchWithoutTimesteps: for a model without timesteps, sweep is just the layers,
// and rank and bench record t = 0 as score does.
func TestSweepRankBenchWithoutTimesteps(t *testing.T) {
	model := tinyViTFolder(t)
	code, stdout, stderr := runCmd(t, "sweep", sampleA, sampleB, "--model", model, "--t", "100,400", "--json")
	if code != 0 {
		t.Fatalf("sweep: exit %d: %s", code, stderr)
	}
	var sw sweepJSON
	if err := json.Unmarshal([]byte(stdout), &sw); err != nil {
		t.Fatal(err)
	}
	if len(sw.Timesteps) != 1 || sw.Timesteps[0] != 0 || len(sw.Scores) != len(sw.Layers) || len(sw.Layers) != 2 {
		t.Fatalf("sweep of a model without timesteps: timesteps %v, %d layers, %d scores", sw.Timesteps, len(sw.Layers), len(sw.Scores))
	}
	if !strings.Contains(stderr, "no timesteps") {
		t.Errorf("--t given to a model without timesteps is not mentioned: %q", stderr)
	}
	for _, sc := range sw.Scores {
		code, stdout, _ := runCmd(t, "score", sampleA, sampleB, "--model", model, "--layer", sw.Layers[sc.LayerIndex].Name, "--json")
		var one scoreJSON
		if err := json.Unmarshal([]byte(stdout), &one); code != 0 || err != nil || one.Score != sc.Score || one.T != sc.T || one.Step != sc.Step {
			t.Errorf("layer %d: sweep %+v, score %+v (exit %d, %v)", sc.LayerIndex, sc, one, code, err)
		}
	}
	code, stdout, stderr = runCmd(t, "sweep", sampleA, sampleB, "--model", model, "--quiet")
	if code != 0 || !strings.Contains(stdout, "score") || strings.Contains(stdout, "t=") {
		t.Errorf("table without timesteps (exit %d, %s):\n%s", code, stderr, stdout)
	}

	dir := tripletDataset(t, "grass.png", "brick.png")
	code, stdout, stderr = runCmd(t, "bench", "triplet", dir, "--model", model, "--json", "--quiet")
	var sum bench.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); code != 0 || err != nil || sum.T != 0 || sum.Step != 0 || sum.Made != 24 {
		t.Errorf("bench without timesteps: exit %d (%s), %+v, %v", code, stderr, sum, err)
	}
	code, stdout, stderr = runCmd(t, "rank", sampleA, dir, "--model", model, "--json", "--quiet")
	var r rankJSON
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil || r.T != 0 || r.Images != 8 {
		t.Errorf("rank without timesteps: exit %d (%s), %+v, %v", code, stderr, r, err)
	}
}
