package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/diffusion"
	"github.com/diffsim/diffsim/features/ipadapter"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/features/vision"
)

// openStoredModel opens a model that is not the built-in one: a pulled or imported name, a
// hub repository in the cache, a folder or an .onnx file.
func openStoredModel(ctx context.Context, rt *engine.Runtime, o Options) (features.Model, error) {
	loc, err := store.Resolve(o.Model, store.Options{})
	if err != nil {
		return nil, usageError(err)
	}
	dir := loc.Path
	cleanup := func() error { return nil }
	if loc.Cached && loc.Kind != store.KindGeneric {
		// Hub snapshots are symlinks, which ONNX Runtime refuses for external weights.
		if dir, cleanup, err = store.Materialize(loc.Path, nil); err != nil {
			return nil, err
		}
	}
	// The sessions hold what they need once created; the private folder can go.
	defer cleanup()
	name := loc.Name
	var m features.Model
	switch loc.Kind {
	case store.KindDiffusion:
		var ip *ipadapter.Adapter
		if ip, err = openAdapter(rt, o, dir); err != nil {
			return nil, err
		}
		m, err = diffusion.OpenWithAdapter(ctx, rt, name, dir, o.Size, ip)
	case store.KindViT:
		if o.IPAdapter != "" {
			return nil, usagef("--ip-adapter needs a Stable Diffusion model (--model sd15 or a diffusers folder), not %s", name)
		}
		m, err = vision.OpenViT(rt, name, dir)
	case store.KindGeneric:
		file := loc.Path
		if filepath.Ext(file) != ".onnx" && loc.Graph != "" {
			file = graphIn(dir, graphRel(loc.Path, loc.Graph))
		}
		m, err = vision.OpenGeneric(rt, name, file, o.Size)
	default:
		if o.IPAdapter != "" {
			return nil, usagef("--ip-adapter needs a Stable Diffusion model (--model sd15 or a diffusers folder)")
		}
		return nil, usagef("%s is not a model diffsim knows how to read (a diffusers folder with unet/model.onnx, a transformers.js folder with onnx/model.onnx, or an .onnx file)", loc.Path)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		// A model that cannot be read is bad input, like an unreadable image (exit code 2).
		return nil, usageError(err)
	}
	return m, nil
}

// openAdapter opens the IP-Adapter the options name, or the one a model folder holds
// (image_encoder/model.onnx beside an ip-adapter*.safetensors); nil when there is none.
func openAdapter(rt *engine.Runtime, o Options, dir string) (*ipadapter.Adapter, error) {
	adapter, encoder := o.IPAdapter, o.ImageEncoder
	if adapter == "" && encoder == "" {
		if adapter, encoder = folderAdapter(dir); adapter == "" {
			return nil, nil
		}
	}
	if adapter == "" || encoder == "" {
		return nil, usagef("DiffSim-C needs both --ip-adapter (ip-adapter-plus_sd15.safetensors) and --image-encoder (the CLIP ViT-H/14 image encoder .onnx)")
	}
	ip, err := ipadapter.Open(rt, ipadapter.Options{Adapter: adapter, ImageEncoder: encoder, Scale: float32(o.IPScale), ScaleSet: o.IPScaleSet})
	if err != nil {
		return nil, usageError(err)
	}
	return ip, nil
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

// graphRel is a model's graph path relative to its folder (store.Local.Graph is absolute).
func graphRel(folder, graph string) string {
	if rel, err := filepath.Rel(folder, graph); err == nil && filepath.IsAbs(graph) {
		return rel
	}
	return graph
}

// graphIn is the path of a graph in folder, graph being absolute or relative to it.
func graphIn(folder, graph string) string {
	if filepath.IsAbs(graph) {
		return graph
	}
	return filepath.Join(folder, graph)
}
