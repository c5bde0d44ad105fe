package diffusion

import (
	"context"
	"image"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/ipadapter"
	"github.com/diffsim/diffsim/features/ipadapter/ipfixture"
)

// openTinyC opens the miniature folder dir with a generated IP-Adapter and image encoder
// injected (DiffSim-C), as a session does: adapter options left at their defaults.
func openTinyC(t *testing.T, dir string) *Model {
	t.Helper()
	rt := enginetest.Runtime(t)
	t.Cleanup(func() { rt.Close() })
	files, err := ipfixture.Write(t.TempDir(), filepath.Join(dir, "unet", "model.onnx"), 41)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := ipadapter.Open(rt, ipadapter.Options{Adapter: files.Adapter, ImageEncoder: files.ImageEncoder})
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenWithAdapter(context.Background(), rt, "tiny-c", dir, 128, ip)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestDiffSimCOnAFolder runs DiffSim-C end to end on a miniature diffusers folder: VAE latent
// and IP tokens per image, the U-Net with IP attention injected, features tapped. With a batch
// of (A, B, A):
//   - the model has 48 layers: 16 self, 16 text cross (ImageKV false), 16 ".ip" (ImageKV
//     true, 16 key/value tokens), and the default is Up0.ip;
//   - every layer scores 1 for A against A;
//   - the IP layers score A against B as B against A, and tell them apart;
//   - the text cross-attention layers score 1 for A against B.
func TestDiffSimCOnAFolder(t *testing.T) {
	m := openTinyC(t, tinyFolder(t))
	info := m.Info()
	var self, text, ip int
	for _, l := range info.Layers {
		isIP := strings.HasSuffix(l.Name, ipadapter.LayerSuffix)
		switch {
		case isIP && l.Kind == features.CrossAttention && l.ImageKV:
			ip++
		case l.Kind == features.CrossAttention && !l.ImageKV:
			text++
		case l.Kind == features.SelfAttention && l.ImageKV:
			self++
		default:
			t.Errorf("%s: kind %s, ImageKV %v", l.Name, l.Kind, l.ImageKV)
		}
	}
	if len(info.Layers) != 48 || self != 16 || text != 16 || ip != 16 {
		t.Fatalf("%d layers: %d self, %d text cross, %d IP; want 48 = 16 + 16 + 16", len(info.Layers), self, text, ip)
	}
	if def := info.Layers[info.DefaultLayer]; def.Short != "Up0.ip" || def.Name != "up_blocks.1.attentions.2.transformer_blocks.0.attn2.ip" {
		t.Errorf("default layer %s (%s), want Up0.ip", def.Short, def.Name)
	}
	if !strings.Contains(info.Description, "IP-Adapter") {
		t.Errorf("description %q does not mention the IP-Adapter", info.Description)
	}

	ctx := context.Background()
	a, b := sample(t, "chelsea.png"), sample(t, "coffee.png")
	ex, err := m.Extract(ctx, []image.Image{a, b, a}, 401, 2334)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 3 || len(ex[0].Layers) != 48 {
		t.Fatalf("got %d extractions of %d layers", len(ex), len(ex[0].Layers))
	}
	checkDiffSimC(t, info.Layers, ex)
}

// checkDiffSimC checks the scores of an extraction of (A, B, A) layer by layer.
func checkDiffSimC(t *testing.T, layers []features.Layer, ex []features.Extraction) {
	t.Helper()
	ctx := context.Background()
	att := aas.GoAttention{}
	distinct := 0
	for i, l := range layers {
		fa, fb, fa2 := ex[0].Layers[i], ex[1].Layers[i], ex[2].Layers[i]
		same, err := aas.Compare(ctx, att, fa, fa2)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(same.Score()-1) > 1e-6 {
			t.Errorf("%s: score(A, A) = %.9f, want 1", l.Name, same.Score())
		}
		ab, err := aas.Compare(ctx, att, fa, fb)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case l.ImageKV && l.Kind == features.CrossAttention:
			ba, err := aas.Compare(ctx, att, fb, fa)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(ab.Score()-ba.Score()) > 1e-12 || ab.AtoB != ba.BtoA {
				t.Errorf("%s: DiffSim-C(A, B) = %.9f, (B, A) = %.9f", l.Name, ab.Score(), ba.Score())
			}
			if fa.KV() != 16 {
				t.Errorf("%s: %d key/value tokens, want the adapter's 16", l.Name, fa.KV())
			}
			if ab.Score() < 1-1e-4 {
				distinct++
			}
		case l.Kind == features.CrossAttention:
			if math.Abs(ab.Score()-1) > 1e-5 {
				t.Errorf("%s: text cross-attention scored %.6f for different images, want 1", l.Name, ab.Score())
			}
		}
	}
	if distinct < 8 {
		t.Errorf("only %d of 16 IP layers tell A from B", distinct)
	}
}

// TestDiffSimCWithPrompt: with a prompt and the CFG layout, both halves of the batch get each
// image's IP tokens (the IP keys are the same in both halves and in the unconditional run),
// and the scores keep DiffSim-C's properties.
func TestDiffSimCWithPrompt(t *testing.T) {
	m := openTinyC(t, withTokenizer(t, tinyFolder(t)))
	ctx := context.Background()
	a, b := sample(t, "chelsea.png"), sample(t, "coffee.png")
	imgs := []image.Image{a, b, a}
	uncond, err := m.Extract(ctx, imgs, 401, 2334)
	if err != nil {
		t.Fatal(err)
	}
	cat := features.Conditioning{Prompt: "a photo of a cat"}
	prompted, err := m.ExtractConditioned(ctx, imgs, 401, 2334, cat)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.ExtractConditioned(ctx, imgs, 401, 2334, features.Conditioning{Prompt: cat.Prompt, CFG: true})
	if err != nil {
		t.Fatal(err)
	}
	layers := m.Info().Layers
	up0ip := layerIndex(t, m, "up_blocks.1.attentions.2.transformer_blocks.0.attn2.ip")
	for img := range imgs {
		c, u, p := cfg[img].Layers[up0ip], uncond[img].Layers[up0ip], prompted[img].Layers[up0ip]
		if c.Heads != 2*u.Heads || c.KV() != 16 {
			t.Fatalf("image %d: CFG features at Up0.ip have %d heads and %d key/value tokens; want %d and 16", img, c.Heads, c.KV(), 2*u.Heads)
		}
		if !slices.Equal(half(c, 0).K, u.K) || !slices.Equal(half(c, 1).K, u.K) || !slices.Equal(p.K, u.K) {
			t.Errorf("image %d: the IP keys depend on the prompt or the CFG half; they come from the image alone", img)
		}
		if !slices.Equal(half(c, 0).Q, u.Q) || !slices.Equal(half(c, 1).Q, p.Q) {
			t.Errorf("image %d: the CFG halves at Up0.ip differ from the unconditional and prompted runs", img)
		}
	}
	if slices.Equal(prompted[0].Layers[up0ip].Q, uncond[0].Layers[up0ip].Q) {
		t.Error("Up0.ip queries are the same with and without the prompt")
	}
	checkDiffSimC(t, layers, prompted)
	checkDiffSimC(t, layers, cfg)
}
