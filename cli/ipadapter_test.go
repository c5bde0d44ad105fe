package cli

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/features/ipadapter/ipfixture"
)

// tinyDiffSimC writes the miniature diffusers folder and, elsewhere, a generated IP-Adapter
// and image encoder for its U-Net.
func tinyDiffSimC(t *testing.T) (model string, files ipfixture.Files) {
	t.Helper()
	model = t.TempDir()
	if err := testgraphs.WriteTinyDiffusers(model); err != nil {
		t.Fatal(err)
	}
	files, err := ipfixture.Write(t.TempDir(), filepath.Join(model, "unet", "model.onnx"), 41)
	if err != nil {
		t.Fatal(err)
	}
	return model, files
}

// TestScoreWithIPAdapter: `score --ip-adapter --image-encoder` scores DiffSim-C at the
// default .ip layer (A against A is 1), and `models inspect` with the same flags lists the
// .ip layers on image keys and values.
func TestScoreWithIPAdapter(t *testing.T) {
	model, files := tinyDiffSimC(t)
	flags := []string{"--model", model, "--ip-adapter", files.Adapter, "--image-encoder", files.ImageEncoder, "--size", "128", "--json", "--quiet"}
	score := func(a, b string) api.Record {
		t.Helper()
		code, stdout, stderr := runCmd(t, append([]string{"score", a, b}, flags...)...)
		if code != exitOK {
			t.Fatalf("score %s %s: exit %d: %s", a, b, code, stderr)
		}
		var s api.Record
		if err := json.Unmarshal([]byte(stdout), &s); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
		return s
	}
	ab := score(sampleA, sampleB)
	if !strings.HasSuffix(ab.Layer, ".ip") || ab.LayerShort != "Up0.ip" || ab.Meaningless != nil {
		t.Errorf("layer %s (%s), meaningless %v; want DiffSim-C's default Up0.ip", ab.Layer, ab.LayerShort, ab.Meaningless)
	}
	if ab.Score <= -1 || ab.Score >= 1-1e-6 || math.Abs(float64(ab.Score-(ab.AtoB+ab.BtoA)/2)) > 1e-12 {
		t.Errorf("DiffSim-C(A, B) = %.9f (A→B %.9f, B→A %.9f)", ab.Score, ab.AtoB, ab.BtoA)
	}
	if ba := score(sampleB, sampleA); math.Abs(float64(ba.Score-ab.Score)) > 1e-12 {
		t.Errorf("DiffSim-C(B, A) = %.9f, (A, B) = %.9f", ba.Score, ab.Score)
	}
	if aa := score(sampleA, sampleA); math.Abs(float64(aa.Score-1)) > 1e-6 {
		t.Errorf("DiffSim-C(A, A) = %.9f, want 1", aa.Score)
	}

	inspect := []string{"models", "inspect", model, "--ip-adapter", files.Adapter, "--image-encoder", files.ImageEncoder, "--size", "128"}
	code, stdout, stderr := runCmd(t, inspect...)
	if code != exitOK {
		t.Fatalf("models inspect: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"48 attention layers", "input   ip_tokens", "adapter " + files.Adapter, "Up0.ip", "cross (image K/V)", "cross (text: always 1)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("models inspect output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = runCmd(t, append(inspect, "--json")...)
	var ins struct { // engine.IOInfo's type marshals as a name and does not unmarshal
		Layers    []features.Layer      `json:"layers"`
		IPAdapter *features.AdapterInfo `json:"ip_adapter"`
	}
	if err := json.Unmarshal([]byte(stdout), &ins); code != exitOK || err != nil || len(ins.Layers) != 48 || ins.IPAdapter == nil || ins.IPAdapter.Layers != 16 {
		t.Errorf("models inspect --json: exit %d (%s), %d layers, adapter %+v, %v", code, stderr, len(ins.Layers), ins.IPAdapter, err)
	}
}

func TestIPAdapterUsageErrors(t *testing.T) {
	model, files := tinyDiffSimC(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"built-in model", []string{"score", sampleA, sampleB, "--ip-adapter", files.Adapter, "--image-encoder", files.ImageEncoder}, "built-in"},
		{"adapter only", []string{"score", sampleA, sampleB, "--model", model, "--ip-adapter", files.Adapter}, "--image-encoder"},
		{"encoder only", []string{"score", sampleA, sampleB, "--model", model, "--image-encoder", files.ImageEncoder}, "--ip-adapter"},
		{"inspect built-in", []string{"models", "inspect", "builtin", "--ip-adapter", files.Adapter}, "Stable Diffusion"},
		{"inspect encoder only", []string{"models", "inspect", model, "--image-encoder", files.ImageEncoder}, "--ip-adapter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tc.args...)
			if code != exitUsage || stdout != "" {
				t.Errorf("exit %d, stdout %q; want %d and nothing", code, stdout, exitUsage)
			}
			if !strings.HasPrefix(stderr, "diffsim: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want one line naming %q", stderr, tc.want)
			}
		})
	}
}
