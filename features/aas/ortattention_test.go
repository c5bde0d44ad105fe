package aas

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/diffsim/diffsim/engine"
)

// fakeRunner computes the attention graph's output in Go, counting its runs: a stand-in for the
// ONNX Runtime session, so RuntimeAttention's routing and batching are tested without cgo.
type fakeRunner struct {
	shape  Shape
	runs   int
	closed bool
}

func (r *fakeRunner) Inputs() []engine.IOInfo  { return nil }
func (r *fakeRunner) Outputs() []engine.IOInfo { return nil }
func (r *fakeRunner) Close() error             { r.closed = true; return nil }

func (r *fakeRunner) Run(ctx context.Context, in ...engine.Tensor) ([]engine.Tensor, error) {
	r.runs++
	q, k, v := in[0], in[1], in[2]
	b, tq, tk := int(q.Shape[0]), int(q.Shape[1]), int(k.Shape[1])
	c := int(q.Shape[2])
	var out []float32
	for i := range b {
		res, err := GoAttention{}.Attend(ctx, r.shape, []Job{{
			Q: q.Float32[i*tq*c : (i+1)*tq*c], K: k.Float32[i*tk*c : (i+1)*tk*c], V: v.Float32[i*tk*c : (i+1)*tk*c], Tq: tq, Tk: tk}})
		if err != nil {
			return nil, err
		}
		out = append(out, res[0]...)
	}
	return []engine.Tensor{engine.F32("out", []int64{int64(b), int64(tq), int64(c)}, out)}, nil
}

type fakeLoader struct {
	shape   Shape
	runners []*fakeRunner
	fail    bool
}

func (l *fakeLoader) Load(model []byte, _ engine.SessionOptions) (engine.Runner, error) {
	if l.fail {
		return nil, errors.New("fake loader: no runtime")
	}
	if len(model) == 0 {
		return nil, errors.New("fake loader: empty graph")
	}
	r := &fakeRunner{shape: l.shape}
	l.runners = append(l.runners, r)
	return r, nil
}

func randJob(rng *rand.Rand, tq, tk, c int) Job {
	f := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	return Job{Q: f(tq * c), K: f(tk * c), V: f(tk * c), Tq: tq, Tk: tk}
}

// TestRuntimeAttentionRouting: small work stays in Go, large work goes to one runner per shape,
// jobs with equal token counts share one run, and Close frees the runners.
func TestRuntimeAttentionRouting(t *testing.T) {
	s := Shape{Heads: 2, HeadDim: 4, Scale: 0.5}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name        string
		minWork     int
		jobs        [][2]int // Tq, Tk
		wantRunners int
		wantRuns    int
	}{
		{"below the threshold: Go", 1 << 20, [][2]int{{8, 8}, {8, 8}}, 0, 0},
		{"one batch of equal jobs", 1, [][2]int{{8, 8}, {8, 8}, {8, 8}}, 1, 1},
		{"two token counts: two runs", 1, [][2]int{{8, 8}, {8, 8}, {6, 5}}, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &fakeLoader{shape: s}
			ra := NewRuntimeAttention(l)
			ra.MinWork = tc.minWork
			var jobs []Job
			for _, j := range tc.jobs {
				jobs = append(jobs, randJob(rng, j[0], j[1], s.Heads*s.HeadDim))
			}
			got, err := ra.Attend(context.Background(), s, jobs)
			if err != nil {
				t.Fatal(err)
			}
			want, err := GoAttention{}.Attend(context.Background(), s, jobs)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if e := maxAbsDiff(got[i], want[i]); e > 1e-6 {
					t.Errorf("job %d differs from Go attention by %g", i, e)
				}
			}
			runs := 0
			for _, r := range l.runners {
				runs += r.runs
			}
			if len(l.runners) != tc.wantRunners || runs != tc.wantRuns {
				t.Errorf("%d runners, %d runs; want %d, %d", len(l.runners), runs, tc.wantRunners, tc.wantRuns)
			}
			if err := ra.Close(); err != nil {
				t.Fatal(err)
			}
			for _, r := range l.runners {
				if !r.closed {
					t.Error("Close left a runner open")
				}
			}
		})
	}
	ra := NewRuntimeAttention(&fakeLoader{shape: s, fail: true})
	ra.MinWork = 1
	if _, err := ra.Attend(context.Background(), s, []Job{randJob(rng, 4, 4, 8)}); err == nil {
		t.Error("a loader failure was not reported")
	}
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return 1e9
	}
	var m float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		m = max(m, d)
	}
	return m
}
