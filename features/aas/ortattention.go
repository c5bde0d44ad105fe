package aas

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
)

// RuntimeAttention computes attention with ONNX Runtime's com.microsoft.MultiHeadAttention on
// the model's execution provider, and in Go below MinWork (Tq·Tk·Heads), where a runtime call
// costs more than it saves. The crossover was measured with BenchmarkAttention.
type RuntimeAttention struct {
	Loader  features.Loader
	MinWork int

	mu       sync.Mutex
	sessions map[Shape]engine.Runner
}

// DefaultMinWork is where the runtime overtakes Go on this project's 2-core reference machine.
const DefaultMinWork = 32 * 1024

// NewRuntimeAttention makes an attention that runs on loader's execution provider.
func NewRuntimeAttention(l features.Loader) *RuntimeAttention {
	return &RuntimeAttention{Loader: l, MinWork: DefaultMinWork, sessions: map[Shape]engine.Runner{}}
}

// Attend implements Attention.
func (r *RuntimeAttention) Attend(ctx context.Context, s Shape, jobs []Job) ([][]float32, error) {
	small := true
	for _, j := range jobs {
		if j.Tq*j.Tk*s.Heads >= r.MinWork {
			small = false
		}
	}
	if small {
		return GoAttention{}.Attend(ctx, s, jobs)
	}
	sess, err := r.session(s)
	if err != nil {
		return nil, err
	}
	c := s.Heads * s.HeadDim
	outs := make([][]float32, len(jobs))
	// Jobs with the same token counts run as one batch.
	for i := 0; i < len(jobs); {
		j0 := jobs[i]
		n := 1
		for i+n < len(jobs) && jobs[i+n].Tq == j0.Tq && jobs[i+n].Tk == j0.Tk {
			n++
		}
		q := make([]float32, 0, n*j0.Tq*c)
		k := make([]float32, 0, n*j0.Tk*c)
		v := make([]float32, 0, n*j0.Tk*c)
		for _, j := range jobs[i : i+n] {
			if err := j.check(s); err != nil {
				return nil, err
			}
			q, k, v = append(q, j.Q...), append(k, j.K...), append(v, j.V...)
		}
		res, err := sess.Run(ctx,
			engine.F32("q", []int64{int64(n), int64(j0.Tq), int64(c)}, q),
			engine.F32("k", []int64{int64(n), int64(j0.Tk), int64(c)}, k),
			engine.F32("v", []int64{int64(n), int64(j0.Tk), int64(c)}, v))
		if err != nil {
			return nil, fmt.Errorf("attention: %w", err)
		}
		per := j0.Tq * c
		for b := 0; b < n; b++ {
			outs[i+b] = res[0].Float32[b*per : (b+1)*per]
		}
		i += n
	}
	return outs, nil
}

func (r *RuntimeAttention) session(s Shape) (engine.Runner, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sess, ok := r.sessions[s]; ok {
		return sess, nil
	}
	data, err := attentionGraph(s)
	if err != nil {
		return nil, err
	}
	sess, err := r.Loader.Load(data, engine.SessionOptions{})
	if err != nil {
		return nil, fmt.Errorf("attention graph: %w", err)
	}
	r.sessions[s] = sess
	return sess, nil
}

// attentionGraph is one com.microsoft.MultiHeadAttention node: q, k, v [B, S, C] → out [B, Sq, C].
func attentionGraph(s Shape) ([]byte, error) {
	b := onnx.NewBuilder("diffsim-attention")
	b.Opset("com.microsoft", 1)
	c := int64(s.Heads * s.HeadDim)
	q := b.Input("q", onnx.Float, -1, -1, c)
	k := b.Input("k", onnx.Float, -1, -1, c)
	v := b.Input("v", onnx.Float, -1, -1, c)
	out := b.NodeIn("com.microsoft", "MultiHeadAttention", "attention", []string{q, k, v}, 1,
		onnx.AttrInt("num_heads", int64(s.Heads)), onnx.AttrFloat("scale", float32(s.Scale)))
	b.Output(out[0], onnx.Float, -1, -1, c)
	return onnx.Marshal(b.Model())
}

// Close frees the attention sessions.
func (r *RuntimeAttention) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for k, s := range r.sessions {
		errs = append(errs, s.Close())
		delete(r.sessions, k)
	}
	return errors.Join(errs...)
}
