package diffusion

import (
	"context"
	"image"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/aas"
)

// plainLoader opens runners that only Run: the taps come back from the runtime's own
// allocations, never through buffers sized in advance.
type plainLoader struct{ features.Loader }

type plainRunner struct{ engine.Runner }

func (l plainLoader) Load(model []byte, so engine.SessionOptions) (engine.Runner, error) {
	r, err := l.Loader.Load(model, so)
	if err != nil {
		return nil, err
	}
	return plainRunner{r}, nil
}

// TestOtherLayouts opens U-Nets of other layouts than SD 1.5's (fewer and more down blocks,
// a fixed 8×8 latent, SDXL's extra inputs, a wrapper prefix): inspect's token grids are the
// ones scoring sees at run time, every layer's features are bit for bit those of a run without
// pre-sized buffers (which the runtime never refuses), and every layer scores an image against
// itself as 1.
func TestOtherLayouts(t *testing.T) {
	rt := enginetest.Runtime(t)
	ctx := context.Background()
	a, b := sample(t, "chelsea.png"), sample(t, "coffee.png")
	for name, o := range testgraphs.Layouts() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := testgraphs.WriteDiffusers(dir, o); err != nil {
				t.Fatal(err)
			}
			asked, want := 128, 128
			if o.FixedSize {
				asked, want = 0, 8*o.Height
			}
			desc, err := Family{}.Describe(features.Source{Name: name, Path: dir}, features.OpenOptions{Size: asked})
			if err != nil {
				t.Fatal(err)
			}
			m, err := Open(ctx, rt, name, dir, asked)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			plain, err := Open(ctx, plainLoader{rt}, name, dir, asked)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			info := m.Info()
			if info.Size != want || desc.Size != want {
				t.Fatalf("working size: score %d px, inspect %d px, want %d", info.Size, desc.Size, want)
			}
			imgs := []image.Image{a, b, a}
			ex, err := m.Extract(ctx, imgs, 401, 2334)
			if err != nil {
				t.Fatal(err)
			}
			px, err := plain.Extract(ctx, imgs, 401, 2334)
			if err != nil {
				t.Fatal(err)
			}
			// A score at Mid, the layer the regression broke, runs the U-Net cut down to it.
			mid := slices.IndexFunc(info.Layers, func(l features.Layer) bool { return l.Short == "Mid" })
			if mid < 0 {
				t.Fatal("no Mid layer")
			}
			pr, err := m.ExtractLayers(ctx, imgs, 401, 2334, features.Conditioning{}, []int{mid})
			if err != nil {
				t.Fatal(err)
			}
			for k := range imgs {
				g, f := pr[k].Layers[mid], ex[k].Layers[mid]
				if !slices.Equal(g.Q, f.Q) || !slices.Equal(g.K, f.K) || !slices.Equal(g.V, f.V) {
					t.Errorf("Mid, image %d: the pruned U-Net's features differ from the full one's", k)
				}
			}
			if m.unet.BuffersRefused() {
				t.Error("the runtime refused the taps' buffers: their inferred shapes are wrong")
			}
			if len(info.Layers) != len(desc.Layers) || len(ex[0].Layers) != len(info.Layers) {
				t.Fatalf("%d layers described, %d opened, %d extracted", len(desc.Layers), len(info.Layers), len(ex[0].Layers))
			}
			for i, l := range info.Layers {
				f, d := ex[0].Layers[i], desc.Layers[i]
				if l.Tokens == 0 || f.Tokens != l.Tokens || f.GridH != l.GridH || f.GridW != l.GridW ||
					d.Tokens != l.Tokens || d.GridH != l.GridH || d.GridW != l.GridW {
					t.Errorf("%s: run %d tokens %dx%d; score's layer %d tokens %dx%d; inspect %d tokens %dx%d",
						l.Name, f.Tokens, f.GridH, f.GridW, l.Tokens, l.GridH, l.GridW, d.Tokens, d.GridH, d.GridW)
				}
				for k := range imgs {
					g, p := ex[k].Layers[i], px[k].Layers[i]
					if !slices.Equal(g.Q, p.Q) || !slices.Equal(g.K, p.K) || !slices.Equal(g.V, p.V) {
						t.Fatalf("%s, image %d: features differ from the run without buffers", l.Name, k)
					}
				}
				same, err := aas.Compare(ctx, aas.GoAttention{}, ex[0].Layers[i], ex[2].Layers[i])
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(same.Score()-1) > 1e-6 {
					t.Errorf("%s: score(A, A) = %.9f", l.Name, same.Score())
				}
			}
		})
	}
}

// TestFixedSizeRefusesOtherSizes: a U-Net whose input is fixed runs at its size only, and
// asking for another says which size to use.
func TestFixedSizeRefusesOtherSizes(t *testing.T) {
	dir := t.TempDir()
	if err := testgraphs.WriteDiffusers(dir, testgraphs.TwoLevelUNet()); err != nil {
		t.Fatal(err)
	}
	_, err := Family{}.Describe(features.Source{Name: "two", Path: dir}, features.OpenOptions{Size: 512})
	if err == nil || !strings.Contains(err.Error(), "--size 64") {
		t.Fatalf("inspect at 512 px: err = %v, want one offering --size 64", err)
	}
	rt := enginetest.Runtime(t)
	if _, err := Open(context.Background(), rt, "two", dir, 512); err == nil || !strings.Contains(err.Error(), "--size 64") {
		t.Fatalf("open at 512 px: err = %v, want one offering --size 64", err)
	}
}

// TestWorkNotDependingOnTRunsOnce: an image's VAE latent and the empty prompt's embedding are
// computed once: a second model on the same folder (a second command) finds them on disk and
// never opens the VAE or the text encoder, and its features are the same bits.
func TestWorkNotDependingOnTRunsOnce(t *testing.T) {
	t.Setenv("DIFFSIM_MEMO", t.TempDir())
	dir := tinyFolder(t)
	rt := enginetest.Runtime(t)
	ctx := context.Background()
	a, b := sample(t, "chelsea.png"), sample(t, "coffee.png")
	first, err := Open(ctx, rt, "tiny", dir, 128)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ex1, err := first.Extract(ctx, []image.Image{a, b}, 401, 2334)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Extract(ctx, []image.Image{b, a}, 101, 2334); err != nil {
		t.Fatal(err)
	}
	if first.VAERuns() != 2 || first.TextEncoderRuns() != 1 {
		t.Errorf("first model: %d VAE runs, %d text encoder runs; want 2 and 1", first.VAERuns(), first.TextEncoderRuns())
	}
	second, err := Open(ctx, plainLoader{rt}, "tiny", dir, 128)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	ex2, err := second.Extract(ctx, []image.Image{a, b}, 401, 2334)
	if err != nil {
		t.Fatal(err)
	}
	if second.VAERuns() != 0 || second.TextEncoderRuns() != 0 || second.vae != nil || second.textEnc != nil {
		t.Errorf("second model: %d VAE runs, %d text encoder runs (sessions open: %v, %v); want none", second.VAERuns(), second.TextEncoderRuns(), second.vae != nil, second.textEnc != nil)
	}
	for l := range ex1[0].Layers {
		for k := range 2 {
			if !slices.Equal(ex1[k].Layers[l].Q, ex2[k].Layers[l].Q) {
				t.Fatalf("layer %d, image %d: features from the kept latent differ", l, k)
			}
		}
	}
	// Another size is another latent.
	third, err := Open(ctx, rt, "tiny", dir, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := third.Extract(ctx, []image.Image{a}, 401, 2334); err != nil {
		t.Fatal(err)
	}
	if third.VAERuns() != 1 {
		t.Errorf("at 64 px: %d VAE runs, want 1", third.VAERuns())
	}
}
