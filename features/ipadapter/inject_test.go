package ipadapter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/safetensors"
)

// TestProcessorKeys checks the adapter key of every attn2 of the full-size SD 1.5 structure
// against diffusers' processor order (down, up, mid): ip_adapter.31 is the mid block's.
func TestProcessorKeys(t *testing.T) {
	g, _ := testgraphs.SDUNet(testgraphs.SD15())
	layers, err := attention.Find(g)
	if err != nil {
		t.Fatal(err)
	}
	var cross []attention.Layer
	for _, l := range layers {
		if l.Kind == attention.Cross {
			cross = append(cross, l)
		}
	}
	got, err := processorKeys(cross)
	if err != nil {
		t.Fatal(err)
	}
	want := expectedKeys(t, cross)
	if len(got) != 16 || len(want) != 16 {
		t.Fatalf("%d keys, want 16", len(got))
	}
	for name, k := range want {
		if got[name] != k {
			t.Errorf("%s: key %d, want %d", name, got[name], k)
		}
	}
	if got["mid_block.attentions.0.transformer_blocks.0.attn2"] != 31 || got["up_blocks.1.attentions.0.transformer_blocks.0.attn2"] != 13 {
		t.Errorf("mid %d, first up %d; want 31 and 13", got["mid_block.attentions.0.transformer_blocks.0.attn2"], got["up_blocks.1.attentions.0.transformer_blocks.0.attn2"])
	}
	// The original LDM layout names the same modules.
	ldm := []attention.Layer{{Name: "middle_block.1.transformer_blocks.0.attn2"}, {Name: "output_blocks.3.1.transformer_blocks.0.attn2"}, {Name: "input_blocks.1.1.transformer_blocks.0.attn2"}}
	if k, err := processorKeys(ldm); err != nil || k[ldm[2].Name] != 1 || k[ldm[1].Name] != 3 || k[ldm[0].Name] != 5 {
		t.Errorf("LDM names: %v, %v", k, err)
	}
	if _, err := processorKeys([]attention.Layer{{Name: "attn.3"}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("anonymous layer: %v", err)
	}
}

// injected is a tiny U-Net with IP attention and everything a test needs to check it.
type injected struct {
	inj    Injection
	keys   map[string]int
	vals   map[string][]float32
	opts   testgraphs.UNetOptions
	model  []byte
	layers []attention.Layer // Find on the injected graph
}

func inject(t *testing.T, scale float32) injected {
	t.Helper()
	m, o, cross := plainUNet(t)
	ts := newTensorSet(21, true)
	keys := ts.addIPLayers(t, cross, o.CtxChannels)
	inj, err := Inject(m, ts.file(t), InjectOptions{Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnx.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := attention.Find(back)
	if err != nil {
		t.Fatal(err)
	}
	return injected{inj: inj, keys: keys, vals: ts.Values, opts: o, model: data, layers: layers}
}

func unetInputs(o testgraphs.UNetOptions, seed uint64, ipScale float64) []engine.Tensor {
	rng := rand.New(rand.NewPCG(seed, 1))
	b, h, w := int64(o.Batch), int64(o.Height), int64(o.Width)
	ts := make([]float32, o.Batch)
	for i := range ts {
		ts[i] = 401
	}
	return []engine.Tensor{
		engine.F32("sample", []int64{b, 4, h, w}, randoms(rng, int(b*4*h*w), 1)),
		engine.F32("timestep", []int64{b}, ts),
		engine.F32("encoder_hidden_states", []int64{b, int64(o.CtxTokens), int64(o.CtxChannels)}, randoms(rng, o.Batch*o.CtxTokens*o.CtxChannels, 1)),
		engine.F32(TokensInput, []int64{b, 16, int64(o.CtxChannels)}, randoms(rng, o.Batch*16*o.CtxChannels, ipScale)),
	}
}

func TestInjectFindsIPLayers(t *testing.T) {
	x := inject(t, DefaultScale)
	if len(x.inj.Layers) != 16 || x.inj.Width != 16 || x.inj.Input != TokensInput {
		t.Fatalf("injection %+v", x.inj)
	}
	byName := map[string]attention.Layer{}
	for _, l := range x.layers {
		byName[l.Name] = l
	}
	if len(x.layers) != 48 {
		t.Errorf("Find on the injected graph: %d layers, want 16 attn1 + 16 attn2 + 16 attn2.ip", len(x.layers))
	}
	for _, il := range x.inj.Layers {
		if il.Key != x.keys[il.Name] {
			t.Errorf("%s: key %d, want %d", il.Name, il.Key, x.keys[il.Name])
		}
		text, ip := byName[il.Name], byName[il.IPName]
		if ip.Name == "" {
			t.Errorf("Find does not report %s", il.IPName)
			continue
		}
		if text.Kind != attention.Cross || text.ImageKV || text.KVSource != "encoder_hidden_states" {
			t.Errorf("%s: kind %s, ImageKV %v, KV from %q; want text cross-attention", text.Name, text.Kind, text.ImageKV, text.KVSource)
		}
		if text.Out != il.Out {
			t.Errorf("%s: attention output %q, injection says %q", il.Name, text.Out, il.Out)
		}
		if ip.Kind != attention.Cross || ip.KVSource != TokensInput || ip.Q != text.Q || ip.K != il.K || ip.V != il.V || ip.Out != il.IPOut {
			t.Errorf("%s: kind %s, KV from %q, Q %q (attn2's %q), K %q V %q Out %q; injection says K %q V %q Out %q",
				ip.Name, ip.Kind, ip.KVSource, ip.Q, text.Q, ip.K, ip.V, ip.Out, il.K, il.V, il.IPOut)
		}
		if ip.Heads != text.Heads || ip.HeadDim != text.HeadDim || math.Abs(ip.Scale-text.Scale) > 1e-7 {
			t.Errorf("%s: %d×%d scale %g, attn2 has %d×%d scale %g", ip.Name, ip.Heads, ip.HeadDim, ip.Scale, text.Heads, text.HeadDim, text.Scale)
		}
	}
	// Injecting twice is refused.
	m, err := onnx.Parse(x.model)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTensorSet(1, false)
	if _, err := Inject(m, ts.file(t), InjectOptions{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second injection: %v", err)
	}
}

func TestInjectWeightErrors(t *testing.T) {
	m, o, cross := plainUNet(t)
	ts := newTensorSet(1, false)
	ts.addIPLayers(t, cross, o.CtxChannels)
	ts.Tensors = slices.DeleteFunc(ts.Tensors, func(x safetensors.Tensor) bool { return strings.HasPrefix(x.Name, "ip_adapter.31.") })
	if _, err := Inject(m, ts.file(t), InjectOptions{}); err == nil || !strings.Contains(err.Error(), "15 layers") {
		t.Errorf("15 of 16 layers: %v", err)
	}
	m, o, cross = plainUNet(t)
	ts = newTensorSet(1, false)
	ts.addIPLayers(t, cross, o.CtxChannels+1)
	if _, err := Inject(m, ts.file(t), InjectOptions{}); err == nil || !strings.Contains(err.Error(), "has shape") {
		t.Errorf("weights of the wrong width: %v", err)
	}
	vit, _ := tinyEncoder(24, 2, 3, false)
	if _, err := Inject(vit, ts.file(t), InjectOptions{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a graph without cross-attention: %v", err)
	}
}

// TestInjectedAttention runs the injected U-Net and recomputes every attn2's new output in Go
// from its exposed Q, K, V, K_ip, V_ip: attn(Q, K, V) + scale · attn(Q, K_ip, V_ip). It also
// checks K_ip = ip_tokens · to_k_ip(key)ᵀ with the key the test expects.
func TestInjectedAttention(t *testing.T) {
	rt := openRuntime(t)
	const scale = 0.7
	x := inject(t, scale)
	byName := map[string]attention.Layer{}
	for _, l := range x.layers {
		byName[l.Name] = l
	}
	var outputs []string
	for _, il := range x.inj.Layers {
		l := byName[il.Name]
		outputs = append(outputs, l.Q, l.K, l.V, il.K, il.V, il.Sum)
	}
	sess, err := rt.Load(onnx.AppendOutputs(x.model, outputs), engine.SessionOptions{Outputs: outputs})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in := unetInputs(x.opts, 8, 1)
	tokens := in[3]
	out, err := sess.Run(context.Background(), in...)
	if err != nil {
		t.Fatal(err)
	}
	b := x.opts.Batch
	for li, il := range x.inj.Layers {
		q, k, v, kip, vip, sum := out[6*li], out[6*li+1], out[6*li+2], out[6*li+3], out[6*li+4], out[6*li+5]
		c := il.Heads * il.HeadDim
		// K_ip from the weights of the expected key.
		w := x.vals[fmt.Sprintf("ip_adapter.%d.to_k_ip.weight", x.keys[il.Name])]
		wantK := make([]float32, len(kip.Float32))
		ctx := x.opts.CtxChannels
		for r := range len(wantK) / c {
			for o := range c {
				var s float64
				for j := range ctx {
					s += float64(tokens.Float32[r*ctx+j]) * float64(w[o*ctx+j])
				}
				wantK[r*c+o] = float32(s)
			}
		}
		if e := relErr(kip.Float32, wantK); e > 1e-5 {
			t.Errorf("%s: K_ip off by %.3g from ip_tokens · to_k_ip(key %d)ᵀ", il.Name, e, x.keys[il.Name])
		}
		shape := aas.Shape{Heads: il.Heads, HeadDim: il.HeadDim, Scale: il.Scale}
		for i := range b {
			part := func(t engine.Tensor) []float32 {
				n := len(t.Float32) / b
				return t.Float32[i*n : (i+1)*n]
			}
			tq, tk := len(part(q))/c, len(part(k))/c
			res, err := aas.GoAttention{}.Attend(context.Background(), shape, []aas.Job{
				{Q: part(q), K: part(k), V: part(v), Tq: tq, Tk: tk},
				{Q: part(q), K: part(kip), V: part(vip), Tq: tq, Tk: 16},
			})
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, len(res[0]))
			for j := range want {
				want[j] = res[0][j] + scale*res[1][j]
			}
			if e := relErr(part(sum), want); e > 1e-5 {
				t.Errorf("%s item %d: attn2 output off by %.3g from attn(Q,K,V) + %g·attn(Q,K_ip,V_ip)", il.Name, i, e, scale)
			}
			if c := aas.Cosine(res[0], res[1]); c > 0.999 {
				t.Errorf("%s: the IP attention output equals the text one (cos %.4f): not a test", il.Name, c)
			}
		}
	}
}

// TestScaleZeroIsPlain checks that with scale 0 the injected U-Net computes the plain U-Net's
// output bit for bit, whatever the IP tokens.
func TestScaleZeroIsPlain(t *testing.T) {
	rt := openRuntime(t)
	x := inject(t, 0)
	plain, o, _ := plainUNet(t)
	ps := load(t, rt, plain, []string{"out_sample"})
	is, err := rt.Load(x.model, engine.SessionOptions{Outputs: []string{"out_sample"}})
	if err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	in := unetInputs(o, 9, 3)
	want, err := ps.Run(context.Background(), in[:3]...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := is.Run(context.Background(), in...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[0].Float32, want[0].Float32) {
		t.Errorf("scale 0: out_sample differs from the plain U-Net (relative %.3g)", relErr(got[0].Float32, want[0].Float32))
	}
	// And a non-zero scale does change it.
	y := inject(t, DefaultScale)
	ys, err := rt.Load(y.model, engine.SessionOptions{Outputs: []string{"out_sample"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ys.Close()
	got, err = ys.Run(context.Background(), in...)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(got[0].Float32, want[0].Float32) {
		t.Error("scale 0.5: out_sample equals the plain U-Net's")
	}
}

// TestInjectKeepsExternalData injects into a U-Net whose weights live in an external file and
// checks every original initializer keeps its external reference, the new ones are inline,
// and the result runs from bytes with the original folder as the external data folder.
func TestInjectKeepsExternalData(t *testing.T) {
	rt := openRuntime(t)
	dir := t.TempDir()
	m, o, cross := plainUNet(t)
	if err := onnx.MoveToExternal(m, dir, "model.onnx_data", 64); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, init := range m.GetGraph().GetInitializer() {
		if onnx.IsExternal(init) {
			e, _ := onnx.External(init)
			before[init.GetName()] = fmt.Sprint(e)
		}
	}
	path := writeModel(t, dir, "model.onnx", m)
	ts := newTensorSet(5, false)
	ts.addIPLayers(t, cross, o.CtxChannels)
	ts.addResampler(ResamplerShape{Embedding: 24, Dim: 16, Queries: 16, Output: 16, Depth: 1, Heads: 2, HeadDim: 8, FeedForward: 32})
	a := &Adapter{weights: ts.file(t), scale: DefaultScale, shape: ResamplerShape{Output: 16}}
	data, gotDir, inj, err := a.InjectUNet(path)
	if err != nil {
		t.Fatal(err)
	}
	if gotDir != dir || len(inj.Layers) != 16 {
		t.Errorf("dir %q (want %q), %d layers", gotDir, dir, len(inj.Layers))
	}
	back, err := onnx.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	after := 0
	for _, init := range back.GetGraph().GetInitializer() {
		if !onnx.IsExternal(init) {
			continue
		}
		after++
		e, _ := onnx.External(init)
		if before[init.GetName()] != fmt.Sprint(e) {
			t.Errorf("%s: external reference changed", init.GetName())
		}
	}
	if after != len(before) || len(before) == 0 {
		t.Errorf("%d external initializers after injection, %d before", after, len(before))
	}
	sess, err := rt.Load(data, engine.SessionOptions{ExternalDataDir: gotDir, Outputs: []string{"out_sample"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Run(context.Background(), unetInputs(o, 1, 1)...); err != nil {
		t.Fatal(err)
	}
}

// TestInjectFullSize injects adapter weights of IP-Adapter Plus SD 1.5's real shapes
// (to_k_ip [C, 768] for C = 320, 640, 1280) into the full-size SD 1.5 structure, whose own
// weights are external and absent: the graph is edited without ever loading them.
func TestInjectFullSize(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 80 MB of weights")
	}
	m, _ := testgraphs.SDUNet(testgraphs.SD15())
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	var cross []attention.Layer
	for _, l := range layers {
		if l.Kind == attention.Cross {
			cross = append(cross, l)
		}
	}
	ts := newTensorSet(1, true)
	ts.addIPLayers(t, cross, 768)
	inj, err := Inject(m, ts.file(t), InjectOptions{Scale: DefaultScale})
	if err != nil {
		t.Fatal(err)
	}
	if inj.Width != 768 || len(inj.Layers) != 16 {
		t.Fatalf("width %d, %d layers", inj.Width, len(inj.Layers))
	}
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnx.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	after, err := attention.Find(back)
	if err != nil {
		t.Fatal(err)
	}
	heads := map[string][2]int{}
	for _, l := range after {
		heads[l.Name] = [2]int{l.Heads, l.HeadDim}
	}
	for _, il := range inj.Layers {
		if h := heads[il.IPName]; h != heads[il.Name] || h[0] != 8 {
			t.Errorf("%s: %v heads×dim, attn2 has %v", il.IPName, h, heads[il.Name])
		}
	}
	if len(after) != 48 {
		t.Errorf("%d layers after injection, want 48", len(after))
	}
}
