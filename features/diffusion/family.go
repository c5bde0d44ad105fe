package diffusion

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/ipadapter"
	"github.com/diffsim/diffsim/features/safetensors"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/features/tapped"
)

// Family registers Stable Diffusion U-Nets (diffusers/optimum ONNX folders), with an
// IP-Adapter for DiffSim-C when one is asked for or the folder holds one.
type Family struct{}

// Kind implements features.Family.
func (Family) Kind() store.Kind { return store.KindDiffusion }

func unetFile(src features.Source) string {
	if src.Graph != "" && filepath.Base(filepath.Dir(src.Graph)) == "unet" {
		return src.Graph
	}
	return filepath.Join(src.Path, "unet", "model.onnx")
}

// adapterFor is the IP-Adapter o names, or the one the model folder holds; zero when none.
func adapterFor(dir string, o features.AdapterOptions) (features.AdapterOptions, error) {
	if o.Weights == "" && o.ImageEncoder == "" {
		o.Weights, o.ImageEncoder = folderAdapter(dir)
		return o, nil
	}
	if strings.HasSuffix(o.Weights, ".bin") || strings.HasSuffix(o.Weights, ".pt") {
		return o, fmt.Errorf("--ip-adapter %s: a PyTorch pickle; diffsim reads the .safetensors release (ip-adapter-plus_sd15.safetensors)", o.Weights)
	}
	return o, nil
}

// folderAdapter finds the IP-Adapter a model folder holds: one ip-adapter*.safetensors beside
// image_encoder/model.onnx; "", "" when it holds none.
func folderAdapter(dir string) (adapter, encoder string) {
	found, _ := filepath.Glob(filepath.Join(dir, "ip-adapter*.safetensors"))
	enc := filepath.Join(dir, "image_encoder", "model.onnx")
	if _, err := os.Stat(enc); err != nil || len(found) != 1 {
		return "", ""
	}
	return found[0], enc
}

// Open implements features.Family.
func (Family) Open(ctx context.Context, l features.Loader, src features.Source, o features.OpenOptions) (features.Model, error) {
	ao, err := adapterFor(src.Path, o.IPAdapter)
	if err != nil {
		return nil, err
	}
	var ip *ipadapter.Adapter
	if ao.Weights != "" || ao.ImageEncoder != "" {
		if ao.Weights == "" || ao.ImageEncoder == "" {
			return nil, fmt.Errorf("DiffSim-C needs both --ip-adapter (ip-adapter-plus_sd15.safetensors) and --image-encoder (the CLIP ViT-H/14 image encoder .onnx)")
		}
		if ip, err = ipadapter.Open(l, ipadapter.Options{Adapter: ao.Weights, ImageEncoder: ao.ImageEncoder, Scale: float32(ao.Scale), ScaleSet: true}); err != nil {
			return nil, err
		}
	}
	return OpenWithAdapter(ctx, l, src.Name, src.Path, o.Size, ip)
}

// Describe implements features.Family: the U-Net's layers at the working size (token grids
// inferred from the graph at that size, as scoring infers them), with the
// IP-Adapter's attention added when one is asked for or the folder holds one (so the table
// lists the .ip layers DiffSim-C scores). No weights are loaded.
func (Family) Describe(src features.Source, o features.OpenOptions) (features.Description, error) {
	if o.IPAdapter.Weights == "" && o.IPAdapter.ImageEncoder != "" {
		return features.Description{}, fmt.Errorf("--image-encoder goes with --ip-adapter (the IP-Adapter Plus weights)")
	}
	ao, err := adapterFor(src.Path, o.IPAdapter)
	if err != nil {
		return features.Description{}, err
	}
	d := features.Description{Graph: unetFile(src)}
	g, err := onnx.ReadFile(d.Graph)
	if err != nil {
		return d, err
	}
	declared, _ := tapped.GraphIO(g)
	if d.Size, err = WorkingSize(declared, o.Size); err != nil {
		return d, fmt.Errorf("%s: %w", d.Graph, err)
	}
	var inj *ipadapter.Injection
	if ao.Weights != "" {
		if d.IPAdapter, inj, err = describeAdapter(g, d.Graph, ao); err != nil {
			return d, err
		}
	}
	inputs := func(declared []engine.IOInfo, batch int) map[string][]int64 {
		return UNetInputs(declared, d.Size, batch)
	}
	if d.Inputs, d.Outputs, d.Layers, err = tapped.Inspect(g, inputs, d.Size/8, d.Size/8); err != nil {
		return d, fmt.Errorf("%s: %w", d.Graph, err)
	}
	if inj != nil {
		// The finder reads ip_tokens as text conditioning; the injection knows better.
		inj.Describe(d.Layers)
	}
	return d, nil
}

// describeAdapter adds the IP attention of the adapter o names to the U-Net graph g, in place
// and without loading g's weights, and checks that the adapter's tokens fit the U-Net and, when
// o names one, that the image encoder has the hidden state the adapter reads.
func describeAdapter(g *onnxpb.ModelProto, graph string, o features.AdapterOptions) (*features.AdapterInfo, *ipadapter.Injection, error) {
	f, err := safetensors.Open(o.Weights)
	if err != nil {
		return nil, nil, fmt.Errorf("--ip-adapter: %w", err)
	}
	defer f.Close()
	shape, err := ipadapter.ReadResamplerShape(f, ipadapter.ResamplerOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("--ip-adapter %s: %w", o.Weights, err)
	}
	inj, err := ipadapter.Inject(g, f, ipadapter.InjectOptions{Scale: ipadapter.DefaultScale})
	if err != nil {
		return nil, nil, fmt.Errorf("--ip-adapter %s on %s: %w", o.Weights, graph, err)
	}
	if inj.Width != shape.Output {
		return nil, nil, fmt.Errorf("--ip-adapter %s: its IP tokens are %d wide, the U-Net's cross-attention (%s) reads %d", o.Weights, shape.Output, graph, inj.Width)
	}
	a := &features.AdapterInfo{Path: o.Weights, Tokens: shape.Queries, Width: inj.Width, Layers: len(inj.Layers), ImageEncoder: o.ImageEncoder}
	if o.ImageEncoder != "" {
		enc, err := onnx.ReadFile(o.ImageEncoder)
		if err != nil {
			return nil, nil, fmt.Errorf("--image-encoder: %w", err)
		}
		if a.Penultimate, err = ipadapter.Penultimate(enc); err != nil {
			return nil, nil, fmt.Errorf("--image-encoder %s: %w", o.ImageEncoder, err)
		}
	}
	return a, &inj, nil
}
