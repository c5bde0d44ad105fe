//go:build cgo

package engine

import (
	"errors"
	"math"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// TestCopyOutputsReleasesEachBeforeTheNext checks the memory contract of Session.Run's copy
// path: when output i is copied, every earlier ORT value is already released (so the full
// set never exists twice), later ones are still intact, the copies are bit-identical, and on
// a failed copy nothing is left live.
func TestCopyOutputsReleasesEachBeforeTheNext(t *testing.T) {
	openRuntime(t) // initialises the ONNX Runtime environment that ort.NewTensor needs
	for _, c := range []struct {
		name   string
		failAt int // index whose copy fails; -1 for none
	}{
		{"all copied", -1},
		{"first copy fails", 0},
		{"middle copy fails", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n = 4
			names := make([]string, n)
			data := make([][]float32, n)
			tensors := make([]*ort.Tensor[float32], n)
			outs := make([]ort.Value, n)
			for i := range n {
				names[i] = string(rune('a' + i))
				// Values that only survive a bit-exact copy: a NaN payload, -0, a subnormal.
				data[i] = []float32{float32(i), math.Float32frombits(0x7fc00001 + uint32(i)), float32(math.Copysign(0, -1)), math.Float32frombits(1 + uint32(i)), 1e30}
				x, err := ort.NewTensor(ort.NewShape(1, int64(len(data[i]))), slices.Clone(data[i]))
				if err != nil {
					t.Fatal(err)
				}
				tensors[i], outs[i] = x, x
			}
			calls := 0
			from := func(name string, v ort.Value) (Tensor, error) {
				i := calls
				calls++
				for j := range n {
					released := tensors[j].GetData() == nil
					if j < i && (!released || outs[j] != nil) {
						t.Errorf("copying output %d: output %d is not released yet", i, j)
					}
					if j >= i && released {
						t.Errorf("copying output %d: output %d is already released", i, j)
					}
				}
				if i == c.failAt {
					return Tensor{}, errors.New("injected copy failure")
				}
				return fromValue(name, v)
			}
			got, err := copyOutputs(names, outs, from)
			for j := range n {
				if tensors[j].GetData() != nil || outs[j] != nil {
					t.Errorf("after copyOutputs, output %d is still live", j)
				}
			}
			if c.failAt >= 0 {
				if err == nil || calls != c.failAt+1 {
					t.Fatalf("failing at %d: err %v after %d copies", c.failAt, err, calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, g := range got {
				if g.Name != names[i] || !slices.Equal(g.Shape, []int64{1, int64(len(data[i]))}) {
					t.Errorf("output %d: name %q shape %v", i, g.Name, g.Shape)
				}
				for k := range data[i] {
					if math.Float32bits(g.Float32[k]) != math.Float32bits(data[i][k]) {
						t.Errorf("output %d element %d: %08x, want %08x", i, k, math.Float32bits(g.Float32[k]), math.Float32bits(data[i][k]))
					}
				}
			}
		})
	}
}
