package session

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/builtin"
	"github.com/diffsim/diffsim/features/diffusion"
	"github.com/diffsim/diffsim/features/ipadapter"
	"github.com/diffsim/diffsim/features/safetensors"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/features/vision"
)

// Inspection describes a model without running it: what `diffsim models inspect` prints.
type Inspection struct {
	Model   string           `json:"model"`
	Kind    string           `json:"kind"`
	Path    string           `json:"path,omitempty"`
	Graph   string           `json:"graph,omitempty"`
	Size    int              `json:"size,omitempty"`
	Inputs  []engine.IOInfo  `json:"inputs"`
	Outputs []engine.IOInfo  `json:"outputs"`
	Layers  []InspectedLayer `json:"layers"`
	// IPAdapter is set when an IP-Adapter's attention was added to the graph (DiffSim-C):
	// the inputs then include ip_tokens and the layers the ".ip" attentions.
	IPAdapter *InspectedAdapter `json:"ip_adapter,omitempty"`
}

// InspectOptions say how Inspect reads a model.
type InspectOptions struct {
	Size int // working size the token grids are given at; 0 = the model's default
	// IPAdapter adds the adapter's IP attention to a diffusion U-Net (as --ip-adapter does when
	// scoring), so the layer list is DiffSim-C's; a model folder holding its own adapter gets
	// it without. ImageEncoder, optional here, is checked for the hidden state the adapter
	// reads.
	IPAdapter, ImageEncoder string
}

// InspectedAdapter says what an IP-Adapter adds to a U-Net.
type InspectedAdapter struct {
	Path         string `json:"path"`
	Tokens       int    `json:"tokens"` // IP tokens per image: the Resampler's queries
	Width        int    `json:"width"`  // their width, the U-Net's cross-attention width
	Layers       int    `json:"layers"` // attn2 layers given IP attention
	ImageEncoder string `json:"image_encoder,omitempty"`
	Penultimate  string `json:"penultimate,omitempty"` // the encoder tensor the Resampler reads
}

// InspectedLayer is one row of the layer table.
type InspectedLayer struct {
	Index    int     `json:"index"`
	Name     string  `json:"name"`
	Short    string  `json:"short,omitempty"`
	Group    string  `json:"group,omitempty"`
	Kind     string  `json:"kind"`
	ImageKV  bool    `json:"image_kv"`
	GridH    int     `json:"grid_h,omitempty"`
	GridW    int     `json:"grid_w,omitempty"`
	Tokens   int     `json:"tokens,omitempty"`
	Prefix   int     `json:"prefix,omitempty"`
	Channels int     `json:"channels"`
	Heads    int     `json:"heads"`
	HeadDim  int     `json:"head_dim"`
	Scale    float64 `json:"scale"`
	Op       string  `json:"op"`
	Tensors  Tapped  `json:"tensors"`
}

// Tapped names the graph tensors a layer's features are read from.
type Tapped struct {
	Q   string `json:"q"`
	K   string `json:"k"`
	V   string `json:"v"`
	Out string `json:"out,omitempty"`
}

// Inspect reads a model's graph, finds its attention layers and describes them, loading no
// weights and starting no runtime.
func Inspect(arg string, o InspectOptions) (Inspection, error) {
	loc, err := store.Resolve(arg, store.Options{})
	if err != nil {
		return Inspection{}, usageError(err)
	}
	ins := Inspection{Model: loc.Name, Kind: string(loc.Kind), Path: loc.Path}
	size := o.Size
	if o.IPAdapter == "" && o.ImageEncoder != "" {
		return ins, usagef("--image-encoder goes with --ip-adapter (the IP-Adapter Plus weights)")
	}
	if o.IPAdapter != "" && loc.Kind != store.KindDiffusion {
		return ins, usagef("--ip-adapter needs a Stable Diffusion model (a diffusers folder or a pulled sd15), not %s (%s)", loc.Name, loc.Kind)
	}
	var g *onnxpb.ModelProto
	var static []features.Layer
	switch loc.Kind {
	case store.KindBuiltin:
		if size == 0 {
			size = builtin.DefaultSize
		}
		if g, err = builtin.Graph(size); err != nil {
			return ins, usageError(err)
		}
		ins.Graph = "(generated in Go)"
		static = builtin.Layers()
	case store.KindDiffusion, store.KindViT, store.KindGeneric:
		ins.Graph = loc.Path
		if loc.Graph != "" && filepath.Ext(loc.Path) != ".onnx" {
			ins.Graph = graphIn(loc.Path, loc.Graph)
		}
		if g, err = onnx.ReadFile(ins.Graph); err != nil {
			return ins, usageError(err)
		}
	default:
		return ins, usagef("%s is not a model diffsim knows how to read", loc.Path)
	}
	var inj *ipadapter.Injection
	if loc.Kind == store.KindDiffusion {
		if o.IPAdapter == "" {
			o.IPAdapter, o.ImageEncoder = folderAdapter(loc.Path)
		}
		if o.IPAdapter != "" {
			if ins.IPAdapter, inj, err = inspectAdapter(g, ins.Graph, o); err != nil {
				return ins, err
			}
		}
	}
	layers, err := attention.Find(g)
	if err != nil {
		return ins, usageError(fmt.Errorf("%s: %w", ins.Graph, err))
	}
	if static == nil {
		static = describe(layers)
		switch loc.Kind {
		case store.KindDiffusion:
			if size == 0 {
				size = diffusion.DefaultSize
			}
			diffusion.SetGrids(static, size)
		case store.KindViT:
			size = vitGrids(static, loc.Path)
		}
	}
	ins.Size = size
	ins.Inputs, ins.Outputs = graphIO(g)
	for i, l := range layers {
		s := static[i]
		ins.Layers = append(ins.Layers, InspectedLayer{
			Index: i, Name: l.Name, Short: l.Short, Group: l.Group, Kind: string(l.Kind), ImageKV: l.ImageKV,
			GridH: s.GridH, GridW: s.GridW, Tokens: s.Tokens, Prefix: s.Prefix,
			Channels: l.Channels(), Heads: l.Heads, HeadDim: l.HeadDim, Scale: l.Scale, Op: l.Op,
			Tensors: Tapped{Q: l.Q, K: l.K, V: l.V, Out: l.Out},
		})
	}
	if inj != nil {
		// The finder reads ip_tokens as text conditioning; the injection knows better.
		described := make([]features.Layer, len(ins.Layers))
		for i, l := range ins.Layers {
			described[i] = features.Layer{Name: l.Name, Short: l.Short, Kind: features.Kind(l.Kind), ImageKV: l.ImageKV}
		}
		inj.Describe(described)
		for i, l := range described {
			ins.Layers[i].Short, ins.Layers[i].Kind, ins.Layers[i].ImageKV = l.Short, string(l.Kind), l.ImageKV
		}
	}
	return ins, nil
}

// inspectAdapter adds the IP attention of the adapter o names to the U-Net graph g, in place
// and without loading g's weights, and checks that the adapter's tokens fit the U-Net and, when
// o names one, that the image encoder has the hidden state the adapter reads.
func inspectAdapter(g *onnxpb.ModelProto, graph string, o InspectOptions) (*InspectedAdapter, *ipadapter.Injection, error) {
	if strings.HasSuffix(o.IPAdapter, ".bin") || strings.HasSuffix(o.IPAdapter, ".pt") {
		return nil, nil, usagef("--ip-adapter %s: a PyTorch pickle; diffsim reads the .safetensors release (ip-adapter-plus_sd15.safetensors)", o.IPAdapter)
	}
	f, err := safetensors.Open(o.IPAdapter)
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("--ip-adapter: %w", err))
	}
	defer f.Close()
	shape, err := ipadapter.ReadResamplerShape(f, ipadapter.ResamplerOptions{})
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("--ip-adapter %s: %w", o.IPAdapter, err))
	}
	inj, err := ipadapter.Inject(g, f, ipadapter.InjectOptions{Scale: ipadapter.DefaultScale})
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("--ip-adapter %s on %s: %w", o.IPAdapter, graph, err))
	}
	if inj.Width != shape.Output {
		return nil, nil, usagef("--ip-adapter %s: its IP tokens are %d wide, the U-Net's cross-attention (%s) reads %d", o.IPAdapter, shape.Output, graph, inj.Width)
	}
	a := &InspectedAdapter{Path: o.IPAdapter, Tokens: shape.Queries, Width: inj.Width, Layers: len(inj.Layers), ImageEncoder: o.ImageEncoder}
	if o.ImageEncoder != "" {
		enc, err := onnx.ReadFile(o.ImageEncoder)
		if err != nil {
			return nil, nil, usageError(fmt.Errorf("--image-encoder: %w", err))
		}
		if a.Penultimate, err = ipadapter.Penultimate(enc); err != nil {
			return nil, nil, usageError(fmt.Errorf("--image-encoder %s: %w", o.ImageEncoder, err))
		}
	}
	return a, &inj, nil
}

func describe(layers []attention.Layer) []features.Layer {
	out := make([]features.Layer, len(layers))
	for i, l := range layers {
		out[i] = features.Layer{Index: i, Name: l.Name, Heads: l.Heads, HeadDim: l.HeadDim}
	}
	return out
}

// vitGrids reads image_size, patch_size and num_register_tokens from a transformers config
// (top level or vision_config) and returns the crop size.
func vitGrids(layers []features.Layer, dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return 0
	}
	type vc struct {
		ImageSize int `json:"image_size"`
		PatchSize int `json:"patch_size"`
		Registers int `json:"num_register_tokens"`
	}
	var cfg struct {
		vc
		Vision *vc `json:"vision_config"`
	}
	if json.Unmarshal(data, &cfg) != nil {
		return 0
	}
	c := cfg.vc
	if cfg.Vision != nil && cfg.Vision.PatchSize > 0 {
		c = *cfg.Vision
	}
	crop := vision.CLIPPreprocess.Crop
	if c.ImageSize > 0 {
		crop = c.ImageSize
	}
	if c.PatchSize <= 0 {
		return crop
	}
	g := crop / c.PatchSize
	for i := range layers {
		layers[i].GridH, layers[i].GridW, layers[i].Prefix = g, g, 1+c.Registers
		layers[i].Tokens = g*g + 1 + c.Registers
	}
	return crop
}

func graphIO(g *onnxpb.ModelProto) (ins, outs []engine.IOInfo) {
	inits := map[string]bool{}
	for _, t := range g.GetGraph().GetInitializer() {
		inits[t.GetName()] = true
	}
	conv := func(vi *onnxpb.ValueInfoProto) engine.IOInfo {
		info := engine.IOInfo{Name: vi.GetName()}
		tt := vi.GetType().GetTensorType()
		if tt == nil {
			return info
		}
		info.Type = engine.ElemType(tt.GetElemType())
		for _, d := range tt.GetShape().GetDim() {
			if v, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
				info.Shape = append(info.Shape, v.DimValue)
				info.Dims = append(info.Dims, "")
			} else {
				info.Shape = append(info.Shape, -1)
				info.Dims = append(info.Dims, d.GetDimParam())
			}
		}
		return info
	}
	for _, vi := range g.GetGraph().GetInput() {
		if !inits[vi.GetName()] {
			ins = append(ins, conv(vi))
		}
	}
	for _, vi := range g.GetGraph().GetOutput() {
		outs = append(outs, conv(vi))
	}
	return ins, outs
}
