// Package vision holds the model families that read one image and no timestep: vision
// transformers in the transformers.js layout (CLIP-AAS, DINOv2-AAS) and generic ONNX graphs
// with one image input.
package vision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/tapped"
)

// Preprocess says how an image becomes pixel values.
type Preprocess struct {
	Resize     int // shortest side after resizing (bicubic); 0 = resize straight to Crop
	Crop       int // centre crop, square
	Mean, Std  [3]float32
	Normalise  bool
	FromConfig bool // read from preprocessor_config.json
}

// Reference preprocessing (docs/method.md).
var (
	CLIPPreprocess   = Preprocess{Resize: 224, Crop: 224, Mean: [3]float32{0.48145466, 0.4578275, 0.40821073}, Std: [3]float32{0.26862954, 0.26130258, 0.27577711}, Normalise: true}
	DINOv2Preprocess = Preprocess{Resize: 256, Crop: 224, Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}, Normalise: true}
)

// ViTFile finds the vision model of a transformers.js folder: onnx/vision_model.onnx (CLIP)
// or onnx/model.onnx (DINOv2); "" when there is none.
func ViTFile(dir string) string {
	for _, name := range []string{"vision_model.onnx", "model.onnx"} {
		p := filepath.Join(dir, "onnx", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Model is a loaded single-image model.
type Model struct {
	name, family, desc string
	graph              *tapped.Model
	input              string
	pre                Preprocess
	global             string // output holding a global embedding; "" for none
	layers             []features.Layer
	def                int
}

// OpenViT loads a vision transformer folder (config.json, preprocessor_config.json, onnx/…).
func OpenViT(l features.Loader, name, dir string) (*Model, error) {
	v, err := readViT(dir)
	if err != nil {
		return nil, err
	}
	m, err := open(l, name, "vit", v.desc, v.file, v.pre)
	if err != nil {
		return nil, err
	}
	m.def = len(m.layers) - 1
	return m, nil
}

// vit is what a transformers.js folder says about its model, read the same way for inspect
// and for scoring.
type vit struct {
	file      string
	desc      string
	pre       Preprocess
	patch     int // patch size from config.json; 0 when it does not say
	registers int // DINOv2's register tokens
}

func readViT(dir string) (vit, error) {
	v := vit{file: ViTFile(dir)}
	if v.file == "" {
		return v, fmt.Errorf("%s: no onnx/vision_model.onnx or onnx/model.onnx (transformers.js layout)", dir)
	}
	type vc struct {
		PatchSize int `json:"patch_size"`
		Registers int `json:"num_register_tokens"`
	}
	var cfg struct {
		ModelType string `json:"model_type"`
		vc
		Vision *vc `json:"vision_config"`
	}
	if data, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		_ = json.Unmarshal(data, &cfg)
	}
	c := cfg.vc
	if cfg.Vision != nil && cfg.Vision.PatchSize > 0 {
		c = *cfg.Vision
	}
	v.patch, v.registers = c.PatchSize, c.Registers
	v.pre = DINOv2Preprocess
	v.desc = "vision transformer: self-attention over image patches (no timestep)"
	if strings.Contains(cfg.ModelType, "clip") || strings.Contains(filepath.Base(v.file), "vision_model") {
		v.pre = CLIPPreprocess
		v.desc = "CLIP image encoder (CLIP-AAS): self-attention over image patches (no timestep)"
	} else if strings.Contains(cfg.ModelType, "dinov2") {
		v.desc = "DINOv2 (DINOv2-AAS): self-attention over image patches (no timestep)"
	}
	p, err := readPreprocessor(filepath.Join(dir, "preprocessor_config.json"), v.pre)
	if err != nil {
		return v, err
	}
	v.pre = p
	return v, nil
}

// OpenGeneric loads a bare .onnx file with one image input [B, 3, H, W]. Its preprocessing is
// a guess (ImageNet normalisation) and says so.
func OpenGeneric(l features.Loader, name, file string, size int) (*Model, error) {
	m, err := open(l, name, "generic", "generic ONNX graph: ImageNet normalisation assumed (no timestep)", file, genericPreprocess(size))
	if err != nil {
		return nil, err
	}
	m.def = len(m.layers) - 1
	return m, nil
}

// genericPreprocess guesses ImageNet normalisation at 224 px, or at the size asked for.
func genericPreprocess(size int) Preprocess {
	pre := DINOv2Preprocess
	pre.Resize, pre.Crop = 0, 224
	if size > 0 {
		pre.Crop = size
	}
	return pre
}

func open(l features.Loader, name, family, desc, file string, pre Preprocess) (*Model, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	graph, err := onnx.ParseStructure(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	// A global embedding, when the graph has one, is the baseline beside AAS.
	var global string
	for _, o := range graph.GetGraph().GetOutput() {
		switch o.GetName() {
		case "image_embeds", "pooler_output":
			global = o.GetName()
		}
	}
	var extra []string
	if global != "" {
		extra = []string{global}
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, err
	}
	g, err := tapped.Load(l, file, data, dir, tapped.Options{Extra: extra, Inputs: imageShapes(file, pre.Crop)})
	if err != nil {
		return nil, err
	}
	input, crop, err := imageInput(file, g.Inputs(), pre.Crop)
	if err != nil {
		return nil, errors.Join(err, g.Close())
	}
	pre.Crop = crop
	return &Model{name: name, family: family, desc: desc, graph: g, input: input, pre: pre, global: global, layers: g.Describe(crop, crop)}, nil
}

// imageShapes is the shape Extract feeds the graph's image input at a batch: what the taps'
// shapes are inferred at.
func imageShapes(file string, crop int) func([]engine.IOInfo, int) map[string][]int64 {
	return func(declared []engine.IOInfo, batch int) map[string][]int64 {
		input, c, err := imageInput(file, declared, crop)
		if err != nil {
			return nil
		}
		return map[string][]int64{input: {int64(batch), 3, int64(c), int64(c)}}
	}
}

// imageInput finds the one image input [B, 3, H, W] of a graph and the size it is run at: the
// graph's own when it fixes a square one, else crop.
func imageInput(file string, inputs []engine.IOInfo, crop int) (string, int, error) {
	var input string
	var images int
	for _, in := range inputs {
		if in.Rank() == 4 || in.Rank() == -1 {
			images++
			input = in.Name
			if in.Rank() == 4 && in.Shape[2] > 0 && in.Shape[2] == in.Shape[3] {
				crop = int(in.Shape[2])
			}
		}
	}
	if images != 1 || len(inputs) != 1 {
		return "", 0, fmt.Errorf("%s: diffsim needs one image input [B, 3, H, W]; the graph has %v", file, inputs)
	}
	return input, crop, nil
}

func readPreprocessor(path string, def Preprocess) (Preprocess, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return def, nil
	}
	if err != nil {
		return def, err
	}
	var raw struct {
		DoResize     *bool           `json:"do_resize"`
		Size         json.RawMessage `json:"size"`
		CropSize     json.RawMessage `json:"crop_size"`
		DoCenterCrop *bool           `json:"do_center_crop"`
		DoNormalize  *bool           `json:"do_normalize"`
		ImageMean    []float32       `json:"image_mean"`
		ImageStd     []float32       `json:"image_std"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return def, fmt.Errorf("%s: %v", path, err)
	}
	p := def
	p.FromConfig = true
	if v, ok := sizeValue(raw.Size, "shortest_edge", "height"); ok {
		p.Resize = v
	}
	if v, ok := sizeValue(raw.CropSize, "height", "shortest_edge"); ok {
		p.Crop = v
	}
	if raw.DoCenterCrop != nil && !*raw.DoCenterCrop {
		p.Crop = p.Resize
	}
	if raw.DoResize != nil && !*raw.DoResize {
		p.Resize = 0
	}
	if raw.DoNormalize != nil {
		p.Normalise = *raw.DoNormalize
	}
	if len(raw.ImageMean) == 3 && len(raw.ImageStd) == 3 {
		copy(p.Mean[:], raw.ImageMean)
		copy(p.Std[:], raw.ImageStd)
	}
	if p.Crop <= 0 || p.Crop > 4096 || p.Resize < 0 || p.Resize > 4096 {
		return def, fmt.Errorf("%s: unusable sizes (resize %d, crop %d)", path, p.Resize, p.Crop)
	}
	return p, nil
}

// sizeValue reads 224 or {"shortest_edge": 224} or {"height": 224, "width": 224}.
func sizeValue(raw json.RawMessage, keys ...string) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil && n > 0 {
		return int(n), true
	}
	var obj map[string]float64
	if json.Unmarshal(raw, &obj) == nil {
		for _, k := range keys {
			if v, ok := obj[k]; ok && v > 0 {
				return int(v), true
			}
		}
	}
	return 0, false
}

// Pixels preprocesses one image to [3, Crop, Crop].
func (p Preprocess) Pixels(img image.Image) []float32 {
	var sized image.Image
	if p.Resize > 0 {
		sized = features.ResizeShortCrop(img, p.Resize, p.Crop)
	} else {
		sized = features.ResizeSquare(img, p.Crop)
	}
	mean, std := p.Mean, p.Std
	if !p.Normalise {
		mean, std = [3]float32{}, [3]float32{1, 1, 1}
	}
	return features.CHW(sized, mean, std)
}

// Info implements features.Model.
func (m *Model) Info() features.ModelInfo {
	return features.ModelInfo{Name: m.name, Family: m.family, Description: m.desc, Layers: m.layers, DefaultLayer: m.def, Size: m.pre.Crop,
		GlobalNeedsAll: true}
}

// Extract implements features.Model; t and seed are ignored: these models have no noise.
func (m *Model) Extract(ctx context.Context, imgs []image.Image, _ int, _ int64) ([]features.Extraction, error) {
	return m.extract(ctx, imgs, nil)
}

// ExtractLayers implements features.Pruner: the encoder cut down to the layers' taps (layer n
// of 12 needs n blocks). Its extractions have no global embedding (Info().GlobalNeedsAll).
func (m *Model) ExtractLayers(ctx context.Context, imgs []image.Image, _ int, _ int64, _ features.Conditioning, layers []int) ([]features.Extraction, error) {
	return m.extract(ctx, imgs, layers)
}

// ReleasePruned implements features.Pruner.
func (m *Model) ReleasePruned() error { return m.graph.ReleasePruned() }

// extract runs the encoder on imgs, whole (layers nil) or cut down to layers.
func (m *Model) extract(ctx context.Context, imgs []image.Image, layers []int) ([]features.Extraction, error) {
	c := m.pre.Crop
	px := make([]float32, 0, len(imgs)*3*c*c)
	for _, img := range imgs {
		px = append(px, m.pre.Pixels(img)...)
	}
	in := engine.F32(m.input, []int64{int64(len(imgs)), 3, int64(c), int64(c)}, px)
	var res tapped.Result
	var err error
	if layers == nil {
		res, err = m.graph.Run(ctx, c, c, in)
	} else {
		res, err = m.graph.RunLayers(ctx, layers, c, c, in)
	}
	if err != nil {
		return nil, err
	}
	out := make([]features.Extraction, len(imgs))
	for i := range out {
		out[i].Layers = res.Features[i]
		if layers != nil {
			continue // the global embedding needs the whole network
		}
		if m.global != "" {
			g := res.Extra[m.global]
			per := len(g.Float32) / len(imgs)
			out[i].Global = g.Float32[i*per : (i+1)*per]
		} else if len(out[i].Layers) > 0 {
			out[i].Global = cls(out[i].Layers[len(out[i].Layers)-1])
		}
	}
	return out, nil
}

// cls is the first token's value vector of a layer with a CLS token, as a fallback global
// embedding; nil when the layer has none.
func cls(f features.Features) []float32 {
	if f.Prefix < 1 {
		return nil
	}
	c := f.Channels()
	v := f.V[:c]
	if math.IsNaN(float64(v[0])) {
		return nil
	}
	return v
}

// Close frees the session.
func (m *Model) Close() error { return m.graph.Close() }
