package aas

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features"
)

// countingAttention counts the attention jobs it computes.
type countingAttention struct {
	Attention
	jobs int
}

func (c *countingAttention) Attend(ctx context.Context, s Shape, jobs []Job) ([][]float32, error) {
	c.jobs += len(jobs)
	return c.Attention.Attend(ctx, s, jobs)
}

// sameComparison reports where two comparisons differ in any bit (NaN equals NaN of the same
// bits), or "".
func sameComparison(x, y Comparison) string {
	for _, f := range []struct {
		name string
		a, b float64
	}{{"AtoB", x.AtoB, y.AtoB}, {"BtoA", x.BtoA, y.BtoA}, {"MSEAtoB", x.MSEAtoB, y.MSEAtoB}, {"MSEBtoA", x.MSEBtoA, y.MSEBtoA},
		{"FeatureCosine", x.FeatureCosine, y.FeatureCosine}, {"FeatureMSE", x.FeatureMSE, y.FeatureMSE}} {
		if math.Float64bits(f.a) != math.Float64bits(f.b) {
			return fmt.Sprintf("%s %v against %v", f.name, f.a, f.b)
		}
	}
	bits := func(v []float32) []uint32 {
		out := make([]uint32, len(v))
		for i, x := range v {
			out[i] = math.Float32bits(x)
		}
		return out
	}
	if !slices.Equal(bits(x.MapA), bits(y.MapA)) || !slices.Equal(bits(x.MapB), bits(y.MapB)) {
		return "token maps"
	}
	return ""
}

// checkCompareWith compares a and b with Compare and with CompareWith given every subset of the
// self terms Compare's own run produced: the same bits each time, and only the missing jobs run.
// Compare(b, a), swapped, gives the same bits too.
func checkCompareWith(t *testing.T, att Attention, a, b features.Features) {
	t.Helper()
	ctx := context.Background()
	want, err := Compare(ctx, att, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := Compare(ctx, att, b, a); err != nil {
		t.Fatal(err)
	} else if d := sameComparison(back.Swapped(), want); d != "" {
		t.Errorf("Compare(B, A) swapped differs from Compare(A, B): %s", d)
	}
	counter := &countingAttention{Attention: att}
	_, selves, err := CompareWith(ctx, counter, a, b, Selves{})
	if err != nil {
		t.Fatal(err)
	}
	if counter.jobs != 4 || len(selves.A) != a.Tokens*a.Channels() || len(selves.B) != b.Tokens*b.Channels() {
		t.Fatalf("nothing known: %d jobs, self terms of %d and %d values", counter.jobs, len(selves.A), len(selves.B))
	}
	for _, known := range []struct {
		name string
		s    Selves
		jobs int
	}{{"A's kept", Selves{A: selves.A}, 3}, {"B's kept", Selves{B: selves.B}, 3}, {"both kept", selves, 2}} {
		counter.jobs = 0
		got, used, err := CompareWith(ctx, counter, a, b, known.s)
		if err != nil {
			t.Fatal(err)
		}
		if counter.jobs != known.jobs {
			t.Errorf("%s: %d attention jobs, want %d", known.name, counter.jobs, known.jobs)
		}
		if d := sameComparison(got, want); d != "" {
			t.Errorf("%s: differs from Compare: %s", known.name, d)
		}
		if !slices.Equal(used.A, selves.A) || !slices.Equal(used.B, selves.B) {
			t.Errorf("%s: the self terms returned differ from those computed", known.name)
		}
	}
}

// TestCompareWithKeptSelves: given a pair's self terms, CompareWith runs only the cross terms and
// gives Compare's comparison, bit for bit, in Go, on self-attention and on cross-attention
// shapes (16 key tokens, as DiffSim-C's image tokens).
func TestCompareWithKeptSelves(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	s := Shape{Heads: 4, HeadDim: 6, Scale: 1 / math.Sqrt(6)}
	checkCompareWith(t, GoAttention{}, randomFeatures(r, 64, s), randomFeatures(r, 64, s))
	cross := func() features.Features {
		j := randomJob(r, 64, 16, s.Heads*s.HeadDim)
		return features.Features{Q: j.Q, K: j.K, V: j.V, Tokens: 64, KVTokens: 16, Heads: s.Heads, HeadDim: s.HeadDim, Scale: s.Scale}
	}
	checkCompareWith(t, GoAttention{}, cross(), cross())

	// a kept self term of another size is refused, not read past its end
	a, b := randomFeatures(r, 64, s), randomFeatures(r, 64, s)
	if _, _, err := CompareWith(context.Background(), GoAttention{}, a, b, Selves{A: make([]float32, 10)}); err == nil {
		t.Error("a self term of the wrong size was accepted")
	}
}

// TestRuntimeAttentionRoutesEachJob: with a threshold between two jobs' sizes, the small job
// runs in Go and the large one on the runtime, whether they come together or alone, so a job's
// output does not depend on its neighbours.
func TestRuntimeAttentionRoutesEachJob(t *testing.T) {
	s := Shape{Heads: 2, HeadDim: 4, Scale: 0.5}
	rng := rand.New(rand.NewPCG(3, 9))
	l := &fakeLoader{shape: s}
	ra := NewRuntimeAttention(l)
	ra.MinWork = 2 * 16 * 16 // the 16-token jobs are large, the 8-token one small
	jobs := []Job{randJob(rng, 16, 16, 8), randJob(rng, 8, 8, 8), randJob(rng, 16, 16, 8)}
	together, err := ra.Attend(context.Background(), s, jobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.runners) != 1 || l.runners[0].runs != 1 {
		t.Fatalf("the two large jobs should share one runtime run: %d runners", len(l.runners))
	}
	for i, j := range jobs {
		alone, err := ra.Attend(context.Background(), s, []Job{j})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(alone[0], together[i]) {
			t.Errorf("job %d alone differs from job %d beside others", i, i)
		}
	}
	if l.runners[0].runs != 3 {
		t.Errorf("%d runtime runs, want 3 (the small job stays in Go)", l.runners[0].runs)
	}
}

// TestRuntimeAttentionIndependentOfBatch: ONNX Runtime's attention gives each job the same bits
// alone as in a batch, at the built-in model's layer shapes (256 px), SD 1.5's, and DiffSim-C's
// 16 image tokens. The self-term cache relies on it; so do the scores, which must not depend on
// which self terms were kept.
func TestRuntimeAttentionIndependentOfBatch(t *testing.T) {
	rt := enginetest.Runtime(t)
	ra := NewRuntimeAttention(rt)
	defer ra.Close()
	r := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct {
		tq, tk, heads, headDim int
	}{
		{1024, 1024, 4, 6}, {256, 256, 4, 6}, // built-in, fine and medium
		{256, 256, 8, 160}, {1024, 1024, 8, 80}, {64, 64, 8, 160}, // SD 1.5 at 512 px
		{256, 16, 8, 160}, // DiffSim-C
	} {
		t.Run(fmt.Sprintf("T%dx%d_C%dx%d", c.tq, c.tk, c.heads, c.headDim), func(t *testing.T) {
			s := Shape{Heads: c.heads, HeadDim: c.headDim, Scale: 1 / math.Sqrt(float64(c.headDim))}
			ch := c.heads * c.headDim
			jobs := []Job{randomJob(r, c.tq, c.tk, ch), randomJob(r, c.tq, c.tk, ch), randomJob(r, c.tq, c.tk, ch), randomJob(r, c.tq, c.tk, ch)}
			ctx := context.Background()
			all, err := ra.Attend(ctx, s, jobs)
			if err != nil {
				t.Fatal(err)
			}
			for _, sub := range [][]int{{0}, {3}, {1, 3}, {0, 2, 3}} {
				part := make([]Job, len(sub))
				for i, j := range sub {
					part[i] = jobs[j]
				}
				got, err := ra.Attend(ctx, s, part)
				if err != nil {
					t.Fatal(err)
				}
				for i, j := range sub {
					if !slices.Equal(got[i], all[j]) {
						t.Fatalf("job %d computed in a batch of %d differs from the same job in a batch of 4", j, len(sub))
					}
				}
			}
			a := features.Features{Q: jobs[0].Q, K: jobs[0].K, V: jobs[0].V, Tokens: c.tq, KVTokens: c.tk, Heads: c.heads, HeadDim: c.headDim, Scale: s.Scale}
			b := features.Features{Q: jobs[1].Q, K: jobs[1].K, V: jobs[1].V, Tokens: c.tq, KVTokens: c.tk, Heads: c.heads, HeadDim: c.headDim, Scale: s.Scale}
			checkCompareWith(t, ra, a, b)
		})
	}
}
