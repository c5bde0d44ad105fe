//go:build cgo

package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/engine/onnx"
)

// TestRunShapedWritesIntoGoBuffers checks RunShaped against Run: with the right shapes the
// outputs are the same bits (the runtime wrote them into the buffers it was given: a buffer
// it ignored would come back as zeros); with a wrong shape the result is still right, the
// session remembers the refusal and offers no buffers again; shapes for the wrong number of
// outputs are an error, and a cancelled run is not repeated.
func TestRunShapedWritesIntoGoBuffers(t *testing.T) {
	const s, c, h = 6, 8, 2
	m, _ := selfAttention(s, c, h)
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// The same graph with its output's shape undeclared: the runtime then finds a wrong buffer
	// only when the node writes it ("Shape mismatch"), not before the run.
	m.GetGraph().GetOutput()[0].GetType().GetTensorType().Shape = nil
	undeclared, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	rt := openRuntime(t)
	x := randomWeights(rand.New(rand.NewPCG(3, 4)), s*c, 1)
	in := F32("x", []int64{1, s, c}, x)
	ctx := context.Background()

	for _, tc := range []struct {
		name        string
		model       []byte
		shapes      [][]int64
		wantRefused bool
	}{
		{"no shapes", data, nil, false},
		{"unknown shape", data, [][]int64{nil}, false},
		{"right shape", data, [][]int64{{1, s, c}}, false},
		{"right shape, undeclared", undeclared, [][]int64{{1, s, c}}, false},
		{"wrong shape", data, [][]int64{{1, s + 1, c}}, true},
		{"wrong shape, undeclared", undeclared, [][]int64{{1, s + 1, c}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := rt.LoadSession(tc.model, SessionOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			want, err := sess.Run(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			for run := range 2 {
				got, err := sess.RunShaped(ctx, tc.shapes, in)
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				if !slices.Equal(got[0].Shape, want[0].Shape) || !slices.Equal(got[0].Float32, want[0].Float32) {
					t.Fatalf("run %d: RunShaped gave shape %v %v…, Run gave %v %v…", run, got[0].Shape, got[0].Float32[:4], want[0].Shape, want[0].Float32[:4])
				}
			}
			if got := sess.BuffersRefused(); got != tc.wantRefused {
				t.Errorf("BuffersRefused = %v, want %v", got, tc.wantRefused)
			}
		})
	}

	sess, err := rt.LoadSession(data, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.RunShaped(ctx, [][]int64{{1, s, c}, {1}}, in); err == nil {
		t.Error("two shapes for one output: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sess.RunShaped(cctx, [][]int64{{1, s + 1, c}}, in); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
	if sess.BuffersRefused() {
		t.Error("a cancelled run counted as a refused buffer")
	}
}

// TestRunShapedFallsBackOnAnyFailure offers a wrong buffer for an intermediate tensor that
// nodes downstream also read (as every tapped Q, K and V is): ONNX Runtime words that refusal
// differently ("The output OrtValue provided for output … has shape … but the computed output
// shape for this run is …"), and the run must still fall back and succeed, then offer no
// buffers again.
func TestRunShapedFallsBackOnAnyFailure(t *testing.T) {
	const s, c, h = 6, 8, 2
	m, _ := selfAttention(s, c, h)
	var q string
	for _, n := range m.GetGraph().GetNode() {
		if n.GetName() == "/attn/q_proj/Add" {
			q = n.GetOutput()[0]
		}
	}
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	data = onnx.AppendOutputs(data, []string{q})
	rt := openRuntime(t)
	ctx := context.Background()
	in := F32("x", []int64{1, s, c}, randomWeights(rand.New(rand.NewPCG(5, 6)), s*c, 1))
	for _, wrong := range [][]int64{{1, 2 * s, c}, {1, s / 2, c}, {1, s, c, 1}} {
		sess, err := rt.LoadSession(data, SessionOptions{Outputs: []string{"y", q}})
		if err != nil {
			t.Fatal(err)
		}
		want, err := sess.Run(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sess.RunShaped(ctx, [][]int64{{1, s, c}, wrong}, in)
		if err != nil {
			t.Fatalf("buffer %v for %v: %v", wrong, want[1].Shape, err)
		}
		for i := range want {
			if !slices.Equal(got[i].Shape, want[i].Shape) || !slices.Equal(got[i].Float32, want[i].Float32) {
				t.Fatalf("buffer %v: output %d differs from Run's", wrong, i)
			}
		}
		if !sess.BuffersRefused() {
			t.Errorf("buffer %v: the session still offers buffers after one was refused", wrong)
		}
		sess.Close()
	}
}
