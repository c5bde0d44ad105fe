package ipadapter

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/features/tapped"
)

func TestPenultimate(t *testing.T) {
	for _, decomposed := range []bool{false, true} {
		t.Run(fmt.Sprintf("decomposed=%v", decomposed), func(t *testing.T) {
			m, want := tinyEncoder(24, 2, 4, decomposed)
			got, err := Penultimate(m)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Penultimate = %q, want %q (the output of layers.2, input of layers.3)", got, want)
			}
		})
	}
	text, _ := tinyEncoder(24, 2, 1, false)
	if _, err := Penultimate(text); err == nil {
		t.Error("a one-layer encoder has no penultimate state, got none error")
	}
}

func sample(t *testing.T, name string) image.Image {
	t.Helper()
	img, _, err := imagefile.Load(context.Background(), filepath.Join("..", "..", "testdata", "samples", name), imagefile.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestDiffSimC runs the whole DiffSim-C path on generated files: image encoder → penultimate
// state → Resampler → IP tokens → injected U-Net, tapped. With a batch of (A, B, A), where
// both A items get the same latent and IP tokens:
//   - DiffSim-C(A, A) = 1 and DiffSim-C(A, B) = DiffSim-C(B, A) at every IP layer, and the IP
//     layers do tell A from B;
//   - the text attn2 layers stay ImageKV false and score 1 for A against B;
//   - every IP layer has 16 key/value tokens.
func TestDiffSimC(t *testing.T) {
	rt := openRuntime(t)
	dir := t.TempDir()
	enc, _ := tinyEncoder(24, 2, 3, false)
	encPath := writeModel(t, dir, "image_encoder.onnx", enc)
	unet, o, cross := plainUNet(t)
	if err := onnx.MoveToExternal(unet, dir, "model.onnx_data", 64); err != nil {
		t.Fatal(err)
	}
	unetPath := writeModel(t, dir, "model.onnx", unet)
	ts := newTensorSet(31, true)
	ts.addResampler(tinyShape)
	ts.addIPLayers(t, cross, o.CtxChannels)
	weights := filepath.Join(dir, "ip-adapter-plus_sd15.safetensors")
	ts.write(t, weights)

	a, err := Open(rt, Options{Adapter: weights, ImageEncoder: encPath, HeadDim: tinyShape.HeadDim})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Scale() != DefaultScale || a.Shape() != tinyShape {
		t.Errorf("scale %g, shape %+v", a.Scale(), a.Shape())
	}
	ctx := context.Background()
	imgA, imgB := sample(t, "astronaut.png"), sample(t, "coffee.png")
	tokens, err := a.Tokens(ctx, []image.Image{imgA, imgB, imgA})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tokens.Shape) != "[3 16 16]" || tokens.Name != TokensInput {
		t.Fatalf("tokens %s %v", tokens.Name, tokens.Shape)
	}
	again, err := a.Tokens(ctx, []image.Image{imgB})
	if err != nil {
		t.Fatal(err)
	}
	per := 16 * o.CtxChannels
	if !slices.Equal(again.Float32, tokens.Float32[per:2*per]) || !slices.Equal(tokens.Float32[:per], tokens.Float32[2*per:]) {
		t.Error("tokens of the same image differ between calls or within a batch")
	}
	data, udir, inj, err := a.InjectUNet(unetPath)
	if err != nil {
		t.Fatal(err)
	}
	model, err := tapped.Load(rt, unetPath, data, udir, tapped.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	layers := model.Describe(0, 0)
	def := inj.Describe(layers)
	if def < 0 || layers[def].Name != "up_blocks.1.attentions.2.transformer_blocks.0.attn2.ip" || layers[def].Short != "Up0.ip" {
		t.Errorf("default DiffSim-C layer %d", def)
	}

	// Latents: A, B, A.
	rng := rand.New(rand.NewPCG(2, 3))
	per = 4 * o.Height * o.Width
	za, zb := randoms(rng, per, 1), randoms(rng, per, 1)
	sample := append(append(append([]float32(nil), za...), zb...), za...)
	text := randoms(rng, o.CtxTokens*o.CtxChannels, 1)
	ehs := append(append(append([]float32(nil), text...), text...), text...)
	res, err := model.Run(ctx, o.Height, o.Width,
		engine.F32("sample", []int64{3, 4, int64(o.Height), int64(o.Width)}, sample),
		engine.F32("timestep", []int64{3}, []float32{501, 501, 501}),
		engine.F32("encoder_hidden_states", []int64{3, int64(o.CtxTokens), int64(o.CtxChannels)}, ehs),
		tokens)
	if err != nil {
		t.Fatal(err)
	}
	var ip, text2, distinct int
	for i, l := range layers {
		fa, fb, fa2 := res.Features[0][i], res.Features[1][i], res.Features[2][i]
		isIP := strings.HasSuffix(l.Name, LayerSuffix)
		switch {
		case isIP:
			ip++
			if !l.ImageKV || l.Kind != features.CrossAttention || fa.KV() != 16 {
				t.Errorf("%s: ImageKV %v, kind %s, %d KV tokens", l.Name, l.ImageKV, l.Kind, fa.KV())
			}
			same, err := aas.Compare(ctx, aas.GoAttention{}, fa, fa2)
			if err != nil {
				t.Fatal(err)
			}
			ab, _ := aas.Compare(ctx, aas.GoAttention{}, fa, fb)
			ba, _ := aas.Compare(ctx, aas.GoAttention{}, fb, fa)
			if math.Abs(same.Score()-1) > 1e-6 {
				t.Errorf("%s: DiffSim-C(A, A) = %.8f", l.Name, same.Score())
			}
			if math.Abs(ab.Score()-ba.Score()) > 1e-12 || ab.AtoB != ba.BtoA {
				t.Errorf("%s: DiffSim-C(A, B) = %.8f, (B, A) = %.8f", l.Name, ab.Score(), ba.Score())
			}
			if ab.Score() < 1-1e-4 {
				distinct++
			}
		case l.Kind == features.CrossAttention:
			text2++
			if l.ImageKV {
				t.Errorf("%s: text cross-attention reported as image-dependent", l.Name)
			}
			ab, _ := aas.Compare(ctx, aas.GoAttention{}, fa, fb)
			if math.Abs(ab.Score()-1) > 1e-6 {
				t.Errorf("%s: text cross-attention scores %.8f for A against B, want 1", l.Name, ab.Score())
			}
		default:
			if !l.ImageKV {
				t.Errorf("%s: self-attention not image-dependent", l.Name)
			}
		}
	}
	if ip != 16 || text2 != 16 {
		t.Errorf("%d IP layers and %d text cross-attention layers, want 16 each", ip, text2)
	}
	if distinct < 8 {
		t.Errorf("only %d of 16 IP layers tell A from B", distinct)
	}
}
