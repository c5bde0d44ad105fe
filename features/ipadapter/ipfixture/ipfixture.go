// Package ipfixture generates IP-Adapter Plus inputs for tests: adapter weights with the real
// key names ("image_proj.*" for the Resampler, "ip_adapter.<k>.to_{k,v}_ip.weight" per
// cross-attention layer) at any size, and, for a generated U-Net, the two files DiffSim-C
// opens: the adapter's .safetensors and a CLIP-vision image encoder .onnx
// (testgraphs.CLIPVision). It does not import package ipadapter, so that package's own tests
// use it too; it states the adapter's key order independently of the code under test.
package ipfixture

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features/safetensors"
)

// Shape is a Resampler's shape. Its fields are ipadapter.ResamplerShape's, in the same order,
// so either converts to the other: ipadapter.ResamplerShape(s).
type Shape struct {
	Embedding, Dim, Queries, Output, Depth int
	Heads, HeadDim, FeedForward            int
}

// TinyShape is a Resampler at small sizes with IP-Adapter Plus's structure: 4 layers, 16
// queries, width 16 (TinyUNet's context width), image features of width 24
// (TinyCLIPVision's); heads of 8, so opening it needs ResamplerOptions.HeadDim = 8.
func TinyShape() Shape {
	return Shape{Embedding: 24, Dim: 16, Queries: 16, Output: 16, Depth: 4, Heads: 2, HeadDim: 8, FeedForward: 64}
}

// DefaultHeadShape is a small Resampler whose one head has IP-Adapter Plus's size (64), so
// code that opens an adapter without naming the head size (a session, the CLI) reads it;
// output width out, image features of width 24.
func DefaultHeadShape(out int) Shape {
	return Shape{Embedding: 24, Dim: 16, Queries: 16, Output: out, Depth: 2, Heads: 1, HeadDim: 64, FeedForward: 64}
}

// Weights is a growing set of random tensors, with the values a reader of the encoded file
// gets back (rounded through float16 when the set is half precision).
type Weights struct {
	Tensors []safetensors.Tensor
	Values  map[string][]float32
	rng     *rand.Rand
	half    bool
}

// NewWeights starts an empty set drawing from seed; half stores float16 tensors, as the
// released adapters do.
func NewWeights(seed uint64, half bool) *Weights {
	return &Weights{Values: map[string][]float32{}, rng: rand.New(rand.NewPCG(seed, 7)), half: half}
}

// Add stores a random tensor (normal, std around mean).
func (w *Weights) Add(name string, mean, std float64, shape ...int64) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + w.rng.NormFloat64()*std)
		if w.half {
			v[i] = onnx.HalfToFloat(onnx.FloatToHalf(v[i]))
		}
	}
	w.Values[name] = v
	if w.half {
		w.Tensors = append(w.Tensors, safetensors.Float16s(name, shape, v))
	} else {
		w.Tensors = append(w.Tensors, safetensors.Float32s(name, shape, v))
	}
}

// AddResampler adds the Resampler's "image_proj.*" tensors.
func (w *Weights) AddResampler(r Shape) {
	e, d, q, o, inner, ff := int64(r.Embedding), int64(r.Dim), int64(r.Queries), int64(r.Output), int64(r.Heads*r.HeadDim), int64(r.FeedForward)
	w.Add("image_proj.latents", 0, 1/math.Sqrt(float64(d)), 1, q, d)
	w.Add("image_proj.proj_in.weight", 0, 1/math.Sqrt(float64(e)), d, e)
	w.Add("image_proj.proj_in.bias", 0, 0.1, d)
	for i := range r.Depth {
		p := fmt.Sprintf("image_proj.layers.%d.", i)
		for _, ln := range []string{"0.norm1", "0.norm2", "1.0"} {
			w.Add(p+ln+".weight", 1, 0.2, d)
			w.Add(p+ln+".bias", 0, 0.1, d)
		}
		w.Add(p+"0.to_q.weight", 0, 1/math.Sqrt(float64(d)), inner, d)
		w.Add(p+"0.to_kv.weight", 0, 1/math.Sqrt(float64(d)), 2*inner, d)
		w.Add(p+"0.to_out.weight", 0, 1/math.Sqrt(float64(inner)), d, inner)
		w.Add(p+"1.1.weight", 0, 1/math.Sqrt(float64(d)), ff, d)
		w.Add(p+"1.3.weight", 0, 1/math.Sqrt(float64(ff)), d, ff)
	}
	w.Add("image_proj.proj_out.weight", 0, 1/math.Sqrt(float64(d)), o, d)
	w.Add("image_proj.proj_out.bias", 0, 0.1, o)
	w.Add("image_proj.norm_out.weight", 1, 0.2, o)
	w.Add("image_proj.norm_out.bias", 0, 0.1, o)
}

// AddIPLayers adds "ip_adapter.<k>.to_{k,v}_ip.weight" ([C, ctx], PyTorch layout) for the
// cross-attention layers among layers, keyed as Keys says, and returns the keys. Layers Keys
// does not list (self-attention) are skipped.
func (w *Weights) AddIPLayers(layers []attention.Layer, ctx int) (map[string]int, error) {
	keys, err := Keys(layers)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		k, ok := keys[l.Name]
		if !ok {
			continue
		}
		c := int64(l.Channels())
		w.Add(fmt.Sprintf("ip_adapter.%d.to_k_ip.weight", k), 0, 1/math.Sqrt(float64(ctx)), c, int64(ctx))
		w.Add(fmt.Sprintf("ip_adapter.%d.to_v_ip.weight", k), 0, 1/math.Sqrt(float64(ctx)), c, int64(ctx))
	}
	return keys, nil
}

// Keys lists the SD 1.5 attn2 layers in diffusers' attn_processors order (the U-Net registers
// down_blocks, up_blocks, then mid_block) and gives the i-th key 2i+1. It fails when layers
// lack one of the 16.
func Keys(layers []attention.Layer) (map[string]int, error) {
	var order []string
	for b, n := range []int{2, 2, 2} {
		for a := range n {
			order = append(order, fmt.Sprintf("down_blocks.%d.attentions.%d.transformer_blocks.0.attn2", b, a))
		}
	}
	for b := 1; b <= 3; b++ {
		for a := range 3 {
			order = append(order, fmt.Sprintf("up_blocks.%d.attentions.%d.transformer_blocks.0.attn2", b, a))
		}
	}
	order = append(order, "mid_block.attentions.0.transformer_blocks.0.attn2")
	have := map[string]bool{}
	for _, l := range layers {
		have[l.Name] = true
	}
	keys := map[string]int{}
	for i, name := range order {
		if !have[name] {
			return nil, fmt.Errorf("ipfixture: the U-Net has no layer %s (SD 1.5's 16 attn2 layers are expected)", name)
		}
		keys[name] = 2*i + 1
	}
	return keys, nil
}

// Encode is the set as a .safetensors file with the given metadata.
func (w *Weights) Encode(meta map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, w.Tensors, meta); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// File is the set encoded (metadata format=pt, as PyTorch writes it) and opened from memory.
func (w *Weights) File() (*safetensors.File, error) {
	data, err := w.Encode(map[string]string{"format": "pt"})
	if err != nil {
		return nil, err
	}
	return safetensors.NewReader(bytes.NewReader(data), int64(len(data)))
}

// WriteFile writes the set to path as a .safetensors file without metadata.
func (w *Weights) WriteFile(path string) error {
	data, err := w.Encode(nil)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// Names of the files Write writes, relative to its folder: the names a model folder holding
// its own adapter uses.
const (
	AdapterFile = "ip-adapter-plus_sd15.safetensors"
	EncoderFile = "image_encoder/model.onnx"
)

// Files are what Write wrote.
type Files struct {
	Adapter      string         // the adapter weights, float16
	ImageEncoder string         // testgraphs.CLIPVision(TinyCLIPVision())
	Shape        Shape          // the Resampler's: DefaultHeadShape of the U-Net's context width
	Keys         map[string]int // adapter key per attn2 layer
}

// Write generates an adapter for the SD-1.5-shaped U-Net graph at unetPath (its weights may be
// external: only its structure is read) and writes AdapterFile and EncoderFile into dir. The
// adapter's Resampler reads the encoder's width-24 features with 64-wide heads, so it opens
// with the default options; its output width is the U-Net's context width (the last dimension
// of encoder_hidden_states).
func Write(dir, unetPath string, seed uint64) (Files, error) {
	var f Files
	m, err := onnx.ReadFile(unetPath)
	if err != nil {
		return f, err
	}
	ctx := 0
	for _, in := range m.GetGraph().GetInput() {
		if in.GetName() == "encoder_hidden_states" {
			dims := in.GetType().GetTensorType().GetShape().GetDim()
			if len(dims) > 0 {
				ctx = int(dims[len(dims)-1].GetDimValue())
			}
		}
	}
	if ctx <= 0 {
		return f, fmt.Errorf("ipfixture: %s: no encoder_hidden_states input of a fixed width", unetPath)
	}
	layers, err := attention.Find(m)
	if err != nil {
		return f, fmt.Errorf("ipfixture: %s: %w", unetPath, err)
	}
	var cross []attention.Layer
	for _, l := range layers {
		if l.Kind == attention.Cross && !l.ImageKV {
			cross = append(cross, l)
		}
	}
	enc := testgraphs.TinyCLIPVision()
	f.Shape = DefaultHeadShape(ctx)
	f.Shape.Embedding = enc.Width
	w := NewWeights(seed, true)
	w.AddResampler(f.Shape)
	if f.Keys, err = w.AddIPLayers(cross, ctx); err != nil {
		return f, fmt.Errorf("ipfixture: %s: %w", unetPath, err)
	}
	f.Adapter = filepath.Join(dir, AdapterFile)
	f.ImageEncoder = filepath.Join(dir, filepath.FromSlash(EncoderFile))
	if err := w.WriteFile(f.Adapter); err != nil {
		return f, err
	}
	if err := os.MkdirAll(filepath.Dir(f.ImageEncoder), 0o755); err != nil {
		return f, err
	}
	g, _ := testgraphs.CLIPVision(enc)
	return f, onnx.WriteFile(f.ImageEncoder, g)
}
