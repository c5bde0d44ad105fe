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

// Attend implements Attention. Each job goes to Go or to the runtime by its own size, and jobs
// with the same token counts share one runtime call, so a job's output never depends on the
// jobs beside it: a self term computed alone has the bits it has computed beside its cross
// terms (aas.CompareWith keeps them on that).
func (r *RuntimeAttention) Attend(ctx context.Context, s Shape, jobs []Job) ([][]float32, error) {
	outs := make([][]float32, len(jobs))
	var small []int
	large := map[[2]int][]int{} // Tq, Tk → the jobs of that size
	var sizes [][2]int          // large's keys in the order first met
	for i, j := range jobs {
		if err := j.check(s); err != nil {
			return nil, err
		}
		if j.Tq*j.Tk*s.Heads < r.MinWork {
			small = append(small, i)
			continue
		}
		k := [2]int{j.Tq, j.Tk}
		if _, ok := large[k]; !ok {
			sizes = append(sizes, k)
		}
		large[k] = append(large[k], i)
	}
	if len(small) > 0 {
		sub := make([]Job, len(small))
		for n, i := range small {
			sub[n] = jobs[i]
		}
		res, err := GoAttention{}.Attend(ctx, s, sub)
		if err != nil {
			return nil, err
		}
		for n, i := range small {
			outs[i] = res[n]
		}
	}
	if len(sizes) == 0 {
		return outs, nil
	}
	sess, err := r.session(s)
	if err != nil {
		return nil, err
	}
	c := s.Heads * s.HeadDim
	for _, size := range sizes {
		idx := large[size]
		n, tq, tk := len(idx), size[0], size[1]
		q := make([]float32, 0, n*tq*c)
		k := make([]float32, 0, n*tk*c)
		v := make([]float32, 0, n*tk*c)
		for _, i := range idx {
			q, k, v = append(q, jobs[i].Q...), append(k, jobs[i].K...), append(v, jobs[i].V...)
		}
		res, err := sess.Run(ctx,
			engine.F32("q", []int64{int64(n), int64(tq), int64(c)}, q),
			engine.F32("k", []int64{int64(n), int64(tk), int64(c)}, k),
			engine.F32("v", []int64{int64(n), int64(tk), int64(c)}, v))
		if err != nil {
			return nil, fmt.Errorf("attention: %w", err)
		}
		per := tq * c
		for b, i := range idx {
			outs[i] = res[0].Float32[b*per : (b+1)*per]
		}
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
