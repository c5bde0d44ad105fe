package attention

import (
	"regexp"
	"strings"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// nameScopesKey is the node metadata in which the dynamo exporter records the module path:
// the repr of a Python list of cumulative paths, e.g.
// "['', 'blocks.2', 'blocks.2.attn', 'softmax']" (the last entry is the node itself).
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

func stripWrappers(path string) string {
	parts := strings.Split(path, ".")
	for len(parts) > 1 && wrappers[parts[0]] {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

var shortNames = []struct {
	re    *regexp.Regexp
	group string
	short string
}{
	{regexp.MustCompile(`^down_blocks\.(\d+)\.attentions\.1\.transformer_blocks\.0\.attn([12])$`), "down", "Down"},
	{regexp.MustCompile(`^mid_block\.attentions\.0\.transformer_blocks\.0\.attn([12])$`), "mid", "Mid"},
	{regexp.MustCompile(`^up_blocks\.(\d+)\.attentions\.2\.transformer_blocks\.0\.attn([12])$`), "up", "Up"},
	// The original LDM checkpoint layout.
	{regexp.MustCompile(`^input_blocks\.(2|5|8)\.1\.transformer_blocks\.0\.attn([12])$`), "down", "Down"},
	{regexp.MustCompile(`^middle_block\.1\.transformer_blocks\.0\.attn([12])$`), "mid", "Mid"},
	{regexp.MustCompile(`^output_blocks\.(5|8|11)\.1\.transformer_blocks\.0\.attn([12])$`), "up", "Up"},
}

var ldmLevel = map[string]string{"2": "0", "5": "1", "8": "2", "5u": "0", "8u": "1", "11u": "2"}

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
	for _, s := range shortNames {
		m := s.re.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		short = s.short
		attn := m[len(m)-1]
		if len(m) == 3 {
			level := m[1]
			switch {
			case strings.HasPrefix(name, "input_blocks."):
				level = ldmLevel[level]
			case strings.HasPrefix(name, "output_blocks."):
				level = ldmLevel[level+"u"]
			case strings.HasPrefix(name, "up_blocks."):
				if level == "0" {
					return group, "" // up_blocks.0 of SD 1.x has no attention
				}
				level = string(rune(level[0] - 1))
				if len(m[1]) > 1 {
					return group, ""
				}
			}
			if level != "" && len(level) == 1 && level[0] > '2' {
				return group, ""
			}
			short += level
		}
		if attn == "2" {
			short += ".x"
		}
		return group, short
	}
	return group, ""
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
