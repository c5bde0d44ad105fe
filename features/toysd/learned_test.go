package toysd_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/features/toysd"
	"github.com/diffsim/diffsim/session/bench/synth"
)

// heldBack draws the evaluation set the training script held back (seed 1, the default of
// `diffsim bench synth`): 8 styles × 8 contents at the model's size, as the diffusion family
// feeds them to the VAE (RGB in [−1, 1], channels first).
func heldBack(t *testing.T) (pixels []float32, n int) {
	t.Helper()
	styles, err := synth.Styles(8)
	if err != nil {
		t.Fatal(err)
	}
	contents, err := synth.Contents(8)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range styles {
		for _, c := range contents {
			pixels = append(pixels, features.CHW(synth.Render(s, c, toysd.Size, 1), features.HalfMean, features.HalfStd)...)
			n++
		}
	}
	return pixels, n
}

// pipeline runs one unpacked model folder's graphs as the training script defined them.
type pipeline struct {
	vae, text, unet *engine.Session
	scaling         float32
}

func openPipeline(t *testing.T, rt *engine.Runtime, dir string) pipeline {
	t.Helper()
	load := func(rel string, outputs ...string) *engine.Session {
		s, err := rt.LoadFile(filepath.Join(dir, rel), engine.SessionOptions{Outputs: outputs})
		enginetest.Check(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	var cfg struct {
		ScalingFactor float32 `json:"scaling_factor"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "vae_encoder", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.ScalingFactor <= 0 {
		t.Fatalf("vae_encoder/config.json: scaling factor %v, %v", cfg.ScalingFactor, err)
	}
	return pipeline{
		vae:     load("vae_encoder/model.onnx", "latent_parameters"),
		text:    load("text_encoder/model.onnx", "last_hidden_state"),
		unet:    load("unet/model.onnx", "out_sample"),
		scaling: cfg.ScalingFactor,
	}
}

// latents are the scaled VAE means of n images, [n, 4, 16, 16] flattened.
func (p pipeline) latents(t *testing.T, pixels []float32, n int) []float32 {
	t.Helper()
	out, err := p.vae.Run(context.Background(), engine.F32("sample", []int64{int64(n), 3, toysd.Size, toysd.Size}, pixels))
	if err != nil {
		t.Fatal(err)
	}
	par := out[0]
	if len(par.Shape) != 4 || par.Shape[1] != 8 {
		t.Fatalf("latent_parameters has shape %v, want [n, 8, h, w]", par.Shape)
	}
	per := int(par.Shape[2] * par.Shape[3])
	z := make([]float32, 0, n*4*per)
	for i := range n {
		mean := par.Float32[i*8*per : i*8*per+4*per] // mean ‖ log-variance on the channel axis
		for _, v := range mean {
			z = append(z, v*p.scaling)
		}
	}
	return z
}

// denoiseLoss is the mean squared error of the U-Net's noise prediction at t.
func (p pipeline) denoiseLoss(t *testing.T, z0, eps []float32, n, tt int) float64 {
	t.Helper()
	ids := make([]int64, 77)
	ids[0] = 512 // <|startoftext|>, then <|endoftext|> as end and padding: the empty prompt
	for i := 1; i < len(ids); i++ {
		ids[i] = 513
	}
	emb, err := p.text.Run(context.Background(), engine.I64("input_ids", []int64{1, 77}, ids))
	if err != nil {
		t.Fatal(err)
	}
	e := emb[0]
	ctx := make([]float32, 0, n*len(e.Float32))
	for range n {
		ctx = append(ctx, e.Float32...)
	}
	zt := append([]float32(nil), z0...)
	schedule.AddNoise(zt, eps, tt)
	ts := make([]float32, n)
	for i := range ts {
		ts[i] = float32(tt)
	}
	h := int64(toysd.Size / 8)
	out, err := p.unet.Run(context.Background(),
		engine.F32("sample", []int64{int64(n), 4, h, h}, zt),
		engine.F32("timestep", []int64{int64(n)}, ts),
		engine.F32("encoder_hidden_states", []int64{int64(n), e.Shape[1], e.Shape[2]}, ctx))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i, v := range out[0].Float32 {
		d := float64(v - eps[i])
		sum += d * d
	}
	return sum / float64(len(eps))
}

// TestItLearned checks, on images the training never saw, that the trained U-Net predicts the
// noise far better than the same network before training, and far better than the best guess
// that knows the noise schedule and the latents' variance but no images (for Gaussian latents
// of variance v: ε̂ = √(1−ᾱ)·z_t / (ᾱv + 1 − ᾱ), whose loss is ᾱv / (ᾱv + 1 − ᾱ)). At little
// noise the noise is all but invisible in z_t for any predictor; the test looks at t from 100
// to 500, where docs/toy-sd.md reports the trained loss at a fraction of both.
func TestItLearned(t *testing.T) {
	rt := enginetest.Runtime(t)
	root := t.TempDir()
	dirs := map[string]string{}
	for _, name := range toysd.Names() {
		d, err := toysd.Dir(root, name)
		if err != nil {
			t.Fatal(err)
		}
		dirs[name] = d
	}
	trained := openPipeline(t, rt, dirs[toysd.Name])
	untrained := openPipeline(t, rt, dirs[toysd.UntrainedName])
	pixels, n := heldBack(t)
	z0 := trained.latents(t, pixels, n)
	var mean, v float64
	for _, x := range z0 {
		mean += float64(x)
	}
	mean /= float64(len(z0))
	for _, x := range z0 {
		v += (float64(x) - mean) * (float64(x) - mean)
	}
	v /= float64(len(z0))
	eps := schedule.Noise(29, len(z0))
	acp := schedule.AlphasCumprod()
	for _, tt := range []int{100, 250, 500} {
		a := acp[tt]
		gaussian := a * v / (a*v + 1 - a)
		lt := trained.denoiseLoss(t, z0, eps, n, tt)
		lu := untrained.denoiseLoss(t, z0, eps, n, tt)
		t.Logf("t=%d: held-back loss trained %.4f, untrained %.4f, Gaussian guess %.4f", tt, lt, lu, gaussian)
		if math.IsNaN(lt) || lt > 0.5*lu || lt > 0.5*gaussian {
			t.Errorf("t=%d: the trained U-Net's held-back loss %.4f is not below half the untrained network's (%.4f) and half the Gaussian guess's (%.4f)", tt, lt, lu, gaussian)
		}
	}
}
