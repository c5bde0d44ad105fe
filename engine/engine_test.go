//go:build cgo

package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// selfAttention builds x [1,S,C] → Q,K,V projections (with bias) → 4-D heads → softmax(QKᵀ·s) → V
// → merge heads → output projection, with seeded random weights, and returns the weights for
// the Go reference.
type attnWeights struct {
	s, c, h        int
	wq, wk, wv, wo []float32
	bq, bk, bv     []float32
}

func randomWeights(r *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * scale)
	}
	return out
}

func selfAttention(s, c, h int) (*onnxpb.ModelProto, attnWeights) {
	r := rand.New(rand.NewPCG(42, 1))
	w := attnWeights{s: s, c: c, h: h,
		wq: randomWeights(r, c*c, 0.3), wk: randomWeights(r, c*c, 0.3), wv: randomWeights(r, c*c, 0.3), wo: randomWeights(r, c*c, 0.3),
		bq: randomWeights(r, c, 0.1), bk: randomWeights(r, c, 0.1), bv: randomWeights(r, c, 0.1)}
	b := onnx.NewBuilder("self-attention")
	x := b.Input("x", onnx.Float, 1, int64(s), int64(c))
	proj := func(name string, wt, bias []float32) string {
		y := b.Node("MatMul", "/attn/"+name+"/MatMul", []string{x, b.Floats(name+".weight", []int64{int64(c), int64(c)}, wt)})
		return b.Node("Add", "/attn/"+name+"/Add", []string{y, b.Floats(name+".bias", []int64{int64(c)}, bias)})
	}
	split := b.Ints("split", []int64{4}, []int64{0, 0, int64(h), int64(c / h)})
	heads := func(v string, perm ...int64) string {
		return b.Node("Transpose", "", []string{b.Node("Reshape", "", []string{v, split})}, onnx.AttrInts("perm", perm...))
	}
	q := heads(proj("q_proj", w.wq, w.bq), 0, 2, 1, 3)
	k := heads(proj("k_proj", w.wk, w.bk), 0, 2, 3, 1)
	v := heads(proj("v_proj", w.wv, w.bv), 0, 2, 1, 3)
	sc := b.Node("Mul", "/attn/Mul", []string{b.Node("MatMul", "/attn/MatMul", []string{q, k}), b.Scalar("scale", float32(1/math.Sqrt(float64(c/h))))})
	p := b.Node("Softmax", "/attn/Softmax", []string{sc}, onnx.AttrInt("axis", -1))
	o := b.Node("Transpose", "", []string{b.Node("MatMul", "/attn/MatMul_1", []string{p, v})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	o = b.Node("Reshape", "", []string{o, b.Ints("merge", []int64{3}, []int64{0, 0, int64(c)})})
	y := b.Node("MatMul", "/attn/out_proj/MatMul", []string{o, b.Floats("out.weight", []int64{int64(c), int64(c)}, w.wo)})
	b.Last().Output[0] = "y"
	b.Output(y[:0]+"y", onnx.Float, 1, int64(s), int64(c))
	return b.Model(), w
}

// reference computes the same graph in float64.
func (w attnWeights) reference(x []float32) []float64 {
	s, c, h := w.s, w.c, w.h
	d := c / h
	lin := func(in []float64, wt, bias []float32) []float64 {
		out := make([]float64, s*c)
		for i := 0; i < s; i++ {
			for j := 0; j < c; j++ {
				var acc float64
				if bias != nil {
					acc = float64(bias[j])
				}
				for k := 0; k < c; k++ {
					acc += in[i*c+k] * float64(wt[k*c+j])
				}
				out[i*c+j] = acc
			}
		}
		return out
	}
	xf := make([]float64, len(x))
	for i, v := range x {
		xf[i] = float64(v)
	}
	q, k, v := lin(xf, w.wq, w.bq), lin(xf, w.wk, w.bk), lin(xf, w.wv, w.bv)
	o := make([]float64, s*c)
	for hh := 0; hh < h; hh++ {
		for i := 0; i < s; i++ {
			sc := make([]float64, s)
			best := math.Inf(-1)
			for j := 0; j < s; j++ {
				for e := 0; e < d; e++ {
					sc[j] += q[i*c+hh*d+e] * k[j*c+hh*d+e]
				}
				sc[j] /= math.Sqrt(float64(d))
				best = math.Max(best, sc[j])
			}
			var sum float64
			for j := range sc {
				sc[j] = math.Exp(sc[j] - best)
				sum += sc[j]
			}
			for j := 0; j < s; j++ {
				for e := 0; e < d; e++ {
					o[i*c+hh*d+e] += sc[j] / sum * v[j*c+hh*d+e]
				}
			}
		}
	}
	return lin(o, w.wo, nil)
}

func relL2(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}

func openRuntime(t testing.TB) *Runtime {
	t.Helper()
	rt, err := Open(Options{})
	if err != nil {
		t.Fatalf("the ONNX Runtime library must be present for these tests (scripts/setup-runtime.sh): %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestSelfAttentionMatchesFloat64Reference(t *testing.T) {
	const s, c, h = 20, 32, 4
	m, w := selfAttention(s, c, h)
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	x := randomWeights(rand.New(rand.NewPCG(9, 9)), s*c, 1)
	want := w.reference(x)
	rt := openRuntime(t)
	ctx := context.Background()

	fromBytes, err := rt.Load(data, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fromBytes.Close()
	out1, err := fromBytes.Run(ctx, F32("x", []int64{1, s, c}, x))
	if err != nil {
		t.Fatal(err)
	}
	if e := relL2(out1[0].Float32, want); e >= 1e-5 {
		t.Errorf("relative L2 error against float64 reference: %g (want < 1e-5)", e)
	}

	path := filepath.Join(t.TempDir(), "attn.onnx")
	if err := onnx.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	fromFile, err := rt.LoadFile(path, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fromFile.Close()
	out2, err := fromFile.Run(ctx, F32("x", []int64{1, s, c}, x))
	if err != nil {
		t.Fatal(err)
	}
	for i := range out1[0].Float32 {
		if out1[0].Float32[i] != out2[0].Float32[i] {
			t.Fatalf("output %d: %v from bytes, %v from a file", i, out1[0].Float32[i], out2[0].Float32[i])
		}
	}
}

func TestExternalWeightsLoadFromMemoryWithFolder(t *testing.T) {
	const s, c, h = 8, 16, 2
	m, w := selfAttention(s, c, h)
	dir := t.TempDir()
	if err := onnx.MoveToExternal(m, dir, "weights.bin", 16); err != nil {
		t.Fatal(err)
	}
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	x := randomWeights(rand.New(rand.NewPCG(1, 9)), s*c, 1)
	rt := openRuntime(t)
	sess, err := rt.Load(data, SessionOptions{ExternalDataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Run(context.Background(), F32("x", []int64{1, s, c}, x))
	if err != nil {
		t.Fatal(err)
	}
	if e := relL2(out[0].Float32, w.reference(x)); e >= 1e-5 {
		t.Errorf("with external weights: relative error %g", e)
	}
	if _, err := rt.Load(data, SessionOptions{ExternalDataDir: t.TempDir()}); err == nil {
		t.Error("loading with the wrong weights folder succeeded")
	}
}

func TestRunErrors(t *testing.T) {
	m, _ := selfAttention(4, 8, 2)
	data, _ := onnx.Marshal(m)
	rt := openRuntime(t)
	if _, err := rt.Load([]byte("not a model at all"), SessionOptions{}); !errors.Is(err, onnx.ErrNotONNX) {
		t.Errorf("garbage bytes: %v", err)
	}
	sess, err := rt.Load(data, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	x := make([]float32, 4*8)
	for _, c := range []struct {
		name string
		in   Tensor
		want string
	}{
		{"wrong input name", F32("y", []int64{1, 4, 8}, x), "missing input \"x\""},
		{"wrong shape", F32("x", []int64{1, 8, 4}, x), "the model wants"},
		{"wrong rank", F32("x", []int64{32}, x), "rank 3"},
		{"wrong type", I64("x", []int64{1, 4, 8}, make([]int64, 32)), "float32"},
		{"short data", F32("x", []int64{1, 4, 8}, x[:5]), "5 values"},
	} {
		if _, err := sess.Run(ctx, c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := sess.Run(ctx, F32("x", []int64{1, 4, 8}, x), F32("z", []int64{1}, []float32{1})); err == nil || !strings.Contains(err.Error(), "unknown input") {
		t.Errorf("extra input: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sess.Run(cctx, F32("x", []int64{1, 4, 8}, x)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := sess.Run(ctx, F32("x", []int64{1, 4, 8}, x)); err == nil {
		t.Error("Run on a closed session succeeded")
	}
}

func TestIOInfo(t *testing.T) {
	b := onnx.NewBuilder("io")
	ts := b.Input("timestep", onnx.Int64, -1)
	f := b.Input("scalar", onnx.Float)
	y := b.Node("Cast", "/cast", []string{ts}, onnx.AttrInt("to", int64(onnx.Float)))
	z := b.Node("Add", "/add", []string{y, f})
	b.Output(z, onnx.Float, -1)
	data, _ := onnx.Marshal(b.Model())
	rt := openRuntime(t)
	sess, err := rt.Load(data, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in := sess.Inputs()
	if len(in) != 2 || in[0].Type != Int64 || in[0].Rank() != 1 || in[1].Rank() != 0 {
		t.Fatalf("inputs %v", in)
	}
	out, err := sess.Run(context.Background(), I64("timestep", []int64{2}, []int64{3, 400}), F32("scalar", []int64{}, []float32{0.5}))
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].Float32; got[0] != 3.5 || got[1] != 400.5 {
		t.Errorf("got %v", got)
	}
}

// The failure paths of loading the library run in a child process: ONNX Runtime is set up
// once per process, and these must see a process where it is not.
func TestLibraryFailures(t *testing.T) {
	if os.Getenv("DIFFSIM_ENGINE_CHILD") != "" {
		_, err := Open(Options{})
		if err == nil {
			os.Exit(0)
		}
		os.Stderr.WriteString(err.Error())
		os.Exit(3)
	}
	notLib := filepath.Join(t.TempDir(), "libonnxruntime.so")
	os.WriteFile(notLib, []byte("hello"), 0o644)
	otherELF := "/bin/true"
	cases := []struct{ name, lib, want string }{
		{"missing", filepath.Join(t.TempDir(), "nope.so"), "does not exist"},
		{"not a library", notLib, "not a shared library"},
		{"another ELF file", otherELF, "load ONNX Runtime"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestLibraryFailures$")
			cmd.Env = append(os.Environ(), "DIFFSIM_ENGINE_CHILD=1", "ONNXRUNTIME_LIB="+c.lib)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 3 {
				t.Fatalf("child: %v, output %q (want exit 3: a clean error, not a crash)", err, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("error %q does not say %q", out, c.want)
			}
		})
	}
}

func TestDeviceParsing(t *testing.T) {
	for in, want := range map[string]string{"": "cuda:0", "auto": "cuda:0", "cpu": "cpu", "cuda": "cuda:0", "cuda:3": "cuda:3"} {
		d, err := ParseDevice(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseDevice(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"tpu", "cuda:x", "cuda:-1"} {
		if _, err := ParseDevice(bad); err == nil {
			t.Errorf("ParseDevice(%q) accepted", bad)
		}
	}
	rt := openRuntime(t)
	if d := rt.Device(); d.Kind != "cpu" && d.Kind != "cuda" {
		t.Errorf("device %v", d)
	}
}

func TestCancelMidRunThenRunAgain(t *testing.T) {
	b := onnx.NewBuilder("slow")
	x := b.Input("x", onnx.Float, 512, 512)
	y := x
	for i := 0; i < 40; i++ {
		y = b.Node("MatMul", fmt.Sprintf("/mm%d", i), []string{y, x})
	}
	b.Output(y, onnx.Float, 512, 512)
	data, _ := onnx.Marshal(b.Model())
	rt := openRuntime(t)
	sess, err := rt.Load(data, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in := F32("x", []int64{512, 512}, make([]float32, 512*512))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	if _, err := sess.Run(ctx, in); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled mid-run: err = %v", err)
	}
	t.Logf("cancelled after %v", time.Since(start))
	if _, err := sess.Run(context.Background(), in); err != nil {
		t.Fatalf("the run after a cancelled one failed: %v", err)
	}
}
