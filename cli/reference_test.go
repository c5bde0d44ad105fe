package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestReferenceMode(t *testing.T) {
	a := filepath.Join("..", "testdata", "samples", "chelsea.png")
	b := filepath.Join("..", "testdata", "samples", "coffee.png")
	// A model that cannot be opened: the settings are reported before the model loads.
	missing := filepath.Join(t.TempDir(), "missing.onnx")
	tests := []struct {
		name string
		args []string
		want []string // lines of stderr, in part
		not  []string
	}{
		{"style sets the reference's settings",
			[]string{"--reference", "sref"},
			[]string{"--reference style set", "t=101 (step 900)", "layer Up0", "512 px", "seed 2334", `prompt "High quality image"`, "CFG", "VAE latent mean"},
			[]string{"note: the reference conditions each item"}},
		{"nights says its per-item prompt",
			[]string{"--reference", "NIGHTS"},
			[]string{"t=501 (step 500)", `"An image of a <category>"`},
			nil},
		{"what the user gives wins",
			[]string{"--reference", "cute", "--t", "300", "--seed", "7", "--prompt", "The photo of a dog"},
			[]string{"kept what you gave: --model " + missing + ", --t 300", "--seed 7", `--prompt "The photo of a dog"`},
			[]string{"t=401", "seed 2334", "note: the reference conditions each item"}},
		{"ip and dreambench", []string{"--reference", "dreambench"}, []string{"t=251 (step 750)"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"score", a, b, "--model", missing}, tt.args...)
			code, _, stderr := runCmd(t, args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d for the missing model", code, exitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(stderr, n) {
					t.Errorf("stderr has %q:\n%s", n, stderr)
				}
			}
		})
	}
}

func TestPromptFlagsUsage(t *testing.T) {
	a := filepath.Join("..", "testdata", "samples", "chelsea.png")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--reference", "imagenet"}, `--reference "imagenet": want one of`},
		{[]string{"--cfg"}, "give --prompt too"},
		{[]string{"--prompt", "a cat"}, "builtin takes no text prompt"},
	} {
		code, _, stderr := runCmd(t, append([]string{"score", a, a}, tt.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}
