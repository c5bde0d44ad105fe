// Package aas is the maths of DiffSim's Aligned Attention Score and its baselines, over the
// features a model family extracts: each image's queries attend to its own keys and values
// and to the other image's (cross-attended, aligned), and the score is the cosine of the two
// outputs, averaged over tokens and both directions (docs/method.md). Beside it: the
// pixel-aligned feature cosine and MSE, the attention row of one token, and the token maps.
//
// Attention itself runs in Go (GoAttention, the reference) or on the model's execution
// provider through ONNX Runtime's com.microsoft.MultiHeadAttention (RuntimeAttention), which
// measured fastest and lightest on CPU for large layers.
package aas

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/diffsim/diffsim/features"
)

// Shape is the head layout shared by the queries, keys and values of one attention call.
type Shape struct {
	Heads, HeadDim int
	Scale          float64
}

// Job is one attention call: Q [Tq][C], K and V [Tk][C], C = Heads × HeadDim, heads contiguous.
type Job struct {
	Q, K, V []float32
	Tq, Tk  int
}

// Attention computes softmax(Q Kᵀ·scale)·V per head for a batch of jobs sharing a Shape, and
// returns each job's output as [Tq][C]. GoAttention is the reference; the session may plug in
// one that runs on the model's execution provider.
type Attention interface {
	Attend(ctx context.Context, s Shape, jobs []Job) ([][]float32, error)
}

// GoAttention computes attention in Go on all cores. It is exact enough to be the reference
// (float32 products, float64 softmax sums) and fast for small layers.
type GoAttention struct{}

// Attend implements Attention.
func (GoAttention) Attend(ctx context.Context, s Shape, jobs []Job) ([][]float32, error) {
	outs := make([][]float32, len(jobs))
	for i, j := range jobs {
		if err := j.check(s); err != nil {
			return nil, err
		}
		outs[i] = make([]float32, j.Tq*s.Heads*s.HeadDim)
	}
	type task struct{ job, head, row0, row1 int }
	const rowsPerTask = 32
	tasks := make(chan task)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scores []float64
			for t := range tasks {
				j := jobs[t.job]
				if cap(scores) < j.Tk {
					scores = make([]float64, j.Tk)
				}
				attendRows(j, s, t.head, t.row0, t.row1, outs[t.job], scores[:j.Tk])
			}
		}()
	}
	var err error
feed:
	for ji, j := range jobs {
		for h := 0; h < s.Heads; h++ {
			for r := 0; r < j.Tq; r += rowsPerTask {
				if err = ctx.Err(); err != nil {
					break feed
				}
				tasks <- task{ji, h, r, min(r+rowsPerTask, j.Tq)}
			}
		}
	}
	close(tasks)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return outs, nil
}

func (j Job) check(s Shape) error {
	c := s.Heads * s.HeadDim
	if c <= 0 || j.Tq <= 0 || j.Tk <= 0 {
		return fmt.Errorf("attention: empty shape (%d heads × %d, %d queries, %d keys)", s.Heads, s.HeadDim, j.Tq, j.Tk)
	}
	if len(j.Q) != j.Tq*c || len(j.K) != j.Tk*c || len(j.V) != j.Tk*c {
		return fmt.Errorf("attention: Q/K/V sizes %d/%d/%d do not match %d×%d and %d×%d", len(j.Q), len(j.K), len(j.V), j.Tq, c, j.Tk, c)
	}
	return nil
}

// attendRows computes rows [r0, r1) of one head's output.
func attendRows(j Job, s Shape, head, r0, r1 int, out []float32, scores []float64) {
	c, d, off := s.Heads*s.HeadDim, s.HeadDim, head*s.HeadDim
	for i := r0; i < r1; i++ {
		q := j.Q[i*c+off : i*c+off+d]
		best := math.Inf(-1)
		for k := 0; k < j.Tk; k++ {
			kk := j.K[k*c+off : k*c+off+d]
			var dot float32
			for x := range q {
				dot += q[x] * kk[x]
			}
			sc := float64(dot) * s.Scale
			scores[k] = sc
			if sc > best {
				best = sc
			}
		}
		var sum float64
		for k := range scores {
			e := math.Exp(scores[k] - best)
			scores[k] = e
			sum += e
		}
		acc := make([]float64, d)
		for k := 0; k < j.Tk; k++ {
			p := scores[k] / sum
			vv := j.V[k*c+off : k*c+off+d]
			for x := range acc {
				acc[x] += p * float64(vv[x])
			}
		}
		o := out[i*c+off : i*c+off+d]
		for x := range o {
			o[x] = float32(acc[x])
		}
	}
}

// Comparison is everything AAS says about a pair at one layer.
type Comparison struct {
	AtoB, BtoA       float64 // cos(attn(Q_A,K_A,V_A), attn(Q_A,K_B,V_B)) over the flattened tensors, and B's
	MSEAtoB, MSEBtoA float64 // the same pairs compared by mean squared error
	FeatureCosine    float64 // cos(attn(Q_A,K_A,V_A), attn(Q_B,K_B,V_B)): pixel-aligned, no alignment; NaN when token counts differ
	FeatureMSE       float64
	MapA, MapB       []float32 // per-token cosine of self- and cross-attended features, A's tokens and B's
}

// Swapped is the comparison of B with A: the same four attention calls, each direction's
// numbers and maps in the other's place. The features' cosine and MSE are symmetric products
// and sums, and the scores means of two numbers, so Compare(B, A) gives these bits.
func (c Comparison) Swapped() Comparison {
	c.AtoB, c.BtoA = c.BtoA, c.AtoB
	c.MSEAtoB, c.MSEBtoA = c.MSEBtoA, c.MSEAtoB
	c.MapA, c.MapB = c.MapB, c.MapA
	return c
}

// Score is the symmetric AAS: the mean of both directions.
func (c Comparison) Score() float64 { return (c.AtoB + c.BtoA) / 2 }

// MSE is the symmetric MSE ablation (lower is more similar).
func (c Comparison) MSE() float64 { return (c.MSEAtoB + c.MSEBtoA) / 2 }

// ErrShape is wrapped when two images' features cannot be compared.
var ErrShape = errors.New("features do not match")

// Compare runs the four attention calls AAS needs and compares their outputs.
func Compare(ctx context.Context, att Attention, a, b features.Features) (Comparison, error) {
	c, _, err := CompareWith(ctx, att, a, b, Selves{})
	return c, err
}

// Selves are a pair's self terms, attn(Q_A, K_A, V_A) and attn(Q_B, K_B, V_B), [T][C]. Each
// depends on its own image alone (at one layer, t and conditioning), so a caller that keeps
// them computes only the two cross terms when the image meets its next partner.
type Selves struct{ A, B []float32 }

// CompareWith is Compare given the self terms already known (nil: not known): it runs only
// the attention calls still needed, the two cross terms when both are known, and returns the
// self terms it used, for the caller to keep. Its results are Compare's, bit for bit: an
// Attention computes each job on its own, whatever jobs share its call (GoAttention row by row,
// RuntimeAttention by the job's own size, in batches of one size), and the jobs run in
// Compare's order.
func CompareWith(ctx context.Context, att Attention, a, b features.Features, known Selves) (Comparison, Selves, error) {
	if a.Heads != b.Heads || a.HeadDim != b.HeadDim {
		return Comparison{}, Selves{}, fmt.Errorf("%w: %d×%d heads against %d×%d", ErrShape, a.Heads, a.HeadDim, b.Heads, b.HeadDim)
	}
	s := Shape{Heads: a.Heads, HeadDim: a.HeadDim, Scale: a.Scale}
	ch := s.Heads * s.HeadDim
	for _, k := range []struct {
		self []float32
		f    features.Features
	}{{known.A, a}, {known.B, b}} {
		if k.self != nil && len(k.self) != k.f.Tokens*ch {
			return Comparison{}, Selves{}, fmt.Errorf("%w: a kept self term of %d values against %d tokens × %d channels", ErrShape, len(k.self), k.f.Tokens, ch)
		}
	}
	// Compare's order: A's self and cross, B's self and cross.
	jobs := make([]Job, 0, 4)
	if known.A == nil {
		jobs = append(jobs, Job{Q: a.Q, K: a.K, V: a.V, Tq: a.Tokens, Tk: a.KV()})
	}
	jobs = append(jobs, Job{Q: a.Q, K: b.K, V: b.V, Tq: a.Tokens, Tk: b.KV()})
	if known.B == nil {
		jobs = append(jobs, Job{Q: b.Q, K: b.K, V: b.V, Tq: b.Tokens, Tk: b.KV()})
	}
	jobs = append(jobs, Job{Q: b.Q, K: a.K, V: a.V, Tq: b.Tokens, Tk: a.KV()})
	outs, err := att.Attend(ctx, s, jobs)
	if err != nil {
		return Comparison{}, Selves{}, err
	}
	next := func() []float32 { o := outs[0]; outs = outs[1:]; return o }
	selves := known
	if selves.A == nil {
		selves.A = next()
	}
	crossA := next()
	if selves.B == nil {
		selves.B = next()
	}
	crossB := next()
	return CompareOutputs(selves.A, crossA, selves.B, crossB, ch), selves, nil
}

// CompareOutputs compares attention outputs [T][C]: A's self and cross, B's self and cross.
func CompareOutputs(selfA, crossA, selfB, crossB []float32, channels int) Comparison {
	c := Comparison{
		AtoB:    Cosine(selfA, crossA),
		BtoA:    Cosine(selfB, crossB),
		MSEAtoB: MeanSquared(selfA, crossA),
		MSEBtoA: MeanSquared(selfB, crossB),
		MapA:    TokenCosines(selfA, crossA, channels),
		MapB:    TokenCosines(selfB, crossB, channels),
	}
	c.FeatureCosine, c.FeatureMSE = math.NaN(), math.NaN()
	if len(selfA) == len(selfB) {
		c.FeatureCosine = Cosine(selfA, selfB)
		c.FeatureMSE = MeanSquared(selfA, selfB)
	}
	return c
}

// Cosine is the cosine of two flattened tensors, accumulated in float64. Two zero tensors
// are identical (1); a zero against a non-zero tensor is 0.
func Cosine(x, y []float32) float64 {
	var dot, nx, ny float64
	for i := range x {
		a, b := float64(x[i]), float64(y[i])
		dot += a * b
		nx += a * a
		ny += b * b
	}
	switch {
	case nx == 0 && ny == 0:
		return 1
	case nx == 0 || ny == 0:
		return 0
	}
	return dot / math.Sqrt(nx*ny)
}

// MeanSquared is the mean squared difference of two tensors.
func MeanSquared(x, y []float32) float64 {
	var s float64
	for i := range x {
		d := float64(x[i]) - float64(y[i])
		s += d * d
	}
	return s / float64(max(len(x), 1))
}

// TokenCosines is the cosine per token (row) of two [T][C] tensors.
func TokenCosines(x, y []float32, channels int) []float32 {
	n := len(x) / channels
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(Cosine(x[i*channels:(i+1)*channels], y[i*channels:(i+1)*channels]))
	}
	return out
}

// AttentionRow is the attention of query token i of a over b's tokens, averaged over heads.
func AttentionRow(a, b features.Features, i int) ([]float32, error) {
	if i < 0 || i >= a.Tokens {
		return nil, fmt.Errorf("token %d outside 0..%d", i, a.Tokens-1)
	}
	c, d, tk := a.Heads*a.HeadDim, a.HeadDim, b.KV()
	row := make([]float64, tk)
	scores := make([]float64, tk)
	for h := 0; h < a.Heads; h++ {
		off := h * d
		q := a.Q[i*c+off : i*c+off+d]
		best := math.Inf(-1)
		for k := 0; k < tk; k++ {
			kk := b.K[k*c+off : k*c+off+d]
			var dot float32
			for x := range q {
				dot += q[x] * kk[x]
			}
			scores[k] = float64(dot) * a.Scale
			best = max(best, scores[k])
		}
		var sum float64
		for k := range scores {
			scores[k] = math.Exp(scores[k] - best)
			sum += scores[k]
		}
		for k := range scores {
			row[k] += scores[k] / sum / float64(a.Heads)
		}
	}
	out := make([]float32, len(row))
	for k, v := range row {
		out[k] = float32(v)
	}
	return out, nil
}

// SpatialMap drops leading non-spatial tokens and shapes the rest as the token grid: the one
// measured with the features when there is one, else the layer's. Without a grid it gives a
// 1-row map.
func SpatialMap(l features.Layer, f features.Features, values []float32) features.Map {
	gh, gw, prefix := l.GridH, l.GridW, l.Prefix
	if f.GridH > 0 && f.GridW > 0 {
		gh, gw, prefix = f.GridH, f.GridW, f.Prefix
	}
	vals := values
	if prefix > 0 && prefix <= len(vals) {
		vals = vals[prefix:]
	}
	if gw > 0 && gh > 0 && gw*gh == len(vals) {
		return features.Map{W: gw, H: gh, Values: vals}
	}
	return features.Map{W: len(vals), H: 1, Values: vals}
}
