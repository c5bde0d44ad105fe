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
