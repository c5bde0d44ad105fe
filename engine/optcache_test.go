//go:build cgo

package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/diffsim/diffsim/engine/onnx"
)

// writeExternalModel writes a two-MatMul model whose weights live in an external file, as
// large exports do, and returns its folder and bytes.
func writeExternalModel(t *testing.T, c int) (string, []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	b := onnx.NewBuilder("external")
	x := b.Input("x", onnx.Float, 1, int64(c))
	h := b.Node("MatMul", "mm1", []string{x, b.Floats("w1", []int64{int64(c), int64(c)}, randomWeights(r, c*c, 0.1))})
	h = b.Node("Relu", "relu", []string{h})
	y := b.Node("MatMul", "mm2", []string{h, b.Floats("w2", []int64{int64(c), int64(c)}, randomWeights(r, c*c, 0.1))})
	b.Last().Output[0] = "y"
	b.Output(y[:0]+"y", onnx.Float, 1, int64(c))
	m := b.Model()
	dir := t.TempDir()
	if err := onnx.MoveToExternal(m, dir, "model.onnx_data", 1024); err != nil {
		t.Fatal(err)
	}
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, data
}

func openCached(t *testing.T, gc *GraphCache) *Runtime {
	t.Helper()
	rt, err := Open(Options{Device: "cpu", GraphCache: gc})
	if errors.Is(err, ErrNoLibrary) && os.Getenv("CI") == "" {
		t.Skipf("no ONNX Runtime library: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func runOnce(t *testing.T, rt *Runtime, dir string, x []float32) []float32 {
	t.Helper()
	s, err := rt.LoadFile(filepath.Join(dir, "model.onnx"), SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), F32("x", []int64{1, int64(len(x))}, x))
	if err != nil {
		t.Fatal(err)
	}
	return out[0].Float32
}

func TestGraphCacheHitGivesSameOutputs(t *testing.T) {
	const c = 256
	dir, _ := writeExternalModel(t, c)
	var writes []int64
	gc := &GraphCache{Dir: filepath.Join(t.TempDir(), "graphs"), MinBytes: 1, OnWrite: func(n int64) { writes = append(writes, n) }}
	rt := openCached(t, gc)
	x := randomWeights(rand.New(rand.NewPCG(1, 2)), c, 1)

	// Uncached reference, from a runtime without the cache.
	plain := &Runtime{opts: rt.opts, lib: rt.lib, device: rt.device, sessions: map[*Session]struct{}{}}
	plain.opts.GraphCache = nil
	want := runOnce(t, plain, dir, x)

	cold := runOnce(t, rt, dir, x)
	entries, err := ListGraphCache(gc.Dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("after the first load: %d entries (%v), want 1", len(entries), err)
	}
	if len(writes) != 1 || writes[0] < 2*c*c*4 {
		t.Errorf("OnWrite heard %v on the first load; want one call with at least the %d bytes of weights", writes, 2*c*c*4)
	}
	entry := filepath.Join(gc.Dir, entries[0].Key)
	t.Logf("cache entry: %d bytes for %d bytes of weights", entries[0].Bytes, 2*c*c*4)
	for _, f := range []string{graphFile, weightsFile, metaFile} {
		if _, err := os.Stat(filepath.Join(entry, f)); err != nil {
			t.Errorf("cache entry lacks %s: %v", f, err)
		}
	}
	// Age the entry so that the hit's touch is visible.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(entry, metaFile), old, old); err != nil {
		t.Fatal(err)
	}
	warm := runOnce(t, rt, dir, x)
	st, err := os.Stat(filepath.Join(entry, metaFile))
	if err != nil || !st.ModTime().After(old.Add(time.Minute)) {
		t.Errorf("second load did not use the cache entry (meta.json not touched: %v)", err)
	}
	for i := range want {
		if cold[i] != want[i] || warm[i] != want[i] {
			t.Fatalf("y[%d]: uncached %v, cold %v, warm %v; want all equal", i, want[i], cold[i], warm[i])
		}
	}
	if n, _ := ListGraphCache(gc.Dir); len(n) != 1 {
		t.Errorf("after the hit: %d entries, want still 1", len(n))
	}
	if len(writes) != 1 {
		t.Errorf("OnWrite called %d times after a miss and a hit; want once", len(writes))
	}
}

func TestGraphCacheKeyChangesWithWeightsAndOutputs(t *testing.T) {
	dir, data := writeExternalModel(t, 16)
	ext := []string{"model.onnx_data"}
	base := graphCacheKey(data, dir, ext, "1.30.0", "cpu")
	cases := []struct {
		name   string
		mutate func() string
	}{
		{"runtime version", func() string { return graphCacheKey(data, dir, ext, "1.31.0", "cpu") }},
		{"device", func() string { return graphCacheKey(data, dir, ext, "1.30.0", "cuda:0") }},
		{"instrumented outputs", func() string {
			return graphCacheKey(onnx.AppendOutputs(data, []string{"relu"}), dir, ext, "1.30.0", "cpu")
		}},
		{"weights rewritten", func() string {
			p := filepath.Join(dir, "model.onnx_data")
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(p, later, later); err != nil {
				t.Fatal(err)
			}
			return graphCacheKey(data, dir, ext, "1.30.0", "cpu")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if k := tc.mutate(); k == base {
				t.Errorf("key unchanged (%s)", k)
			}
		})
	}
	if again := graphCacheKey(data, dir, ext, "1.30.0", "cuda:0"); again == base {
		t.Error("keys for different devices collide")
	}
}

func TestGraphCacheSmallModelsAreNotCached(t *testing.T) {
	dir, _ := writeExternalModel(t, 32)
	gc := &GraphCache{Dir: filepath.Join(t.TempDir(), "graphs")} // default 64 MB minimum
	rt := openCached(t, gc)
	runOnce(t, rt, dir, make([]float32, 32))
	if entries, _ := ListGraphCache(gc.Dir); len(entries) != 0 {
		t.Errorf("a 8 KB model was cached (%d entries)", len(entries))
	}
}
