package tapped

import (
	"slices"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx/infer"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// plan is what shape inference told of a session's outputs, at batch 1 and 2 of the inputs a
// family feeds: every dimension of a tapped tensor is affine in the batch, so two inferences
// give its shape at any batch without the graph.
type plan struct {
	in     [2]map[string][]int64 // input shapes at batch 1 and 2
	out    [2][][]int64          // per session output, its shape at batch 1 and 2; nil when unknown
	frozen bool                  // no input changes with the batch: the graph's batch is fixed
}

// newPlan infers the shapes of outputs in the instrumented graph g.
func newPlan(g *onnxpb.ModelProto, inputs func([]engine.IOInfo, int) map[string][]int64, outputs []string) plan {
	declared, _ := GraphIO(g)
	var p plan
	for b := range 2 {
		p.in[b] = inputs(declared, b+1)
		if p.in[b] == nil {
			return plan{}
		}
		shapes := infer.Shapes(g, p.in[b])
		p.out[b] = make([][]int64, len(outputs))
		for i, name := range outputs {
			if s, ok := shapes[name]; ok && !slices.Contains(s, infer.Unknown) {
				p.out[b][i] = s
			}
		}
	}
	p.frozen = true
	for name, s := range p.in[0] {
		if !slices.Equal(s, p.in[1][name]) {
			p.frozen = false
		}
	}
	return p
}

// batch finds the batch size at which the family's input shapes are those of inputs; 0 when
// they are not the shapes the plan was made for.
func (p plan) batch(inputs []engine.Tensor) int {
	if p.in[0] == nil || len(inputs) != len(p.in[0]) {
		return 0
	}
	batch := 0
	if p.frozen {
		batch = 1
	}
	for _, t := range inputs {
		s1, ok1 := p.in[0][t.Name]
		s2, ok2 := p.in[1][t.Name]
		if !ok1 || !ok2 || len(s1) != len(t.Shape) || len(s2) != len(t.Shape) {
			return 0
		}
		for k, d := range t.Shape {
			step := s2[k] - s1[k]
			switch {
			case step == 0 && d != s1[k]:
				return 0
			case step == 0:
			case (d-s1[k])%step != 0 || (d-s1[k])/step < 0:
				return 0
			default:
				b := int((d-s1[k])/step) + 1
				if batch != 0 && b != batch {
					return 0
				}
				batch = b
			}
		}
	}
	return batch
}

// predict is the shape of every output for a run on inputs: nil when the plan cannot tell any.
func (p plan) predict(inputs []engine.Tensor) [][]int64 {
	b := p.batch(inputs)
	if b == 0 {
		return nil
	}
	out := make([][]int64, len(p.out[0]))
	any := false
	for i := range out {
		s1, s2 := p.out[0][i], p.out[1][i]
		if s1 == nil || s2 == nil || len(s1) != len(s2) {
			continue
		}
		s := make([]int64, len(s1))
		for k := range s {
			s[k] = s1[k] + (s2[k]-s1[k])*int64(b-1)
		}
		out[i], any = s, true
	}
	if !any {
		return nil
	}
	return out
}

// tokens is the second dimension of output i at batch 1 ([batch, tokens, channels]); 0 when
// unknown.
func (p plan) tokens(i int) int {
	if p.out[0] == nil || i < 0 || i >= len(p.out[0]) || len(p.out[0][i]) != 3 {
		return 0
	}
	return int(p.out[0][i][1])
}
