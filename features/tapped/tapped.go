// Package tapped runs an ONNX graph with every attention layer's queries, keys and values
// exposed as outputs, and hands them back as features per image and layer. Every model family
// that reads a user's ONNX file (diffusion U-Nets, vision transformers, generic graphs) goes
// through it, so they all see attention the same way.
package tapped

import (
	"context"
	"errors"
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

// Model is an instrumented graph, ready to run: with every layer tapped (the full session),
// or cut down to the layers a run asks for (pruned sessions, each kept for its set of layers).
// Sessions open when a run first needs them, so work that names its layers never creates the
// full graph's session, nor loads the weights only later layers read.
type Model struct {
	Path   string
	Layers []attention.Layer

	loader  features.Loader
	dir     string                 // external weights
	source  func() ([]byte, error) // the model's bytes, read again for a pruned session
	inputs  []engine.IOInfo        // the graph's inputs and outputs, as the runtime lists them
	outputs []engine.IOInfo
	extra   []string       // outputs the caller asked for, first in the full output list
	names   []string       // the full session's outputs: extra, then the taps
	plan    plan           // output shapes inferred from the graph, by full output index
	index   map[string]int // full output index by name

	mu      sync.Mutex
	subsets map[string]*subset   // open sessions by their layer set ("" = every layer)
	learned map[string][][]int64 // output shapes of earlier runs, by session and input shapes
}

// subset is one open session: the full graph, or one pruned to some layers' taps.
type subset struct {
	sess    engine.Runner
	outputs []int           // its outputs, as full output indices
	inputs  map[string]bool // the graph inputs it reads
	// users counts the runs using sess now (under Model.mu); a released subset is closed
	// when its last run ends, never under one.
	users    int
	released bool
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
	// Source gives Load's bytes again when a session is opened later (Open reads the file; a
	// caller of Load that can rebuild the bytes says how). nil: Load keeps its bytes.
	Source func() ([]byte, error)
}

// Open reads the model at path and finds its attention layers; sessions with their Q, K, V as
// extra outputs open when a run needs them. External weights are read from the model's
// folder; the user's files are never written.
func Open(l features.Loader, path string, o Options) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	if o.Source == nil {
		o.Source = func() ([]byte, error) { return os.ReadFile(path) }
	}
	return Load(l, path, data, dir, o)
}

// Load is Open for a model already in memory; dir holds its external weights, if any, and
// path only names it in errors.
func Load(l features.Loader, path string, data []byte, dir string, o Options) (*Model, error) {
	g, layers, _, err := instrument(data, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := &Model{Path: path, Layers: layers, loader: l, dir: dir, source: o.Source, extra: o.Extra,
		index: map[string]int{}, subsets: map[string]*subset{}}
	if m.source == nil {
		m.source = func() ([]byte, error) { return data, nil }
	}
	m.names = append([]string(nil), o.Extra...)
	for i, n := range m.names {
		m.index[n] = i
	}
	for _, ly := range layers {
		for _, n := range ly.Taps() {
			if _, ok := m.index[n]; !ok {
				m.index[n] = len(m.names)
				m.names = append(m.names, n)
			}
		}
	}
	m.inputs, m.outputs = GraphIO(g)
	if o.Inputs != nil {
		m.plan = newPlan(g, o.Inputs, m.names)
	}
	return m, nil
}

// instrument decodes a model's structure (no weights), finds its layers and returns the
// instrumented structure (the taps Instrument adds included) and, with bytes, the
// instrumented model's bytes for a session.
func instrument(data []byte, bytes bool) (*onnxpb.ModelProto, []attention.Layer, []byte, error) {
	g, err := onnx.ParseStructure(data)
	if err != nil {
		return nil, nil, nil, err
	}
	layers, err := attention.Find(g)
	if err != nil {
		return nil, nil, nil, err
	}
	suffix, _, err := attention.Instrument(nil, g, layers)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := onnx.Merge(g, suffix); err != nil {
		return nil, nil, nil, err
	}
	var inst []byte
	if bytes {
		inst = append(data[:len(data):len(data)], suffix...)
	}
	return g, layers, inst, nil
}

// session opens (once) the session computing the taps of layers, all of them when layers is
// nil: the full graph, or the graph pruned to those taps.
func (m *Model) session(layers []int) (*subset, error) {
	key := layerKey(layers)
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.subsets[key]; ok {
		s.users++
		return s, nil
	}
	data, err := m.source()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Path, err)
	}
	g, found, inst, err := instrument(data, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Path, err)
	}
	if len(found) != len(m.Layers) {
		return nil, fmt.Errorf("%s: the model changed since it was opened (%d attention layers, now %d)", m.Path, len(m.Layers), len(found))
	}
	s := &subset{inputs: map[string]bool{}}
	var names []string
	if layers == nil {
		names = m.names
		for i := range m.names {
			s.outputs = append(s.outputs, i)
		}
	} else {
		seen := map[string]bool{}
		for _, li := range layers {
			for _, n := range m.Layers[li].Taps() {
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
					s.outputs = append(s.outputs, m.index[n])
				}
			}
		}
		if inst, err = onnx.Prune(inst, g, names); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
		if g, err = onnx.ParseStructure(inst); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
	}
	ins, _ := GraphIO(g)
	for _, in := range ins {
		s.inputs[in.Name] = true
	}
	data, g = nil, nil // only the runtime holds the graph from here on
	size := int64(len(inst))
	s.sess, err = m.loader.Load(inst, engine.SessionOptions{ExternalDataDir: m.dir, Outputs: names})
	inst = nil
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Path, err)
	}
	engine.ReleaseMemory(size)
	m.subsets[key] = s
	s.users++
	return s, nil
}

// done ends a run's use of s, closing s if it was released meanwhile.
func (m *Model) done(s *subset) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.users--; s.users == 0 && s.released {
		return s.sess.Close()
	}
	return nil
}

// ReleasePruned closes the sessions pruned to some layers (each when its runs in flight have
// ended), keeping the full graph's: a caller going on to run every layer frees the weights
// the pruned graphs hold a second copy of. A later pruned run opens its session again.
func (m *Model) ReleasePruned() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for k, s := range m.subsets {
		if k == "" {
			continue
		}
		delete(m.subsets, k)
		s.released = true
		if s.users == 0 {
			errs = append(errs, s.sess.Close())
		}
	}
	return errors.Join(errs...)
}

// Prepare opens the session a run of layers needs (every layer when layers is nil) now rather
// than at the first run: a model's load is then done before its first score is timed.
func (m *Model) Prepare(layers []int) error {
	if layers != nil {
		layers = slices.Clone(layers)
		slices.Sort(layers)
		layers = slices.Compact(layers)
	}
	s, err := m.session(layers)
	if err != nil {
		return err
	}
	return m.done(s)
}

func layerKey(layers []int) string {
	if layers == nil {
		return ""
	}
	return fmt.Sprint(layers)
}

// Inputs are the graph inputs a run needs.
func (m *Model) Inputs() []engine.IOInfo { return m.inputs }

// Outputs are the graph's own declared outputs.
func (m *Model) Outputs() []engine.IOInfo { return m.outputs }

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
	return m.run(ctx, nil, imageH, imageW, inputs)
}

// RunLayers is Run on the graph pruned to the given layers' taps (indices into Layers): it
// computes nothing downstream of them and loads no weight they do not need. Features of the
// other layers are left zero, and no extra output is returned. The pruned session is kept for
// the next run of the same layers.
func (m *Model) RunLayers(ctx context.Context, layers []int, imageH, imageW int, inputs ...engine.Tensor) (Result, error) {
	set := slices.Clone(layers)
	slices.Sort(set)
	set = slices.Compact(set)
	for _, li := range set {
		if li < 0 || li >= len(m.Layers) {
			return Result{}, fmt.Errorf("%s: no layer %d (the model has %d)", m.Path, li, len(m.Layers))
		}
	}
	if len(set) == 0 {
		return Result{}, fmt.Errorf("%s: no layers asked for", m.Path)
	}
	return m.run(ctx, set, imageH, imageW, inputs)
}

func (m *Model) run(ctx context.Context, layers []int, imageH, imageW int, inputs []engine.Tensor) (_ Result, err error) {
	s, err := m.session(layers)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if cerr := m.done(s); cerr != nil && err == nil {
			err = cerr
		}
	}()
	fed := inputs[:0:0]
	for _, t := range inputs {
		if s.inputs[t.Name] {
			fed = append(fed, t)
		}
	}
	key := layerKey(layers) + "|" + signature(fed)
	m.mu.Lock()
	shapes := m.learned[key]
	m.mu.Unlock()
	if shapes == nil {
		if full := m.plan.predict(inputs); full != nil {
			shapes = make([][]int64, len(s.outputs))
			for i, fi := range s.outputs {
				shapes[i] = full[fi]
			}
		}
	}
	var out []engine.Tensor
	if sr, ok := s.sess.(engine.ShapedRunner); ok && shapes != nil {
		out, err = sr.RunShaped(ctx, shapes, fed...)
	} else {
		out, err = s.sess.Run(ctx, fed...)
	}
	if err != nil {
		return Result{}, err
	}
	m.learn(key, out)
	byIndex := make(map[int]engine.Tensor, len(out))
	for i, fi := range s.outputs {
		byIndex[fi] = out[i]
	}
	res := Result{Extra: map[string]engine.Tensor{}}
	if layers == nil {
		for i, name := range m.extra {
			res.Extra[name] = out[i]
		}
	}
	want := layers
	if want == nil {
		want = make([]int, len(m.Layers))
		for i := range want {
			want[i] = i
		}
	}
	batch := -1
	for _, li := range want {
		ly := m.Layers[li]
		q, k, v := byIndex[m.index[ly.Q]], byIndex[m.index[ly.K]], byIndex[m.index[ly.V]]
		if len(q.Shape) != 3 || len(k.Shape) != 3 || len(v.Shape) != 3 {
			return Result{}, fmt.Errorf("layer %s: Q/K/V shapes %v %v %v are not [batch, tokens, channels]", ly.Name, q.Shape, k.Shape, v.Shape)
		}
		b := int(q.Shape[0])
		if batch < 0 {
			batch = b
			res.Features = make([][]features.Features, batch)
			for i := range res.Features {
				res.Features[i] = make([]features.Features, len(m.Layers))
			}
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
			res.Features[i][li] = f
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
// (they were wrong) in any session, which cost a second run.
func (m *Model) BuffersRefused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.subsets {
		if r, ok := s.sess.(interface{ BuffersRefused() bool }); ok && r.BuffersRefused() {
			return true
		}
	}
	return false
}

// Tokens is each layer's query token count at batch 1 of Options.Inputs, as inferred from the
// graph; 0 where inference could not tell (or no Inputs were given).
func (m *Model) Tokens() []int {
	out := make([]int, len(m.Layers))
	for i := range m.Layers {
		out[i] = m.plan.tokens(m.index[m.Layers[i].Q])
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

// Close frees the sessions; it is idempotent.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for k, s := range m.subsets {
		errs = append(errs, s.sess.Close())
		delete(m.subsets, k)
	}
	return errors.Join(errs...)
}
