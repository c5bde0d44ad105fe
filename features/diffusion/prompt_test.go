package diffusion

import (
	"context"
	"image"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/aas"

	"github.com/diffsim/diffsim/features"
)

func openTiny(t *testing.T, dir string) *Model {
	t.Helper()
	rt := enginetest.Runtime(t)
	t.Cleanup(func() { rt.Close() })
	m, err := Open(context.Background(), rt, "tiny", dir, 128)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func layerIndex(t *testing.T, m *Model, name string) int {
	t.Helper()
	for i, l := range m.Info().Layers {
		if l.Name == name {
			return i
		}
	}
	t.Fatalf("no layer %s", name)
	return -1
}

// half is one CFG half of stacked features: heads [h0, h0+heads) of every row.
func half(f features.Features, which int) features.Features {
	h := f.Heads / 2
	c := h * f.HeadDim
	pick := func(x []float32, rows int) []float32 {
		out := make([]float32, 0, rows*c)
		for r := 0; r < rows; r++ {
			out = append(out, x[r*2*c+which*c:r*2*c+(which+1)*c]...)
		}
		return out
	}
	out := f
	out.Heads = h
	out.Q, out.K, out.V = pick(f.Q, f.Tokens), pick(f.K, f.KV()), pick(f.V, f.KV())
	return out
}

func TestPromptConditioning(t *testing.T) {
	ctx := context.Background()
	m := openTiny(t, withTokenizer(t, tinyFolder(t)))
	if got := m.TextEncoderRuns(); got != 1 {
		t.Fatalf("Open ran the text encoder %d times, want 1 (the empty prompt)", got)
	}
	a, b := sample(t, "chelsea.png"), sample(t, "coffee.png")
	imgs := []image.Image{a, b, a}
	const step = 401
	uncond, err := m.Extract(ctx, imgs, step, 2334)
	if err != nil {
		t.Fatal(err)
	}
	cat := features.Conditioning{Prompt: "a photo of a cat"}
	prompted, err := m.ExtractConditioned(ctx, imgs, step, 2334, cat)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.ExtractConditioned(ctx, imgs, step, 2334, features.Conditioning{Prompt: cat.Prompt, CFG: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.unet.BuffersRefused() {
		t.Error("the runtime refused the output buffers shaped for a CFG batch")
	}
	if got := m.TextEncoderRuns(); got != 2 {
		t.Errorf("text encoder runs after one prompt used twice: %d, want 2 (empty prompt, then the prompt once)", got)
	}

	first := layerIndex(t, m, "down_blocks.0.attentions.0.transformer_blocks.0.attn1")
	up0 := layerIndex(t, m, "up_blocks.1.attentions.2.transformer_blocks.0.attn1")
	up0x := layerIndex(t, m, "up_blocks.1.attentions.2.transformer_blocks.0.attn2")
	for _, l := range []int{first, up0, up0x} {
		u, p, c := uncond[0].Layers[l], prompted[0].Layers[l], cfg[0].Layers[l]
		if c.Heads != 2*u.Heads || c.HeadDim != u.HeadDim || c.Tokens != u.Tokens || len(c.Q) != 2*len(u.Q) {
			t.Fatalf("layer %d: CFG features %d heads × %d, %d tokens; want both halves of %d × %d, %d tokens", l, c.Heads, c.HeadDim, c.Tokens, u.Heads, u.HeadDim, u.Tokens)
		}
		// The halves are the unconditional and the prompted runs, bit for bit: the batch
		// does not mix images or halves.
		if !slices.Equal(half(c, 0).Q, u.Q) || !slices.Equal(half(c, 0).K, u.K) {
			t.Errorf("layer %d: the CFG batch's first half differs from the unconditional run", l)
		}
		if !slices.Equal(half(c, 1).Q, p.Q) || !slices.Equal(half(c, 1).V, p.V) {
			t.Errorf("layer %d: the CFG batch's second half differs from the prompted run", l)
		}
	}
	// The prompt reaches the U-Net through cross-attention: the first self-attention layer
	// comes before any, later layers see it.
	if !slices.Equal(prompted[0].Layers[first].Q, uncond[0].Layers[first].Q) {
		t.Error("the first self-attention layer (before any cross-attention) changed with the prompt")
	}
	if slices.Equal(prompted[0].Layers[up0].Q, uncond[0].Layers[up0].Q) {
		t.Error("Up0 self-attention features are the same with and without the prompt")
	}
	if slices.Equal(prompted[0].Layers[up0x].K, uncond[0].Layers[up0x].K) {
		t.Error("Up0 cross-attention keys are the same for the prompt and the empty prompt")
	}

	att := aas.GoAttention{}
	score := func(ex []features.Extraction, i, j int) float64 {
		c, err := aas.Compare(ctx, att, ex[i].Layers[up0], ex[j].Layers[up0])
		if err != nil {
			t.Fatal(err)
		}
		return c.Score()
	}
	for _, ex := range [][]features.Extraction{prompted, cfg} {
		if s := score(ex, 0, 2); math.Abs(s-1) > 1e-6 {
			t.Errorf("score(A, A) = %.9f with a prompt, want 1", s)
		}
	}
	sU, sP, sC := score(uncond, 0, 1), score(prompted, 0, 1), score(cfg, 0, 1)
	if sC == sU || sC == sP || sP == sU {
		t.Errorf("scores unconditional %.6f, prompted %.6f, CFG %.6f: CFG must score both halves", sU, sP, sC)
	}

	// The CFG score is the reference's: one cosine over both halves' attention outputs, each
	// half attending only within itself.
	fa, fb := cfg[0].Layers[up0], cfg[1].Layers[up0]
	var self, cross []float32
	for k := range 2 {
		ha, hb := half(fa, k), half(fb, k)
		sh := aas.Shape{Heads: ha.Heads, HeadDim: ha.HeadDim, Scale: ha.Scale}
		outs, err := att.Attend(ctx, sh, []aas.Job{
			{Q: ha.Q, K: ha.K, V: ha.V, Tq: ha.Tokens, Tk: ha.KV()},
			{Q: ha.Q, K: hb.K, V: hb.V, Tq: ha.Tokens, Tk: hb.KV()},
		})
		if err != nil {
			t.Fatal(err)
		}
		self, cross = append(self, outs[0]...), append(cross, outs[1]...)
	}
	c, err := aas.Compare(ctx, att, fa, fb)
	if err != nil {
		t.Fatal(err)
	}
	if want := aas.Cosine(self, cross); math.Abs(c.AtoB-want) > 1e-9 {
		t.Errorf("CFG A→B = %.9f; the cosine over both halves' outputs is %.9f", c.AtoB, want)
	}

	// Another prompt runs the encoder once more; going back to the first does not.
	if _, err := m.ExtractConditioned(ctx, []image.Image{a}, step, 2334, features.Conditioning{Prompt: "a photo of a dog"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ExtractConditioned(ctx, []image.Image{a}, step, 2334, cat); err != nil {
		t.Fatal(err)
	}
	if got := m.TextEncoderRuns(); got != 3 {
		t.Errorf("text encoder runs: %d, want 3 (empty, cat, dog)", got)
	}
}

func TestPromptNeedsTokenizer(t *testing.T) {
	m := openTiny(t, tinyFolder(t))
	err := m.Prepare(context.Background(), features.Conditioning{Prompt: "a photo of a cat"})
	if err == nil || !strings.Contains(err.Error(), "vocab.json") || !strings.Contains(err.Error(), "tokenizer/") {
		t.Fatalf("err = %v, want one naming tokenizer/vocab.json", err)
	}
	if err := m.Prepare(context.Background(), features.Conditioning{}); err != nil {
		t.Errorf("the unconditional embedding needs no tokenizer: %v", err)
	}
}

func TestEmptyPromptIDsMatchTokenizer(t *testing.T) {
	// With or without tokenizer/, SD 1.x's empty prompt is BOS then EOS to 77: the same
	// embedding either way.
	with := openTiny(t, withTokenizer(t, tinyFolder(t)))
	without := openTiny(t, tinyFolder(t))
	e1, err := with.embedding(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	e2, err := without.embedding(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e1.Float32, e2.Float32) {
		t.Error("the empty prompt's embedding depends on whether tokenizer/ is there")
	}
}

func TestConditioningString(t *testing.T) {
	for c, want := range map[features.Conditioning]string{
		{}:                           "unconditional",
		{Prompt: "a cat"}:            `prompt "a cat"`,
		{Prompt: "a cat", CFG: true}: `CFG: unconditional + prompt "a cat"`,
	} {
		if got := c.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", c, got, want)
		}
	}
}
