package ipadapter

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/safetensors"
	"github.com/diffsim/diffsim/features/vision"
)

// Options locate an IP-Adapter Plus and its image encoder.
type Options struct {
	Adapter      string  // ip-adapter-plus_sd15.safetensors ("image_proj.*" and "ip_adapter.*" tensors)
	ImageEncoder string  // the CLIP ViT-H/14 image encoder as ONNX (e.g. optimum's image_encoder/model.onnx)
	Scale        float32 // IP attention weight in the U-Net; Open uses DefaultScale when 0 and ScaleSet is false
	ScaleSet     bool    // Scale was given (so 0 means off)
	HeadDim      int     // Resampler head size; 0 means DefaultHeadDim
}

// Adapter turns images into IP tokens and U-Net graphs into IP-Adapter U-Nets.
type Adapter struct {
	weights *safetensors.File
	encoder engine.Runner
	encIn   string
	tap     string
	res     engine.Runner
	shape   ResamplerShape
	scale   float32
	pre     vision.Preprocess

	mu     sync.Mutex
	cached map[image.Image][]float32 // IP tokens per image (the images a session holds)
}

// Open reads the adapter's weights, builds the Resampler and loads it and the image encoder
// (with its penultimate hidden state tapped). Images are preprocessed as IP-Adapter's
// CLIPImageProcessor() does: shortest side to 224 (bicubic), centre crop 224, CLIP mean and std.
func Open(l features.Loader, o Options) (*Adapter, error) {
	a := &Adapter{scale: o.Scale, pre: vision.CLIPPreprocess, cached: map[image.Image][]float32{}}
	if !o.ScaleSet && o.Scale == 0 {
		a.scale = DefaultScale
	}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if strings.HasSuffix(o.Adapter, ".bin") || strings.HasSuffix(o.Adapter, ".pt") {
		return nil, fmt.Errorf("--ip-adapter %s: a PyTorch pickle; diffsim reads the .safetensors release (ip-adapter-plus_sd15.safetensors)", o.Adapter)
	}
	var err error
	if a.weights, err = safetensors.Open(o.Adapter); err != nil {
		return nil, fmt.Errorf("--ip-adapter: %w", err)
	}
	res, shape, err := BuildResampler(a.weights, ResamplerOptions{HeadDim: o.HeadDim})
	if err != nil {
		return nil, fmt.Errorf("--ip-adapter %s: %w", o.Adapter, err)
	}
	a.shape = shape
	resBytes, err := onnx.Marshal(res)
	if err != nil {
		return nil, err
	}
	if a.res, err = l.Load(resBytes, engine.SessionOptions{}); err != nil {
		return nil, fmt.Errorf("IP-Adapter Resampler: %w", err)
	}
	if err := a.openEncoder(l, o.ImageEncoder); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

func (a *Adapter) openEncoder(l features.Loader, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--image-encoder: %w", err)
	}
	m, err := onnx.Parse(data)
	if err != nil {
		return fmt.Errorf("--image-encoder %s: %w", path, err)
	}
	if a.tap, err = Penultimate(m); err != nil {
		return fmt.Errorf("--image-encoder %s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return err
	}
	if a.encoder, err = l.Load(onnx.AppendOutputs(data, []string{a.tap}), engine.SessionOptions{ExternalDataDir: dir, Outputs: []string{a.tap}}); err != nil {
		return fmt.Errorf("--image-encoder %s: %w", path, err)
	}
	ins := a.encoder.Inputs()
	if len(ins) != 1 {
		return fmt.Errorf("--image-encoder %s: %d inputs; diffsim feeds one image (pixel_values)", path, len(ins))
	}
	a.encIn = ins[0].Name
	return nil
}

// Shape is the Resampler's shape as its weights say.
func (a *Adapter) Shape() ResamplerShape { return a.shape }

// Scale is the IP attention weight InjectUNet uses.
func (a *Adapter) Scale() float32 { return a.scale }

// Tokens returns the IP tokens of the images, one batch: [len(imgs), queries, output]
// (16 × 768 for SD 1.5), named TokensInput, ready to feed an injected U-Net. Each image's
// tokens are cached, so an image compared with many others is encoded once.
func (a *Adapter) Tokens(ctx context.Context, imgs []image.Image) (engine.Tensor, error) {
	if len(imgs) == 0 {
		return engine.Tensor{}, errors.New("IP tokens: no image")
	}
	per := a.shape.Queries * a.shape.Output
	out := make([]float32, len(imgs)*per)
	var todo []int
	a.mu.Lock()
	for i, img := range imgs {
		if t, ok := a.cached[img]; ok {
			copy(out[i*per:], t)
		} else {
			todo = append(todo, i)
		}
	}
	a.mu.Unlock()
	if len(todo) > 0 {
		batch := make([]image.Image, len(todo))
		for k, i := range todo {
			batch[k] = imgs[i]
		}
		toks, err := a.encode(ctx, batch)
		if err != nil {
			return engine.Tensor{}, err
		}
		a.mu.Lock()
		if len(a.cached) > 64 {
			clear(a.cached)
		}
		for k, i := range todo {
			t := toks[k*per : (k+1)*per]
			copy(out[i*per:], t)
			a.cached[imgs[i]] = t
		}
		a.mu.Unlock()
	}
	return engine.F32(TokensInput, []int64{int64(len(imgs)), int64(a.shape.Queries), int64(a.shape.Output)}, out), nil
}

// encode runs the image encoder and the Resampler on a batch.
func (a *Adapter) encode(ctx context.Context, imgs []image.Image) ([]float32, error) {
	var px []float32
	for _, img := range imgs {
		px = append(px, a.pre.Pixels(img)...)
	}
	n, side := int64(len(imgs)), int64(a.pre.Crop)
	out, err := a.encoder.Run(ctx, engine.F32(a.encIn, []int64{n, 3, side, side}, px))
	if err != nil {
		return nil, fmt.Errorf("image encoder: %w", err)
	}
	hidden := out[0]
	if len(hidden.Shape) != 3 || int(hidden.Shape[2]) != a.shape.Embedding {
		return nil, fmt.Errorf("image encoder: penultimate state %q has shape %v; the adapter's Resampler reads width %d (a ViT-H/14 image encoder gives 1280)", a.tap, hidden.Shape, a.shape.Embedding)
	}
	hidden.Name = ResamplerInput
	toks, err := a.res.Run(ctx, hidden)
	if err != nil {
		return nil, fmt.Errorf("IP-Adapter Resampler: %w", err)
	}
	if want := []int64{n, int64(a.shape.Queries), int64(a.shape.Output)}; !sameShape(toks[0].Shape, want) {
		return nil, fmt.Errorf("IP-Adapter Resampler: output shape %v, want %v", toks[0].Shape, want)
	}
	return toks[0].Float32, nil
}

// InjectUNet reads the U-Net at path and returns the bytes of the same graph with IP
// attention in every text cross-attention layer, and what it added. External weights stay
// where they are: load the bytes with dir as engine.SessionOptions.ExternalDataDir (or
// tapped.Load(l, path, data, dir, tapped.Options{})).
func (a *Adapter) InjectUNet(path string) (data []byte, dir string, inj Injection, err error) {
	m, err := onnx.ReadFile(path)
	if err != nil {
		return nil, "", inj, err
	}
	if inj, err = Inject(m, a.weights, InjectOptions{Scale: a.scale}); err != nil {
		return nil, "", inj, fmt.Errorf("%s: %w", path, err)
	}
	if inj.Width != a.shape.Output {
		return nil, "", inj, fmt.Errorf("%s: the U-Net's cross-attention width is %d, the adapter's IP tokens are %d wide", path, inj.Width, a.shape.Output)
	}
	if data, err = onnx.Marshal(m); err != nil {
		return nil, "", inj, err
	}
	dir, err = filepath.Abs(filepath.Dir(path))
	return data, dir, inj, err
}

// Close frees the sessions and the weight file; it is idempotent.
func (a *Adapter) Close() error {
	var errs []error
	if a.encoder != nil {
		errs = append(errs, a.encoder.Close())
		a.encoder = nil
	}
	if a.res != nil {
		errs = append(errs, a.res.Close())
		a.res = nil
	}
	if a.weights != nil {
		errs = append(errs, a.weights.Close())
		a.weights = nil
	}
	return errors.Join(errs...)
}

// Describe adjusts the layer list of an injected U-Net (tapped.Model.Describe): each IP
// attention, "<attn2 path>.ip", is cross-attention whose keys and values come from an image
// (ImageKV true: the "ip_tokens" input name would otherwise read as text conditioning) and gets
// the paper's short name with ".ip" (Up0.ip for up_blocks.1.attentions.2's attn2); the text
// attn2 layers stay ImageKV false. It returns the index of the IP layer of the paper's default
// block (Up0), or -1.
func (inj Injection) Describe(layers []features.Layer) int {
	byAttn2 := map[string]string{}
	for _, l := range layers {
		if strings.HasSuffix(l.Name, ".attn2") {
			byAttn2[l.Name] = l.Short
		}
	}
	ip := map[string]bool{}
	for _, il := range inj.Layers {
		ip[il.IPName] = true
	}
	def := -1
	for i := range layers {
		l := &layers[i]
		if !ip[l.Name] {
			continue
		}
		l.Kind = features.CrossAttention
		l.ImageKV = true
		if short := byAttn2[strings.TrimSuffix(l.Name, LayerSuffix)]; short != "" {
			l.Short = strings.TrimSuffix(short, ".x") + LayerSuffix
		}
		if l.Short == "Up0"+LayerSuffix {
			def = i
		}
	}
	return def
}
