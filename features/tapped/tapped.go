// Package tapped runs an ONNX graph with every attention layer's queries, keys and values
// exposed as outputs, and hands them back as features per image and layer. Every model family
// that reads a user's ONNX file (diffusion U-Nets, vision transformers, generic graphs) goes
// through it, so they all see attention the same way.
package tapped

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features"
)

// Model is a loaded, instrumented graph.
type Model struct {
	Path   string
	Layers []attention.Layer
	sess   engine.Runner
	extra  []string // outputs the caller asked for, first in the output list
	taps   [][4]int // per layer: output index of Q, K, V (−1 when shared), Out (−1)
	nOut   int      // outputs the session returns: extra, then the taps
}

// Open reads the model at path, finds its attention layers and loads it with their Q, K, V
// as extra outputs, besides the outputs named in extra. External weights are read from the
// model's folder; the user's files are never written.
func Open(l features.Loader, path string, extra []string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return Load(l, path, data, dir, extra)
}

// Load is Open for a model already in memory; dir holds its external weights, if any, and
// path only names it in errors.
func Load(l features.Loader, path string, data []byte, dir string, extra []string) (*Model, error) {
	m, err := onnx.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	layers, err := attention.Find(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	inst, names, err := attention.Instrument(data, m, layers)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	outputs := append([]string(nil), extra...)
	index := map[string]int{}
	for i, n := range outputs {
		index[n] = i
	}
	for _, n := range names {
		if _, ok := index[n]; !ok {
			index[n] = len(outputs)
			outputs = append(outputs, n)
		}
	}
	taps := make([][4]int, len(layers))
	for i, ly := range layers {
		taps[i] = [4]int{index[ly.Q], index[ly.K], index[ly.V], -1}
		if ly.Out != "" {
			taps[i][3] = index[ly.Out]
		}
	}
	sess, err := l.Load(inst, engine.SessionOptions{ExternalDataDir: dir, Outputs: outputs})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Model{Path: path, Layers: layers, sess: sess, extra: extra, taps: taps, nOut: len(outputs)}, nil
}

// Inputs are the graph inputs a run needs.
func (m *Model) Inputs() []engine.IOInfo { return m.sess.Inputs() }

// Outputs are the graph's own declared outputs.
func (m *Model) Outputs() []engine.IOInfo { return m.sess.Outputs() }

// Result is one run: features per batch item and layer, and the extra outputs by name.
type Result struct {
	Features [][]features.Features // [batch item][layer]
	Extra    map[string]engine.Tensor
}

// Run feeds the inputs and splits the tapped tensors per batch item. imageH × imageW is the
// spatial size of the input (pixels or latents): only its aspect ratio is used, to find each
// layer's token grid.
func (m *Model) Run(ctx context.Context, imageH, imageW int, inputs ...engine.Tensor) (Result, error) {
	return m.RunExpecting(ctx, imageH, imageW, Expect{}, inputs...)
}

// Expect is what a caller knows, before a run, of the tapped tensors' shapes: the batch and,
// per layer, the query and key/value token counts (0 where it cannot tell). The runtime then
// writes those tensors straight into Go memory (engine.ShapedRunner) instead of holding them
// in its own allocator and copying them out.
type Expect struct {
	Batch            int
	Tokens, KVTokens []int // per layer, in Layers' order
}

// RunExpecting is Run with the shapes the caller expects. A wrong expectation costs a second
// run, never a wrong result (see engine.ShapedRunner).
func (m *Model) RunExpecting(ctx context.Context, imageH, imageW int, e Expect, inputs ...engine.Tensor) (Result, error) {
	var out []engine.Tensor
	var err error
	if sr, ok := m.sess.(engine.ShapedRunner); ok && e.Batch > 0 {
		out, err = sr.RunShaped(ctx, m.shapes(e), inputs...)
	} else {
		out, err = m.sess.Run(ctx, inputs...)
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{Extra: map[string]engine.Tensor{}}
	for i, name := range m.extra {
		res.Extra[name] = out[i]
	}
	var batch int
	for li, ly := range m.Layers {
		q, k, v := out[m.taps[li][0]], out[m.taps[li][1]], out[m.taps[li][2]]
		if len(q.Shape) != 3 || len(k.Shape) != 3 || len(v.Shape) != 3 {
			return Result{}, fmt.Errorf("layer %s: Q/K/V shapes %v %v %v are not [batch, tokens, channels]", ly.Name, q.Shape, k.Shape, v.Shape)
		}
		b := int(q.Shape[0])
		if li == 0 {
			batch = b
			res.Features = make([][]features.Features, batch)
		}
		if b != batch || int(k.Shape[0]) != b {
			return Result{}, fmt.Errorf("layer %s: batch %d, expected %d", ly.Name, b, batch)
		}
		kvHeads := ly.KeyValueHeads()
		if int(q.Shape[2]) != ly.Channels() || int(k.Shape[2]) != kvHeads*ly.HeadDim || int(v.Shape[2]) != kvHeads*ly.HeadDim {
			return Result{}, fmt.Errorf("layer %s: Q/K/V widths %d/%d/%d at run time, the graph says %d query heads and %d key/value heads × %d", ly.Name, q.Shape[2], k.Shape[2], v.Shape[2], ly.Heads, kvHeads, ly.HeadDim)
		}
		tokens, kvTokens := int(q.Shape[1]), int(k.Shape[1])
		gh, gw, prefix := attention.Grid(tokens, imageH, imageW)
		for i := 0; i < b; i++ {
			kk, vv := item(k, i), item(v, i)
			if kvHeads != ly.Heads {
				kk, vv = RepeatKV(kk, kvHeads, ly.Heads, ly.HeadDim), RepeatKV(vv, kvHeads, ly.Heads, ly.HeadDim)
			}
			f := features.Features{
				Q: item(q, i), K: kk, V: vv,
				Tokens: tokens, Heads: ly.Heads, HeadDim: ly.HeadDim, Scale: ly.Scale,
				GridH: gh, GridW: gw, Prefix: prefix,
			}
			if kvTokens != tokens {
				f.KVTokens = kvTokens
			}
			res.Features[i] = append(res.Features[i], f)
		}
	}
	return res, nil
}

// BuffersRefused reports whether the runtime refused the buffers an Expect described (its
// shapes were wrong): a bug in the caller's expectation, which costs a second run.
func (m *Model) BuffersRefused() bool {
	r, ok := m.sess.(interface{ BuffersRefused() bool })
	return ok && r.BuffersRefused()
}

// shapes lays e out as the session's selected outputs: [batch, tokens, channels] for each
// layer's Q (and Out), K and V where the tokens are known; nil elsewhere.
func (m *Model) shapes(e Expect) [][]int64 {
	shapes := make([][]int64, m.nOut)
	set := func(i, tokens, channels int) {
		if i >= 0 && tokens > 0 {
			shapes[i] = []int64{int64(e.Batch), int64(tokens), int64(channels)}
		}
	}
	for li, ly := range m.Layers {
		var tokens, kvTokens int
		if li < len(e.Tokens) {
			tokens = e.Tokens[li]
		}
		if li < len(e.KVTokens) {
			kvTokens = e.KVTokens[li]
		}
		kvHeads := ly.KeyValueHeads()
		t := m.taps[li]
		set(t[0], tokens, ly.Channels())
		set(t[1], kvTokens, kvHeads*ly.HeadDim)
		set(t[2], kvTokens, kvHeads*ly.HeadDim)
		set(t[3], tokens, ly.Channels())
	}
	return shapes
}

func item(t engine.Tensor, i int) []float32 {
	per := len(t.Float32) / int(t.Shape[0])
	return t.Float32[i*per : (i+1)*per]
}

// RepeatKV widens grouped-query keys or values, [tokens][kvHeads·dim], to one head per query
// head, [tokens][heads·dim]: query head h reads key/value head h·kvHeads/heads, as grouped-query
// attention does (each key/value head serves heads/kvHeads consecutive query heads). The AAS
// maths then treats the layer as ordinary multi-head attention.
func RepeatKV(x []float32, kvHeads, heads, dim int) []float32 {
	kvc, c := kvHeads*dim, heads*dim
	rows := len(x) / kvc
	out := make([]float32, rows*c)
	for r := range rows {
		for h := range heads {
			kh := h * kvHeads / heads
			copy(out[r*c+h*dim:r*c+(h+1)*dim], x[r*kvc+kh*dim:r*kvc+(kh+1)*dim])
		}
	}
	return out
}

// Describe is the graph's layers as the program's layer descriptions, without token grids
// (the family adds those at its working size).
func (m *Model) Describe() []features.Layer { return Describe(m.Layers) }

// Describe wraps the finder's layers; nothing is copied field by field, so nothing is lost.
func Describe(layers []attention.Layer) []features.Layer {
	out := make([]features.Layer, len(layers))
	for i, ly := range layers {
		ly.Index = i
		out[i] = features.Layer{Layer: ly}
	}
	return out
}

// Inspect reads a graph's inputs (initialisers excluded), outputs and attention layers
// without loading any weights.
func Inspect(g *onnxpb.ModelProto) (inputs, outputs []engine.IOInfo, layers []features.Layer, err error) {
	found, err := attention.Find(g)
	if err != nil {
		return nil, nil, nil, err
	}
	inputs, outputs = GraphIO(g)
	return inputs, outputs, Describe(found), nil
}

// GraphIO lists a graph's inputs (initialisers excluded) and outputs, as the runtime would.
func GraphIO(g *onnxpb.ModelProto) (ins, outs []engine.IOInfo) {
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

// Close frees the session.
func (m *Model) Close() error { return m.sess.Close() }
