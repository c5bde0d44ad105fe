package diffusion

import (
	"context"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/aas"
)

func TestTapVAEMean(t *testing.T) {
	vae := func(edit func(*testgraphs.VAEOptions)) (*onnxpb.ModelProto, string) {
		o := testgraphs.TinyVAE()
		if edit != nil {
			edit(&o)
		}
		m, truth := testgraphs.VAEEncoder(o)
		return m, truth.Mean
	}
	plain, plainMean := vae(nil)
	scaled, scaledMean := vae(func(o *testgraphs.VAEOptions) { o.ScaledMean = true })
	params, _ := vae(func(o *testgraphs.VAEOptions) { o.Parameters = true })
	for _, tc := range []struct {
		name string
		m    *onnxpb.ModelProto
		want VAEMean
	}{
		{"mean from a Split", plain, VAEMean{Tensor: plainMean, Sampled: true}},
		{"mean scaled and cast before the sampling Add", scaled, VAEMean{Tensor: scaledMean, Sampled: true}},
		{"latent_parameters output", params, VAEMean{Parameters: "latent_parameters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TapVAEMean(tc.m)
			if err != nil || got != tc.want {
				t.Errorf("TapVAEMean = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if !strings.Contains(scaledMean, "Cast") {
		t.Fatalf("the scaled graph's mean %q is not the Cast's output: the test graph changed", scaledMean)
	}
}

func TestTapVAEMeanRefuses(t *testing.T) {
	// Noise that is never added to anything: nothing to call a mean.
	b := onnx.NewBuilder("noise-only")
	x := b.Input("sample", onnx.Float, 1, 4, 2, 2)
	n := b.Node("RandomNormalLike", "/RandomNormalLike", []string{x})
	b.Output(b.Node("Mul", "/Mul", []string{n, x}), onnx.Float, 1, 4, 2, 2)
	// No sample and no parameters output.
	c := onnx.NewBuilder("plain")
	y := c.Input("sample", onnx.Float, 1, 4, 2, 2)
	c.Output(c.Node("Relu", "/Relu", []string{y}), onnx.Float, 1, 4, 2, 2)
	for _, tc := range []struct {
		name string
		m    *onnxpb.ModelProto
		want string
	}{
		{"noise never added", b.Model(), "never added to a mean"},
		{"no sample, no parameters", c.Model(), "latent_parameters"},
		{"no graph", &onnxpb.ModelProto{}, "no graph"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := TapVAEMean(tc.m); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestVAEMeanRuns: the tapped mean is deterministic while the sample is not, and the mean of
// the graph that scales it by 0.5 before sampling is half the plain graph's (same weights).
func TestVAEMeanRuns(t *testing.T) {
	rt := enginetest.Runtime(t)
	x := make([]float32, 2*3*64*64)
	for i := range x {
		x[i] = float32(i%17) / 17
	}
	means := map[bool][]float32{}
	for _, scaled := range []bool{false, true} {
		o := testgraphs.TinyVAE()
		o.ScaledMean = scaled
		m, truth := testgraphs.VAEEncoder(o)
		mean, err := TapVAEMean(m)
		if err != nil {
			t.Fatal(err)
		}
		data, err := onnx.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		s, err := rt.Load(onnx.AppendOutputs(data, []string{mean.Tensor}), engine.SessionOptions{Outputs: []string{mean.Tensor, "latent_sample"}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		run := func() []engine.Tensor {
			out, err := s.Run(context.Background(), engine.F32(truth.Inputs[0].Name, truth.Inputs[0].Shape, x))
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		a, b := run(), run()
		if !slices.Equal(a[0].Float32, b[0].Float32) {
			t.Errorf("scaled %v: the tapped mean differs between two runs", scaled)
		}
		if slices.Equal(a[1].Float32, b[1].Float32) {
			t.Errorf("scaled %v: latent_sample is identical between two runs; the graph was meant to sample", scaled)
		}
		if !slices.Equal(a[0].Shape, []int64{2, 4, 8, 8}) {
			t.Errorf("scaled %v: mean shape %v, want [2 4 8 8]", scaled, a[0].Shape)
		}
		means[scaled] = a[0].Float32
	}
	for i, v := range means[false] {
		if math.Abs(float64(means[true][i])-0.5*float64(v)) > 1e-6 {
			t.Fatalf("value %d: scaled mean %.7f, want half of %.7f", i, means[true][i], v)
		}
	}
}

// TestWrappedUNet: a U-Net exported through a wrapper module, whatever the wrapper's attribute
// name, is described with the plain export's layer names, short names and token grids.
func TestWrappedUNet(t *testing.T) {
	describe := func(prefix string) features.Description {
		t.Helper()
		o := testgraphs.SD15()
		o.Prefix = prefix
		m, _ := testgraphs.SDUNet(o)
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "unet"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := onnx.WriteFile(filepath.Join(dir, "unet", "model.onnx"), m); err != nil {
			t.Fatal(err)
		}
		d, err := Family{}.Describe(features.Source{Name: "sd", Path: dir}, features.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	plain := describe("")
	shorts := 0
	for _, l := range plain.Layers {
		if l.GridH == 0 || l.Tokens != l.GridH*l.GridW {
			t.Errorf("plain %s: grid %dx%d, %d tokens", l.Name, l.GridH, l.GridW, l.Tokens)
		}
		if l.Short != "" {
			shorts++
		}
	}
	grids := map[string]int{"Down0": 64, "Down1": 32, "Down2": 16, "Mid": 8, "Up0": 16, "Up1": 32, "Up2": 64}
	for _, l := range plain.Layers {
		if g, ok := grids[l.Short]; ok && (l.GridH != g || l.GridW != g) {
			t.Errorf("%s (%s): grid %dx%d at 512 px, the paper's is %dx%d", l.Short, l.Name, l.GridH, l.GridW, g, g)
		}
	}
	if len(plain.Layers) != 32 || shorts != 14 || plain.Size != DefaultSize {
		t.Fatalf("plain export: %d layers, %d short names at %d px; want 32, 14 at %d", len(plain.Layers), shorts, plain.Size, DefaultSize)
	}
	for _, prefix := range []string{"/unet", "/denoiser", "/u", "/pipe/model"} {
		t.Run(prefix, func(t *testing.T) {
			wrapped := describe(prefix)
			if len(wrapped.Layers) != len(plain.Layers) {
				t.Fatalf("%d layers, want %d", len(wrapped.Layers), len(plain.Layers))
			}
			for i, w := range wrapped.Layers {
				p := plain.Layers[i]
				if w.Name != p.Name || w.Short != p.Short || w.Group != p.Group || w.GridH != p.GridH || w.GridW != p.GridW || w.Tokens != p.Tokens {
					t.Errorf("layer %d: %s %q %s %dx%d (%d tokens), plain export has %s %q %s %dx%d (%d)", i,
						w.Name, w.Short, w.Group, w.GridH, w.GridW, w.Tokens, p.Name, p.Short, p.Group, p.GridH, p.GridW, p.Tokens)
				}
			}
		})
	}
}

// TestWrappedUNetScoresEqual: the runnable miniature exported through a wrapper (same weights)
// scores every layer exactly as the plain export does.
func TestWrappedUNetScoresEqual(t *testing.T) {
	plainDir, wrappedDir := tinyFolder(t), tinyFolder(t)
	o := testgraphs.TinyUNet()
	o.Prefix = "/denoiser"
	m, _ := testgraphs.SDUNet(o)
	unet := filepath.Join(wrappedDir, "unet")
	if err := onnx.MoveToExternal(m, unet, "model.onnx_data", 64); err != nil {
		t.Fatal(err)
	}
	if err := onnx.WriteFile(filepath.Join(unet, "model.onnx"), m); err != nil {
		t.Fatal(err)
	}
	rt := enginetest.Runtime(t)
	ctx := context.Background()
	a, b := sample(t, "chelsea.png"), sample(t, "coffee.png")
	var scores [2][]float64
	var names [2][]string
	for i, dir := range []string{plainDir, wrappedDir} {
		mod, err := Open(ctx, rt, "tiny", dir, 128)
		if err != nil {
			t.Fatal(err)
		}
		defer mod.Close()
		ex, err := mod.Extract(ctx, []image.Image{a, b}, 401, 2334)
		if err != nil {
			t.Fatal(err)
		}
		for li, l := range mod.Info().Layers {
			c, err := aas.Compare(ctx, aas.GoAttention{}, ex[0].Layers[li], ex[1].Layers[li])
			if err != nil {
				t.Fatal(err)
			}
			scores[i] = append(scores[i], c.Score())
			names[i] = append(names[i], l.Short+" "+l.Name)
		}
	}
	if !slices.Equal(names[0], names[1]) {
		t.Errorf("layer names differ:\nplain   %v\nwrapped %v", names[0], names[1])
	}
	for i := range scores[0] {
		if math.Abs(scores[0][i]-scores[1][i]) > 1e-6 {
			t.Errorf("%s: wrapped export scores %.7f, plain %.7f", names[0][i], scores[1][i], scores[0][i])
		}
	}
}
