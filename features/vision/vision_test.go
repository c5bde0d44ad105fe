package vision

import (
	"context"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features"
)

const (
	patch    = 14
	crop     = 56 // 4×4 patches + CLS = 17 tokens
	channels = 16
)

// tinyViT puts a patch embedding in front of a generated two-layer encoder of variant v:
// pixel_values [B,3,56,56] → Conv(14, stride 14) → tokens → a zero CLS token in front → position
// embedding → the encoder; pooler_output is the CLS token of the last hidden state.
func tinyViT(t *testing.T, v testgraphs.Variant) *onnxpb.ModelProto {
	t.Helper()
	o := testgraphs.DefaultOptions()
	o.Channels, o.Heads, o.Tokens = channels, 2, 17
	m, _ := testgraphs.Attention(v, o)
	g := m.GetGraph()
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if in.GetName() != "hidden_states" {
			inputs = append(inputs, in)
		}
	}
	b := onnx.NewBuilder("stem")
	r := rand.New(rand.NewPCG(1, 1))
	weights := func(n int, s float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(r.NormFloat64() * s)
		}
		return out
	}
	px := b.Input("pixel_values", onnx.Float, -1, 3, crop, crop)
	x := b.Node("Conv", "/embeddings/patch_embeddings/projection/Conv", []string{px, b.Floats("patch_w", []int64{channels, 3, patch, patch}, weights(channels*3*patch*patch, 0.05))},
		onnx.AttrInts("strides", patch, patch))
	x = b.Node("Reshape", "/embeddings/Reshape", []string{x, b.Ints("flat", []int64{3}, []int64{0, channels, -1})})
	x = b.Node("Transpose", "/embeddings/Transpose", []string{x}, onnx.AttrInts("perm", 0, 2, 1))
	x = b.Node("Pad", "/embeddings/cls", []string{x, b.Ints("cls_pads", []int64{6}, []int64{0, 1, 0, 0, 0, 0})})
	x = b.Node("Add", "/embeddings/position", []string{x, b.Floats("pos", []int64{1, 17, channels}, weights(17*channels, 0.5))})
	b.Last().Output[0] = "hidden_states"
	stem := b.Graph()
	g.Node = append(stem.Node, g.Node...)
	g.Initializer = append(g.Initializer, stem.Initializer...)
	g.Input = append(stem.Input, inputs...)
	pool := &onnxpb.NodeProto{Name: "/pooler/Gather", OpType: "Gather", Input: []string{"last_hidden_state", "pool_index"}, Output: []string{"pooler_output"}, Attribute: []*onnxpb.AttributeProto{onnx.AttrInt("axis", 1)}}
	g.Node = append(g.Node, pool)
	g.Initializer = append(g.Initializer, onnx.IntTensor("pool_index", nil, []int64{0}))
	g.Output = append(g.Output, onnx.ValueInfo("pooler_output", onnx.Float, -1, channels))
	return m
}

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
	img, _, err := features.LoadImage(filepath.Join("..", "..", "testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestViTFamilies(t *testing.T) {
	rt, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
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
			dir := writeViTFolder(t, tinyViT(t, c.variant), c.file, c.config, pre)
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
			same, err := features.Compare(context.Background(), features.GoAttention{}, ex[0].Layers[1], ex[2].Layers[1])
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
	rt, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	_, err = OpenGeneric(rt, "plain", path, 0)
	if err == nil {
		t.Fatal("a graph without attention opened")
	}
	t.Log(err)
}
