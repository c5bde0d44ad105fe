package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/session/bench"
)

// tinyViTFolder writes a transformers.js-layout DINOv2 of two generated attention layers over
// 4×4 patches of a 56 px crop (testgraphs.TinyViT): a model without timesteps.
func tinyViTFolder(t *testing.T) string {
	t.Helper()
	m, _ := testgraphs.ViT(testgraphs.DINOv2Eager, testgraphs.TinyViT())
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
	var sw api.Sweep
	if err := json.Unmarshal([]byte(stdout), &sw); err != nil {
		t.Fatal(err)
	}
	if sw.Timesteps != nil || len(sw.Scores) != len(sw.Layers) || len(sw.Layers) != 2 || sw.Scores[0].T != nil || sw.Scores[0].Step != nil {
		t.Fatalf("sweep of a model without timesteps: timesteps %v, %d layers, %d scores", sw.Timesteps, len(sw.Layers), len(sw.Scores))
	}
	if !strings.Contains(stderr, "no timesteps") {
		t.Errorf("--t given to a model without timesteps is not mentioned: %q", stderr)
	}
	for _, sc := range sw.Scores {
		code, stdout, _ := runCmd(t, "score", sampleA, sampleB, "--model", model, "--layer", sw.Layers[sc.LayerIndex].Name, "--json")
		var one api.Record
		if err := json.Unmarshal([]byte(stdout), &one); code != 0 || err != nil || !reflect.DeepEqual(one, sc) {
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
	// A benchmark at layer 0 runs the encoder cut down to it (it records no global
	// embedding); its scores are the whole encoder's, as score computes them.
	out := filepath.Join(t.TempDir(), "layer0.jsonl")
	if code, _, stderr := runCmd(t, "bench", "triplet", dir, "--model", model, "--layer", "0", "--max", "2", "--out", out, "--quiet"); code != 0 {
		t.Fatalf("bench --layer 0: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var d bench.Decision
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &d); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCmd(t, "score", filepath.Join(dir, d.Ref), filepath.Join(dir, d.A), "--model", model, "--layer", "0", "--json")
	var one api.Record
	if err := json.Unmarshal([]byte(stdout), &one); code != 0 || err != nil || math.Abs(float64(one.Score-d.ScoreA)) > 1e-6 || math.IsNaN(float64(one.GlobalCosine)) {
		t.Errorf("bench at layer 0 scored %s against %s %v; score says %+v (exit %d, %v)", d.Ref, d.A, d.ScoreA, one, code, err)
	}
	code, stdout, stderr = runCmd(t, "rank", sampleA, dir, "--model", model, "--json", "--quiet")
	var r rankJSON
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil || r.T != nil || r.Images != 8 {
		t.Errorf("rank without timesteps: exit %d (%s), %+v, %v", code, stderr, r, err)
	}
}
