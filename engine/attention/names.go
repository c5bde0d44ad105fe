package attention

import (
	"slices"
	"strings"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// nameScopesKey is the node metadata in which the dynamo exporter records the module path:
// the repr of a Python list of cumulative paths, e.g.
// "[”, 'blocks.2', 'blocks.2.attn', 'softmax']" (the last entry is the node itself).
const nameScopesKey = "pkg.torch.onnx.name_scopes"

// wrappers are leading module names that wrap the real network (a pipeline object, a
// compiled module, the LDM checkpoint layout).
var wrappers = map[string]bool{"unet": true, "model": true, "module": true, "_orig_mod": true, "diffusion_model": true, "wrapped": true, "net": true}

// scope returns the module path of a node: from dynamo metadata, else from a TorchScript-style
// name ("/a/b.0/c/Softmax" → "a.b.0.c"). "" when the node carries no scope.
func (ix *graph) scope(n *onnxpb.NodeProto) string {
	if n == nil {
		return ""
	}
	for _, e := range n.GetMetadataProps() {
		if e.GetKey() == nameScopesKey {
			if s := scopeFromMetadata(e.GetValue()); s != "" {
				return stripWrappers(s)
			}
		}
	}
	name := n.GetName()
	i := strings.LastIndexByte(name, '/')
	if i <= 0 {
		return ""
	}
	dir := strings.Trim(name[:i], "/")
	if dir == "" {
		return ""
	}
	return stripWrappers(strings.ReplaceAll(dir, "/", "."))
}

// scopeFromMetadata parses the repr of a list of strings and returns the deepest module path.
func scopeFromMetadata(v string) string {
	v = strings.TrimSpace(v)
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return ""
	}
	var items []string
	for _, part := range strings.Split(v[1:len(v)-1], ",") {
		part = strings.TrimSpace(part)
		if len(part) >= 2 && (part[0] == '\'' || part[0] == '"') && part[len(part)-1] == part[0] {
			part = part[1 : len(part)-1]
		}
		items = append(items, part)
	}
	// The first entry is the root (""), the last the node's own name; the ones between are
	// cumulative module paths (older exporters listed the pieces instead: join them).
	if len(items) < 2 {
		return ""
	}
	var mods []string
	for _, it := range items[:len(items)-1] {
		if it != "" {
			mods = append(mods, it)
		}
	}
	if len(mods) == 0 {
		return ""
	}
	for i := 1; i < len(mods); i++ {
		if !strings.HasPrefix(mods[i], mods[i-1]+".") {
			return strings.Join(mods, ".")
		}
	}
	return mods[len(mods)-1]
}

// unetRoots are the top-level modules of a U-Net, in diffusers' and the LDM checkpoint's
// layouts. Whatever module path comes before one is a wrapper, whatever its attribute name
// (a pipeline's "unet", a user's "denoiser", "u"): the layer is named as in a plain export, so
// its short name and token grid are found the same way.
var unetRoots = map[string]bool{
	"down_blocks": true, "mid_block": true, "up_blocks": true,
	"input_blocks": true, "middle_block": true, "output_blocks": true,
}

func stripWrappers(path string) string {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		// A U-Net's attention sits in a transformer block; a VAE's mid_block attention does
		// not, and keeps its "encoder." or "decoder." prefix.
		if unetRoots[p] && i+1 < len(parts) && slices.Contains(parts[i+1:], "transformer_blocks") {
			return strings.Join(parts[i:], ".")
		}
	}
	for len(parts) > 1 && wrappers[parts[0]] {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

// paperLayers maps the transformer of each block the DiffSim paper names (the last of its
// block group) to its short name, in diffusers' and the original LDM checkpoint's layouts.
var paperLayers = map[string]string{
	"down_blocks.0.attentions.1": "Down0", "down_blocks.1.attentions.1": "Down1", "down_blocks.2.attentions.1": "Down2",
	"mid_block.attentions.0":   "Mid",
	"up_blocks.1.attentions.2": "Up0", "up_blocks.2.attentions.2": "Up1", "up_blocks.3.attentions.2": "Up2",
	"input_blocks.2.1": "Down0", "input_blocks.5.1": "Down1", "input_blocks.8.1": "Down2",
	"middle_block.1":    "Mid",
	"output_blocks.5.1": "Up0", "output_blocks.8.1": "Up1", "output_blocks.11.1": "Up2",
}

// unetPlace returns the U-Net group (down, mid, up) of a module path and the DiffSim paper's
// short name when the path is one of the layers it names: DownN, Mid, UpN for attn1 (the
// self-attention DiffSim-S uses) and DownN.x, Mid.x, UpN.x for attn2 (cross-attention).
func unetPlace(name string) (group, short string) {
	switch {
	case strings.HasPrefix(name, "down_blocks."), strings.HasPrefix(name, "input_blocks."):
		group = "down"
	case strings.HasPrefix(name, "mid_block."), strings.HasPrefix(name, "middle_block."):
		group = "mid"
	case strings.HasPrefix(name, "up_blocks."), strings.HasPrefix(name, "output_blocks."):
		group = "up"
	}
	if block, ok := strings.CutSuffix(name, ".transformer_blocks.0.attn1"); ok {
		return group, paperLayers[block]
	}
	if block, ok := strings.CutSuffix(name, ".transformer_blocks.0.attn2"); ok && paperLayers[block] != "" {
		return group, paperLayers[block] + ".x"
	}
	return group, ""
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
