package vision

import (
	"context"
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/imagefile"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

const (
	crop     = 56 // testgraphs.TinyViT: 4×4 patches + CLS = 17 tokens
	channels = 16
)

func writeViTFolder(t *testing.T, m *onnxpb.ModelProto, file, config, pre string) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "onnx"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onnx.WriteFile(filepath.Join(dir, "onnx", file), m); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"config.json": config, "preprocessor_config.json": pre} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sample(t *testing.T, name string) image.Image {
	img, _, err := imagefile.Load(context.Background(), filepath.Join("..", "..", "testdata", "samples", name), imagefile.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestViTFamilies(t *testing.T) {
	rt := enginetest.Runtime(t)
	defer rt.Close()
	cases := []struct {
		name, file, config string
		variant            testgraphs.Variant
		mean0              float32
	}{
		{"dinov2", "model.onnx", `{"model_type": "dinov2"}`, testgraphs.DINOv2Eager, 0.485},
		{"clip", "vision_model.onnx", `{"model_type": "clip_vision_model"}`, testgraphs.CLIPEager, 0.48145466},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pre := `{"do_resize": true, "size": {"shortest_edge": 64}, "crop_size": {"height": 56, "width": 56}, "do_center_crop": true}`
			vit, _ := testgraphs.ViT(c.variant, testgraphs.TinyViT())
			dir := writeViTFolder(t, vit, c.file, c.config, pre)
			m, err := OpenViT(rt, c.name, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.pre.Crop != crop || m.pre.Resize != 64 || m.pre.Mean[0] != c.mean0 {
				t.Errorf("preprocessing %+v: want resize 64, crop 56 from the config and the %s mean", m.pre, c.name)
			}
			info := m.Info()
			if len(info.Layers) != 2 || info.Timesteps {
				t.Fatalf("info: %d layers, timesteps %v", len(info.Layers), info.Timesteps)
			}
			a, b := sample(t, "chelsea.png"), sample(t, "rocket.jpg")
			ex, err := m.Extract(context.Background(), []image.Image{a, b, a}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := ex[0].Layers[1]
			if f.Tokens != 17 || f.GridH != 4 || f.GridW != 4 || f.Prefix != 1 {
				t.Errorf("tokens %d grid %dx%d+%d, want 17 = 4x4 + CLS", f.Tokens, f.GridH, f.GridW, f.Prefix)
			}
			if len(ex[0].Global) != channels {
				t.Errorf("global embedding has %d values, want pooler_output's %d", len(ex[0].Global), channels)
			}
			// cut down to layer 0: its features as the whole encoder's, no other layer, no
			// global embedding (Info says it needs the whole network)
			cut, err := m.ExtractLayers(context.Background(), []image.Image{a, b, a}, 0, 0, features.Conditioning{}, []int{0})
			if err != nil {
				t.Fatal(err)
			}
			if !info.GlobalNeedsAll || cut[0].Global != nil || cut[0].Layers[1].Tokens != 0 || !cut[0].Pruned() {
				t.Errorf("cut down to layer 0: global %v (needs all %v), layer 1 has %d tokens", cut[0].Global, info.GlobalNeedsAll, cut[0].Layers[1].Tokens)
			}
			for i := range cut {
				w, g := ex[i].Layers[0], cut[i].Layers[0]
				for name, pair := range map[string][2][]float32{"Q": {w.Q, g.Q}, "K": {w.K, g.K}, "V": {w.V, g.V}} {
					if len(pair[0]) != len(pair[1]) {
						t.Fatalf("image %d: %s has %d values cut down, %d whole", i, name, len(pair[1]), len(pair[0]))
					}
					for j := range pair[0] {
						if d := math.Abs(float64(pair[0][j] - pair[1][j])); d > 1e-6 {
							t.Fatalf("image %d: %s[%d] cut down %v, whole %v", i, name, j, pair[1][j], pair[0][j])
						}
					}
				}
			}
			same, err := aas.Compare(context.Background(), aas.GoAttention{}, ex[0].Layers[1], ex[2].Layers[1])
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(same.Score()-1) > 1e-6 {
				t.Errorf("score(A, A) = %.9f", same.Score())
			}
		})
	}
}

func TestGenericGraphWithoutAttentionIsAClearError(t *testing.T) {
	b := onnx.NewBuilder("no-attention")
	x := b.Input("pixel_values", onnx.Float, -1, 3, 32, 32)
	y := b.Node("Relu", "/relu", []string{x})
	b.Output(y, onnx.Float, -1, 3, 32, 32)
	path := filepath.Join(t.TempDir(), "plain.onnx")
	if err := onnx.WriteFile(path, b.Model()); err != nil {
		t.Fatal(err)
	}
	rt := enginetest.Runtime(t)
	defer rt.Close()
	_, err := OpenGeneric(rt, "plain", path, 0)
	if err == nil {
		t.Fatal("a graph without attention opened")
	}
	t.Log(err)
}
