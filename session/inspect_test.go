package session

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/families"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
)

// TestInspectIPAdapter: with an adapter, Inspect adds its IP attention to the U-Net graph
// without a runtime and lists the 16 ".ip" layers on image keys and values beside the 32 of
// the plain U-Net; a folder holding its own adapter is inspected with it.
func TestInspectIPAdapter(t *testing.T) {
	dir, unet := tinyDiffusers(t)
	files := writeAdapter(t, t.TempDir(), unet)
	plain, err := Inspect(dir, InspectOptions{Families: families.All(), Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Layers) != 32 || plain.IPAdapter != nil {
		t.Fatalf("plain U-Net: %d layers, adapter %+v; want 32 and none", len(plain.Layers), plain.IPAdapter)
	}

	ins, err := Inspect(dir, InspectOptions{Families: families.All(), Size: 128, IPAdapter: files.Adapter, ImageEncoder: files.ImageEncoder})
	if err != nil {
		t.Fatal(err)
	}
	checkInspectedIP(t, ins)
	if a := ins.IPAdapter; a == nil || a.Tokens != 16 || a.Width != 16 || a.Layers != 16 || a.Path != files.Adapter || a.Penultimate == "" {
		t.Errorf("adapter %+v; want 16 tokens of width 16 into 16 layers, the encoder's penultimate state found", a)
	}
	var tokens bool
	for _, in := range ins.Inputs {
		tokens = tokens || in.Name == "ip_tokens"
	}
	if !tokens {
		t.Errorf("inputs %v lack ip_tokens", ins.Inputs)
	}
	// Without --image-encoder the graph is the same.
	if noEnc, err := Inspect(dir, InspectOptions{Families: families.All(), Size: 128, IPAdapter: files.Adapter}); err != nil || len(noEnc.Layers) != 48 || noEnc.IPAdapter.Penultimate != "" {
		t.Errorf("without an image encoder: %v", err)
	}

	writeAdapter(t, dir, unet)
	own, err := Inspect(dir, InspectOptions{Families: families.All(), Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	checkInspectedIP(t, own)
	if own.IPAdapter == nil || filepath.Base(own.IPAdapter.Path) != "ip-adapter-plus_sd15.safetensors" {
		t.Errorf("the folder's own adapter: %+v", own.IPAdapter)
	}
}

// checkInspectedIP checks the layer table of a U-Net with IP attention: each ".ip" row is
// cross-attention on image keys and values with its attn2's grid and short name + ".ip".
func checkInspectedIP(t *testing.T, ins Inspection) {
	t.Helper()
	if len(ins.Layers) != 48 {
		t.Fatalf("%d layers, want 48", len(ins.Layers))
	}
	byName := map[string]features.Layer{}
	for _, l := range ins.Layers {
		byName[l.Name] = l
	}
	ip := 0
	for _, l := range ins.Layers {
		switch {
		case strings.HasSuffix(l.Name, ".ip"):
			ip++
			attn2 := byName[strings.TrimSuffix(l.Name, ".ip")]
			if l.Kind != "cross" || !l.ImageKV || l.GridH != attn2.GridH || l.GridH == 0 || l.Heads != attn2.Heads {
				t.Errorf("%s: kind %s, ImageKV %v, grid %d, %d heads; its attn2 has grid %d, %d heads", l.Name, l.Kind, l.ImageKV, l.GridH, l.Heads, attn2.GridH, attn2.Heads)
			}
		case l.Kind == "cross" && l.ImageKV:
			t.Errorf("%s: text cross-attention shown on image keys and values", l.Name)
		}
	}
	if up0 := byName["up_blocks.1.attentions.2.transformer_blocks.0.attn2.ip"]; ip != 16 || up0.Short != "Up0.ip" {
		t.Errorf("%d IP layers, Up0's named %q; want 16 and Up0.ip", ip, up0.Short)
	}
}

func TestInspectIPAdapterUsageErrors(t *testing.T) {
	dir, unet := tinyDiffusers(t)
	files := writeAdapter(t, t.TempDir(), unet)
	for _, tc := range []struct {
		name, model string
		o           InspectOptions
		want        string
	}{
		{"builtin", "builtin", InspectOptions{Families: families.All(), IPAdapter: files.Adapter}, "Stable Diffusion"},
		{"encoder only", dir, InspectOptions{Families: families.All(), ImageEncoder: files.ImageEncoder}, "--ip-adapter"},
		{"missing", dir, InspectOptions{Families: families.All(), IPAdapter: filepath.Join(t.TempDir(), "none.safetensors")}, "none.safetensors"},
		{"pickle", dir, InspectOptions{Families: families.All(), IPAdapter: "ip-adapter-plus_sd15.bin"}, ".safetensors"},
		{"not an encoder", dir, InspectOptions{Families: families.All(), IPAdapter: files.Adapter, ImageEncoder: filepath.Join(dir, "vae_encoder", "model.onnx")}, "--image-encoder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Inspect(tc.model, tc.o)
			if !errors.Is(err, api.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a usage error naming %q", err, tc.want)
			}
		})
	}
}

// TestFolderOfOneGraph: a folder holding one .onnx file is that graph, for Inspect and Open
// alike (store.Local.Graph is an absolute path).
func TestFolderOfOneGraph(t *testing.T) {
	dir := t.TempDir()
	m, _ := testgraphs.ViT(testgraphs.DINOv2Eager, testgraphs.TinyViT())
	if err := onnx.WriteFile(filepath.Join(dir, "vit.onnx"), m); err != nil {
		t.Fatal(err)
	}
	ins, err := Inspect(dir, InspectOptions{Families: families.All()})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Kind != "generic" || ins.Graph != filepath.Join(dir, "vit.onnx") || len(ins.Layers) != 2 {
		t.Errorf("inspect: kind %s, graph %s, %d layers; want generic, vit.onnx, 2", ins.Kind, ins.Graph, len(ins.Layers))
	}
	s := openOrSkip(t, Options{Spec: testSpec(func(s *api.Spec) { s.Model = dir }), Families: families.All()})
	if n := len(s.Info().Layers); n != 2 {
		t.Errorf("open: %d layers, want 2", n)
	}
}
