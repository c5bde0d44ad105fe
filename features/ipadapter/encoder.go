package ipadapter

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// ErrNoPenultimate is wrapped when an image encoder's penultimate hidden state cannot be found.
var ErrNoPenultimate = errors.New("cannot find the image encoder's penultimate hidden state")

var encoderLayer = regexp.MustCompile(`layers?\.(\d+)\.`)

// Penultimate finds the tensor holding a CLIP vision encoder's penultimate hidden state, the
// Hugging Face hidden_states[-2] IP-Adapter Plus reads: the output of the second-to-last
// encoder layer, which is the residual stream entering the last layer. The last layer's
// self-attention reads it through its first LayerNorm (layer_norm1), so the tensor is that
// LayerNorm's input, found from the attention layer list. It is a graph tensor of
// [B, 1+patches, width] (257 × 1280 for ViT-H/14 at 224 px); tap it with
// onnx.AppendOutputs.
func Penultimate(m *onnxpb.ModelProto) (string, error) {
	layers, err := attention.Find(m)
	if len(layers) == 0 {
		return "", fmt.Errorf("%w: %v", ErrNoPenultimate, err)
	}
	var self []attention.Layer
	for _, l := range layers {
		if l.Kind == attention.Self {
			self = append(self, l)
		}
	}
	if len(self) < 2 {
		return "", fmt.Errorf("%w: the graph has %d self-attention layers; a CLIP vision encoder has dozens", ErrNoPenultimate, len(self))
	}
	last := self[len(self)-1]
	// With a layer left unresolved, "the last one found" could be the wrong one: accept that
	// only when module paths show the last found is the deepest layer.
	if err != nil {
		deepest, idx := -1, -1
		for _, l := range self {
			if mm := encoderLayer.FindStringSubmatch(l.Name + "."); mm != nil {
				i, _ := strconv.Atoi(mm[1])
				deepest = max(deepest, i)
				if l.Name == last.Name {
					idx = i
				}
			}
		}
		if idx < 0 || idx != deepest {
			return "", fmt.Errorf("%w: some attention layers were not resolved: %v", ErrNoPenultimate, err)
		}
	}
	ix := index(m.GetGraph())
	if x := ix.layerNormInput(last.QSource); x != "" {
		return x, nil
	}
	return "", fmt.Errorf("%w: the last encoder layer's attention (%s) reads %q, which no LayerNorm produces", ErrNoPenultimate, last.Name, last.QSource)
}

// layerNormInput returns the input X of the layer normalisation producing v: a
// LayerNormalization node, or the decomposed form older exporters write
// (ReduceMean(X) → Sub(X, mean) → … → Mul → Add). "" when v is not normalised.
func (ix graphIndex) layerNormInput(v string) string {
	seen := map[string]bool{}
	queue := []string{v}
	for steps := 0; len(queue) > 0 && steps < 24; steps++ {
		t := queue[0]
		queue = queue[1:]
		n := ix.producer[t]
		if n == nil || seen[n.GetName()+"|"+t] {
			continue
		}
		seen[n.GetName()+"|"+t] = true
		switch n.GetOpType() {
		case "LayerNormalization":
			return n.GetInput()[0]
		case "ReduceMean":
			// The mean of X: X is the normalised input when a Sub takes X − mean.
			x := n.GetInput()[0]
			mean := n.GetOutput()[0]
			for _, c := range ix.consumers[mean] {
				if c.GetOpType() == "Sub" && len(c.Input) == 2 && c.Input[0] == x && c.Input[1] == mean {
					return x
				}
			}
		case "Cast", "Identity", "Add", "Mul", "Div", "Sub", "Sqrt", "Pow":
			for _, in := range n.GetInput() {
				if ix.inits[in] == nil {
					queue = append(queue, in)
				}
			}
		}
	}
	return ""
}
