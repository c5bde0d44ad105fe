package session

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/families"

	"github.com/diffsim/diffsim/engine/enginetest"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/features/ipadapter/ipfixture"
)

// tinyDiffusers writes testgraphs' miniature diffusers folder; it returns the folder and its
// U-Net's path.
func tinyDiffusers(t *testing.T) (dir, unet string) {
	t.Helper()
	dir = t.TempDir()
	if err := testgraphs.WriteTinyDiffusers(dir); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "unet", "model.onnx")
}

// writeAdapter writes an adapter for the U-Net and its image encoder into dir (the model
// folder itself, to have them found there).
func writeAdapter(t *testing.T, dir, unet string) ipfixture.Files {
	t.Helper()
	files, err := ipfixture.Write(dir, unet, 41)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func openOrSkip(t *testing.T, o Options) *Session {
	t.Helper()
	s, err := Open(context.Background(), o)
	enginetest.Check(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// checkDiffSimCInfo checks the layer list of a U-Net with IP-Adapter: 16 self, 16 text cross,
// 16 ".ip" layers on image keys and values, Up0.ip by default.
func checkDiffSimCInfo(t *testing.T, info api.ModelInfo) {
	t.Helper()
	ip, text := 0, 0
	for _, l := range info.Layers {
		switch {
		case strings.HasSuffix(l.Name, ".ip"):
			if l.ImageKV && l.Kind == api.CrossAttention {
				ip++
			}
		case l.Kind == api.CrossAttention && !l.ImageKV:
			text++
		}
	}
	if len(info.Layers) != 48 || ip != 16 || text != 16 {
		t.Fatalf("%d layers, %d IP on image K/V, %d text cross; want 48, 16, 16", len(info.Layers), ip, text)
	}
	if def := info.Layers[info.DefaultLayer]; def.Short != "Up0.ip" {
		t.Errorf("default layer %s (%s), want Up0.ip", def.Short, def.Name)
	}
}

// TestDiffSimCSession opens a diffusers folder with --ip-adapter and --image-encoder as
// options: the IP layers score A against A as 1, A against B as B against A, and only the text
// cross-attention layers are marked meaningless.
func TestDiffSimCSession(t *testing.T) {
	dir, unet := tinyDiffusers(t)
	files := writeAdapter(t, t.TempDir(), unet)
	s := openOrSkip(t, Options{Spec: testSpec(func(s *api.Spec) {
		s.Model = dir
		s.IPAdapter = files.Adapter
		s.ImageEncoder = files.ImageEncoder
		s.Size = 128
	}), Families: families.All()})
	info := s.Info()
	checkDiffSimCInfo(t, info)
	if info.Family != "diffusion" || !info.Timesteps || info.Size != 128 {
		t.Errorf("info %+v", info)
	}
	ctx := context.Background()
	a, b := load(t, s, "chelsea.png"), load(t, s, "coffee.png")
	scores, err := s.LayerScores(ctx, a, b, 401, api.AAS)
	if err != nil {
		t.Fatal(err)
	}
	for i, sc := range scores {
		l := info.Layers[i]
		if sc.Meaningless != !l.ImageKV {
			t.Errorf("%s: meaningless %v, ImageKV %v", l.Name, sc.Meaningless, l.ImageKV)
		}
		if !strings.HasSuffix(l.Name, ".ip") {
			continue
		}
		ba, err := s.Score(ctx, api.Request{A: b, B: a, Layer: i, T: 401, Token: -1})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(ba.Score-sc.Score) > 1e-12 {
			t.Errorf("%s: DiffSim-C(A, B) = %.9f, (B, A) = %.9f", l.Name, sc.Score, ba.Score)
		}
	}
	same, err := s.Score(ctx, api.Request{A: a, B: a, Layer: info.DefaultLayer, T: 401, Token: -1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(same.Score-1) > 1e-6 || same.Meaningless != "" {
		t.Errorf("Up0.ip: DiffSim-C(A, A) = %.9f (meaningless %q), want 1", same.Score, same.Meaningless)
	}
}

// TestDiffSimCFromTheModelFolder: a folder holding image_encoder/model.onnx and one
// ip-adapter*.safetensors opens with the adapter, no option needed.
func TestDiffSimCFromTheModelFolder(t *testing.T) {
	dir, unet := tinyDiffusers(t)
	writeAdapter(t, dir, unet)
	s := openOrSkip(t, Options{Spec: testSpec(func(s *api.Spec) { s.Model = dir; s.Size = 128 }), Families: families.All()})
	checkDiffSimCInfo(t, s.Info())
}

func TestDiffSimCUsageErrors(t *testing.T) {
	dir, unet := tinyDiffusers(t)
	files := writeAdapter(t, t.TempDir(), unet)
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"builtin", Options{Spec: testSpec(func(s *api.Spec) { s.IPAdapter = files.Adapter; s.ImageEncoder = files.ImageEncoder }), Families: families.All()}, "built-in"},
		{"adapter only", Options{Spec: testSpec(func(s *api.Spec) { s.Model = dir; s.IPAdapter = files.Adapter; s.Size = 128 }), Families: families.All()}, "--image-encoder"},
		{"encoder only", Options{Spec: testSpec(func(s *api.Spec) { s.Model = dir; s.ImageEncoder = files.ImageEncoder; s.Size = 128 }), Families: families.All()}, "--ip-adapter"},
		{"pickle", Options{Spec: testSpec(func(s *api.Spec) {
			s.Model = dir
			s.IPAdapter = "ip-adapter-plus_sd15.bin"
			s.ImageEncoder = files.ImageEncoder
			s.Size = 128
		}), Families: families.All()}, ".safetensors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.o)
			if errors.Is(err, engine.ErrNoCgo) || errors.Is(err, engine.ErrNoLibrary) {
				enginetest.Check(t, err) // a missing runtime skips here, or fails in CI
			}
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, api.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a usage error naming %q", err, tc.want)
			}
		})
	}
}
