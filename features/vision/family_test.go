package vision

import (
	"context"
	"image"
	"testing"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/store"
)

// dynamicDINOv2 is a DINOv2-shaped ViT whose pixel input has symbolic height and width, as the
// transformers.js export has: the size comes from preprocessor_config.json, not from the graph.
func dynamicDINOv2(t *testing.T, cropPx int) string {
	t.Helper()
	o := testgraphs.TinyViT()
	o.Crop = cropPx
	m, _ := testgraphs.ViT(testgraphs.DINOv2Eager, o)
	dims := m.GetGraph().GetInput()[0].GetType().GetTensorType().GetShape().GetDim()
	dims[2].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "height"}
	dims[3].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "width"}
	// config.json gives the size DINOv2 was trained at (518); the processor crops to 224.
	return writeViTFolder(t, m, "model.onnx",
		`{"model_type": "dinov2", "image_size": 518, "patch_size": 14}`,
		`{"crop_size": {"height": 224, "width": 224}, "size": {"shortest_edge": 256}, "do_center_crop": true}`)
}

// TestViTDescribeIsWhatScoreRuns: inspect reports the size and token grid the scoring run
// computes (224 px, 16×16+1 tokens), not config.json's 518 px.
func TestViTDescribeIsWhatScoreRuns(t *testing.T) {
	dir := dynamicDINOv2(t, 224)
	src := features.Source{Name: "dinov2", Kind: store.KindViT, Path: dir}
	d, err := ViTFamily{}.Describe(src, features.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != 224 || len(d.Layers) != 2 {
		t.Fatalf("described at %d px with %d layers, want 224 px and 2", d.Size, len(d.Layers))
	}
	for _, l := range d.Layers {
		if l.GridH != 16 || l.GridW != 16 || l.Prefix != 1 || l.Tokens != 257 {
			t.Errorf("%s: %dx%d+%d, %d tokens; want 16x16+1, 257", l.Name, l.GridH, l.GridW, l.Prefix, l.Tokens)
		}
	}
	if _, err := (ViTFamily{}).Describe(src, features.OpenOptions{IPAdapter: features.AdapterOptions{Weights: "ip.safetensors"}}); err == nil {
		t.Error("an IP-Adapter on a ViT was accepted")
	}

	rt := enginetest.Runtime(t)
	m, err := ViTFamily{}.Open(context.Background(), rt, src, features.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Info().Size != d.Size {
		t.Errorf("scoring runs at %d px, inspect said %d", m.Info().Size, d.Size)
	}
	ex, err := m.Extract(context.Background(), []image.Image{sample(t, "chelsea.png")}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range ex[0].Layers {
		l := d.Layers[i]
		if f.Tokens != l.Tokens || f.GridH != l.GridH || f.GridW != l.GridW || f.Prefix != l.Prefix {
			t.Errorf("%s: ran %d tokens %dx%d+%d, inspect said %d %dx%d+%d", l.Name, f.Tokens, f.GridH, f.GridW, f.Prefix, l.Tokens, l.GridH, l.GridW, l.Prefix)
		}
	}
}

func TestGenericDescribe(t *testing.T) {
	m, _ := testgraphs.ViT(testgraphs.CLIPEager, testgraphs.TinyViT())
	dir := writeViTFolder(t, m, "model.onnx", `{}`, `{}`)
	file := dir + "/onnx/model.onnx"
	d, err := GenericFamily{}.Describe(features.Source{Name: "g", Kind: store.KindGeneric, Path: file}, features.OpenOptions{Size: 300})
	if err != nil {
		t.Fatal(err)
	}
	// The graph fixes its input at 56 px: that, not --size, is what runs.
	if d.Size != 56 || d.Graph != file || len(d.Layers) != 2 || len(d.Inputs) != 1 {
		t.Errorf("generic: %d px, graph %s, %d layers, inputs %v; want 56 px, the file, 2 layers, 1 input", d.Size, d.Graph, len(d.Layers), d.Inputs)
	}
}
