package diffusion

import (
	"context"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/imagefile"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/features"
)

// tinyFolder writes testgraphs' runnable miniature diffusers export: a U-Net (16×16 latents,
// so 128 px images) whose weights live in an external file, an in-graph-sampling VAE encoder,
// and a CLIP text encoder.
func tinyFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := testgraphs.WriteTinyDiffusers(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// withTokenizer adds tokenizer/ to a miniature folder: the excerpt of CLIP's real vocabulary
// and merges that the tokenizer package tests with (real ids; see its excerpt_test.go), and
// SD 1.x's special tokens.
func withTokenizer(t *testing.T, dir string) string {
	t.Helper()
	d := filepath.Join(dir, "tokenizer")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vocab.json", "merges.txt"} {
		data, err := os.ReadFile(filepath.Join("..", "tokenizer", "testdata", "clip-excerpt", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := `{"bos_token": {"__type": "AddedToken", "content": "<|startoftext|>"}, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "model_max_length": 77}`
	if err := os.WriteFile(filepath.Join(d, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sample(t *testing.T, name string) image.Image {
	t.Helper()
	img, _, err := imagefile.Load(context.Background(), filepath.Join("..", "..", "testdata", "samples", name), imagefile.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestTinyDiffusionModel(t *testing.T) {
	dir := tinyFolder(t)
	if !IsFolder(dir) {
		t.Fatal("IsFolder: false for a diffusers folder")
	}
	rt := enginetest.Runtime(t)
	defer rt.Close()
	ctx := context.Background()
	m, err := Open(ctx, rt, "tiny", dir, 128)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info := m.Info()
	var self, cross, imageKV int
	for _, l := range info.Layers {
		switch l.Kind {
		case features.SelfAttention:
			self++
		case features.CrossAttention:
			cross++
			if l.ImageKV {
				imageKV++
			}
		}
	}
	if self != 16 || cross != 16 || imageKV != 0 {
		t.Fatalf("layers: %d self, %d cross (%d on image K/V); want 16, 16, 0", self, cross, imageKV)
	}
	if got := info.Layers[info.DefaultLayer].Short; got != "Up0" {
		t.Errorf("default layer is %q, want the reference's Up0", got)
	}
	a, b := sample(t, "chelsea.png"), sample(t, "coffee.png")
	ex, err := m.Extract(ctx, []image.Image{a, b, a}, 401, 2334)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 3 || len(ex[0].Layers) != 32 {
		t.Fatalf("got %d extractions of %d layers", len(ex), len(ex[0].Layers))
	}
	// Token grids follow the U-Net's levels: 16, 8, 4 down, 2 in the middle, 4, 8, 16 up.
	for i, l := range info.Layers {
		f := ex[0].Layers[i]
		if f.GridH != l.GridH || f.Tokens != l.Tokens {
			t.Errorf("%s: %d tokens on a %d grid at run time; described as %d on %d", l.Name, f.Tokens, f.GridH, l.Tokens, l.GridH)
		}
	}
	att := aas.GoAttention{}
	for i, l := range info.Layers {
		same, err := aas.Compare(ctx, att, ex[0].Layers[i], ex[2].Layers[i])
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(same.Score()-1) > 1e-6 {
			t.Errorf("%s: score(A, A) = %.9f (the same image in one batch must score 1)", l.Name, same.Score())
		}
		diff, _ := aas.Compare(ctx, att, ex[0].Layers[i], ex[1].Layers[i])
		if l.Kind == features.CrossAttention && math.Abs(diff.Score()-1) > 1e-5 {
			t.Errorf("%s: cross-attention on text scored %.6f for different images; K and V do not depend on the image, so it must be 1", l.Name, diff.Score())
		}
	}
	if m.unet.BuffersRefused() {
		t.Error("the runtime refused the output buffers shaped by expect: its token counts are wrong")
	}
	again, err := m.Extract(ctx, []image.Image{a}, 401, 2334)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again[0].Layers[0].Q {
		if again[0].Layers[0].Q[i] != ex[0].Layers[0].Q[i] {
			t.Fatal("the same image, t and seed gave different features (alone vs in a batch)")
		}
	}
}

func TestMissingTextEncoderIsNamed(t *testing.T) {
	dir := tinyFolder(t)
	if err := os.RemoveAll(filepath.Join(dir, "text_encoder")); err != nil {
		t.Fatal(err)
	}
	rt := enginetest.Runtime(t)
	defer rt.Close()
	_, err := Open(context.Background(), rt, "tiny", dir, 128)
	if err == nil || !strings.Contains(err.Error(), "text_encoder") {
		t.Fatalf("err = %v, want one naming text_encoder", err)
	}
}
