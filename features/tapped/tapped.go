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
	"slices"
	"strings"
	"sync"

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
	plan   plan     // output shapes inferred from the graph

	mu      sync.Mutex
	learned map[string][][]int64 // output shapes of earlier runs, by the runs' input shapes
}

// Options say what Load exposes besides the taps and how the graph will be fed.
type Options struct {
	// Extra are graph outputs the caller wants too; they come first in the session's outputs.
	Extra []string
	// Inputs are the shapes the caller feeds at a batch size, by input name, given the graph's
	// declared inputs. The tapped tensors' shapes are then inferred from the graph itself
	// (engine/onnx/infer) at those sizes: Layers get their token counts, and runs hand the
	// runtime Go buffers of those shapes to write the taps into (engine.ShapedRunner). nil:
	// runs learn the shapes instead, the first run at each input size going without buffers.
	Inputs func(declared []engine.IOInfo, batch int) map[string][]int64
}

// Open reads the model at path, finds its attention layers and loads it with their Q, K, V
// as extra outputs. External weights are read from the model's folder; the user's files are
// never written.
func Open(l features.Loader, path string, o Options) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return Load(l, path, data, dir, o)
}

// Load is Open for a model already in memory; dir holds its external weights, if any, and
// path only names it in errors.
func Load(l features.Loader, path string, data []byte, dir string, o Options) (*Model, error) {
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
	outputs := append([]string(nil), o.Extra...)
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
	var p plan
	if o.Inputs != nil {
		// Inference runs on the instrumented graph: the tapped names include what Instrument
		// added (casts, slices of merged weights), which only it holds.
		if err := onnx.Merge(m, inst[len(data):]); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p = newPlan(m, o.Inputs, outputs)
	}
	m = nil // the graph (and any weights embedded in it) is not needed past this point
	sess, err := l.Load(inst, engine.SessionOptions{ExternalDataDir: dir, Outputs: outputs})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Model{Path: path, Layers: layers, sess: sess, extra: o.Extra, taps: taps, nOut: len(outputs), plan: p}, nil
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

// maxLearned bounds the input sizes whose output shapes a model remembers.
const maxLearned = 16

// Run feeds the inputs and splits the tapped tensors per batch item. imageH × imageW is the
// spatial size of the input (pixels or latents): only its aspect ratio is used, to find each
// layer's token grid. The tapped tensors are written straight into Go memory when their
// shapes are known: inferred from the graph (Options.Inputs) or measured by an earlier run at
// the same input sizes; a wrong shape costs a second run, never a wrong result.
func (m *Model) Run(ctx context.Context, imageH, imageW int, inputs ...engine.Tensor) (Result, error) {
	key := signature(inputs)
	m.mu.Lock()
	shapes := m.learned[key]
	m.mu.Unlock()
	if shapes == nil {
		shapes = m.plan.predict(inputs)
	}
	var out []engine.Tensor
	var err error
	if sr, ok := m.sess.(engine.ShapedRunner); ok && shapes != nil {
		out, err = sr.RunShaped(ctx, shapes, inputs...)
	} else {
		out, err = m.sess.Run(ctx, inputs...)
	}
	if err != nil {
		return Result{}, err
	}
	m.learn(key, out)
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

// learn remembers the shapes a run made, for the next run at the same input sizes.
func (m *Model) learn(key string, out []engine.Tensor) {
	shapes := make([][]int64, len(out))
	for i, t := range out {
		if t.Type == engine.Float32 {
			shapes[i] = slices.Clone(t.Shape)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.learned == nil || len(m.learned) >= maxLearned {
		m.learned = map[string][][]int64{}
	}
	m.learned[key] = shapes
}

// signature names a run's input sizes.
func signature(inputs []engine.Tensor) string {
	parts := make([]string, len(inputs))
	for i, t := range inputs {
		parts[i] = fmt.Sprintf("%s%v%v", t.Name, t.Type, t.Shape)
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

// BuffersRefused reports whether the runtime refused the buffers of a run's predicted shapes
// (they were wrong), which cost a second run.
func (m *Model) BuffersRefused() bool {
	r, ok := m.sess.(interface{ BuffersRefused() bool })
	return ok && r.BuffersRefused()
}

// Tokens is each layer's query token count at batch 1 of Options.Inputs, as inferred from the
// graph; 0 where inference could not tell (or no Inputs were given).
func (m *Model) Tokens() []int {
	out := make([]int, len(m.Layers))
	for i := range m.Layers {
		out[i] = m.plan.tokens(m.taps[i][0])
	}
	return out
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

// Describe is the graph's layers as the program's layer descriptions, with the token counts
// inferred at the sizes of Options.Inputs and the grids they make on an imageH × imageW input
// (pixels or latents); tokens and grids are zero where inference could not tell.
func (m *Model) Describe(imageH, imageW int) []features.Layer {
	return withTokens(Describe(m.Layers), m.Tokens(), imageH, imageW)
}

// Describe wraps the finder's layers; nothing is copied field by field, so nothing is lost.
func Describe(layers []attention.Layer) []features.Layer {
	out := make([]features.Layer, len(layers))
	for i, ly := range layers {
		ly.Index = i
		out[i] = features.Layer{Layer: ly}
	}
	return out
}

func withTokens(layers []features.Layer, tokens []int, imageH, imageW int) []features.Layer {
	for i := range layers {
		if i < len(tokens) && tokens[i] > 0 {
			layers[i].Tokens = tokens[i]
			layers[i].GridH, layers[i].GridW, layers[i].Prefix = attention.Grid(tokens[i], imageH, imageW)
		}
	}
	return layers
}

// Inspect reads a graph's inputs (initialisers excluded), outputs and attention layers
// without loading any weights. With inputs (as in Options), each layer carries the token
// count and grid that Model.Describe gives it: what scoring will see. g gains the tapped
// outputs.
func Inspect(g *onnxpb.ModelProto, inputs func([]engine.IOInfo, int) map[string][]int64, imageH, imageW int) (ins, outs []engine.IOInfo, layers []features.Layer, err error) {
	found, err := attention.Find(g)
	if err != nil {
		return nil, nil, nil, err
	}
	ins, outs = GraphIO(g)
	layers = Describe(found)
	if inputs == nil {
		return ins, outs, layers, nil
	}
	suffix, names, err := attention.Instrument(nil, g, found)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := onnx.Merge(g, suffix); err != nil {
		return nil, nil, nil, err
	}
	index := map[string]int{}
	for i, n := range names {
		index[n] = i
	}
	p := newPlan(g, inputs, names)
	tokens := make([]int, len(found))
	for i, l := range found {
		tokens[i] = p.tokens(index[l.Q])
	}
	return ins, outs, withTokens(layers, tokens, imageH, imageW), nil
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
