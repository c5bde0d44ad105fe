package tapped_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features/tapped"
)

// fakeRunner answers every selected output with a [batch, tokens, width] tensor whose values
// encode (output, item, position), so the split per item and layer can be checked without
// ONNX Runtime. width(name) decides each output's channel count.
type fakeRunner struct {
	outputs []string
	batch   int
	tokens  int
	width   func(name string) int
}

func (r *fakeRunner) Inputs() []engine.IOInfo {
	return []engine.IOInfo{{Name: "hidden_states", Type: engine.Float32}}
}
func (r *fakeRunner) Outputs() []engine.IOInfo { return nil }
func (r *fakeRunner) Close() error             { return nil }
func (r *fakeRunner) Run(context.Context, ...engine.Tensor) ([]engine.Tensor, error) {
	out := make([]engine.Tensor, len(r.outputs))
	for i, name := range r.outputs {
		w := r.width(name)
		v := make([]float32, r.batch*r.tokens*w)
		for k := range v {
			v[k] = float32(i*1_000_000 + k)
		}
		out[i] = engine.F32(name, []int64{int64(r.batch), int64(r.tokens), int64(w)}, v)
	}
	return out, nil
}

type fakeLoader struct{ runner *fakeRunner }

func (l *fakeLoader) Load(_ []byte, so engine.SessionOptions) (engine.Runner, error) {
	l.runner.outputs = so.Outputs
	return l.runner, nil
}

func TestRunSplitsPerItemAndLayer(t *testing.T) {
	o := testgraphs.DefaultOptions()
	m, _ := testgraphs.Attention(testgraphs.HFEager4D, o)
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	const tokens = 17 // 4×4 + CLS at a square input
	for _, tc := range []struct {
		name  string
		width func(layerChannels int) func(string) int
		want  string // "" for success, else part of the error
	}{
		{"well formed", func(c int) func(string) int { return func(string) int { return c } }, ""},
		{"wrong width", func(c int) func(string) int { return func(string) int { return c + 1 } }, "widths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &fakeRunner{batch: 2, tokens: tokens, width: tc.width(o.Channels)}
			tm, err := tapped.Load(&fakeLoader{r}, "fake", data, "", tapped.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := tm.Run(context.Background(), 56, 56)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want one about %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Features) != 2 || len(res.Features[0]) != len(tm.Layers) {
				t.Fatalf("%d items of %d layers, want 2 of %d", len(res.Features), len(res.Features[0]), len(tm.Layers))
			}
			per := tokens * o.Channels
			for b := range 2 {
				for li, l := range tm.Layers {
					f := res.Features[b][li]
					qi := indexOf(r.outputs, l.Q)
					if f.Tokens != tokens || f.GridH != 4 || f.GridW != 4 || f.Prefix != 1 || f.Heads != l.Heads {
						t.Errorf("item %d %s: %d tokens %dx%d+%d, %d heads", b, l.Name, f.Tokens, f.GridH, f.GridW, f.Prefix, f.Heads)
					}
					if want := float32(qi*1_000_000 + b*per); f.Q[0] != want || len(f.Q) != per {
						t.Errorf("item %d %s: Q starts at %v (%d values), want %v (%d): not this item's slice of %s", b, l.Name, f.Q[0], len(f.Q), want, per, l.Q)
					}
				}
			}
		})
	}
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

// shapedRunner is a fakeRunner that records the output shapes each run was offered.
type shapedRunner struct {
	*fakeRunner
	offered [][][]int64
}

func (r *shapedRunner) RunShaped(ctx context.Context, shapes [][]int64, in ...engine.Tensor) ([]engine.Tensor, error) {
	r.offered = append(r.offered, shapes)
	return r.Run(ctx, in...)
}

type shapedLoader struct{ runner *shapedRunner }

func (l *shapedLoader) Load(_ []byte, so engine.SessionOptions) (engine.Runner, error) {
	l.runner.outputs = so.Outputs
	return l.runner, nil
}

// TestShapesInferredOrLearned: with the inputs' shapes given, every run is offered the taps'
// shapes inferred from the graph, at whatever batch it feeds; without, the first run at an
// input size goes without and the next at that size is offered what it measured.
func TestShapesInferredOrLearned(t *testing.T) {
	o := testgraphs.DefaultOptions()
	m, _ := testgraphs.Attention(testgraphs.HFEager4D, o)
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	inputs := func(_ []engine.IOInfo, batch int) map[string][]int64 {
		return map[string][]int64{"hidden_states": {int64(batch), int64(o.Tokens), int64(o.Channels)}}
	}
	x := func(batch int) engine.Tensor {
		return engine.F32("hidden_states", []int64{int64(batch), int64(o.Tokens), int64(o.Channels)}, make([]float32, batch*o.Tokens*o.Channels))
	}
	width := func(string) int { return o.Channels }
	ctx := context.Background()

	r := &shapedRunner{fakeRunner: &fakeRunner{batch: 3, tokens: o.Tokens, width: width}}
	tm, err := tapped.Load(&shapedLoader{r}, "fake", data, "", tapped.Options{Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range tm.Tokens() {
		if n != o.Tokens {
			t.Errorf("layer %d: %d tokens inferred, want %d", i, n, o.Tokens)
		}
	}
	if _, err := tm.Run(ctx, 0, 0, x(3)); err != nil {
		t.Fatal(err)
	}
	if len(r.offered) != 1 || len(r.offered[0]) != len(r.outputs) {
		t.Fatalf("offered %v for %d outputs", r.offered, len(r.outputs))
	}
	for i, s := range r.offered[0] {
		if want := []int64{3, int64(o.Tokens), int64(o.Channels)}; !slices.Equal(s, want) {
			t.Errorf("output %s offered %v, want %v", r.outputs[i], s, want)
		}
	}

	r = &shapedRunner{fakeRunner: &fakeRunner{batch: 2, tokens: o.Tokens, width: width}}
	tm, err = tapped.Load(&shapedLoader{r}, "fake", data, "", tapped.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := tm.Run(ctx, 0, 0, x(2)); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.offered) != 1 {
		t.Fatalf("%d runs offered buffers, want only the second", len(r.offered))
	}
	for i, s := range r.offered[0] {
		if want := []int64{2, int64(o.Tokens), int64(o.Channels)}; !slices.Equal(s, want) {
			t.Errorf("output %s offered %v after a run made %v", r.outputs[i], s, want)
		}
	}
}
