package aas

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features"
)

// refAttend is a float64 reference for softmax(Q Kᵀ·scale)·V per head.
func refAttend(q, k, v []float32, tq, tk int, s Shape) []float64 {
	c := s.Heads * s.HeadDim
	out := make([]float64, tq*c)
	for h := 0; h < s.Heads; h++ {
		off := h * s.HeadDim
		for i := 0; i < tq; i++ {
			sc := make([]float64, tk)
			best := math.Inf(-1)
			for j := 0; j < tk; j++ {
				var dot float64
				for x := 0; x < s.HeadDim; x++ {
					dot += float64(q[i*c+off+x]) * float64(k[j*c+off+x])
				}
				sc[j] = dot * s.Scale
				best = math.Max(best, sc[j])
			}
			var sum float64
			for j := range sc {
				sc[j] = math.Exp(sc[j] - best)
				sum += sc[j]
			}
			for j := range sc {
				for x := 0; x < s.HeadDim; x++ {
					out[i*c+off+x] += sc[j] / sum * float64(v[j*c+off+x])
				}
			}
		}
	}
	return out
}

func refCos(x, y []float64) float64 {
	var d, nx, ny float64
	for i := range x {
		d += x[i] * y[i]
		nx += x[i] * x[i]
		ny += y[i] * y[i]
	}
	return d / math.Sqrt(nx*ny)
}

func randomFeatures(r *rand.Rand, tokens int, s Shape) features.Features {
	j := randomJob(r, tokens, tokens, s.Heads*s.HeadDim)
	return features.Features{Q: j.Q, K: j.K, V: j.V, Tokens: tokens, Heads: s.Heads, HeadDim: s.HeadDim, Scale: s.Scale}
}

func relErr(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}

func TestCompareMatchesFloat64Reference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	s := Shape{Heads: 4, HeadDim: 8, Scale: 1 / math.Sqrt(8)}
	a, b := randomFeatures(r, 50, s), randomFeatures(r, 50, s)
	c, err := Compare(context.Background(), GoAttention{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	selfA := refAttend(a.Q, a.K, a.V, 50, 50, s)
	crossA := refAttend(a.Q, b.K, b.V, 50, 50, s)
	selfB := refAttend(b.Q, b.K, b.V, 50, 50, s)
	crossB := refAttend(b.Q, a.K, a.V, 50, 50, s)
	check := func(name string, got, want float64) {
		if math.Abs(got-want) > 1e-5 {
			t.Errorf("%s = %.8f, float64 reference %.8f", name, got, want)
		}
	}
	check("AAS(A→B)", c.AtoB, refCos(selfA, crossA))
	check("AAS(B→A)", c.BtoA, refCos(selfB, crossB))
	check("feature cosine", c.FeatureCosine, refCos(selfA, selfB))
	ch := s.Heads * s.HeadDim
	for i := 0; i < 50; i++ {
		check("token map A", float64(c.MapA[i]), refCos(selfA[i*ch:(i+1)*ch], crossA[i*ch:(i+1)*ch]))
		check("token map B", float64(c.MapB[i]), refCos(selfB[i*ch:(i+1)*ch], crossB[i*ch:(i+1)*ch]))
	}
	// The attention row of token 3 of A over B, head-averaged, against the reference weights.
	row, err := AttentionRow(a, b, 3)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, p := range row {
		sum += float64(p)
	}
	check("attention row sum", sum, 1)
	// Weight of B's token j: recompute for head-averaged softmax.
	for j := 0; j < 50; j++ {
		var want float64
		for h := 0; h < s.Heads; h++ {
			var den float64
			num := 0.0
			for k := 0; k < 50; k++ {
				var dot float64
				for x := 0; x < s.HeadDim; x++ {
					dot += float64(a.Q[3*ch+h*s.HeadDim+x]) * float64(b.K[k*ch+h*s.HeadDim+x])
				}
				e := math.Exp(dot * s.Scale)
				den += e
				if k == j {
					num = e
				}
			}
			want += num / den / float64(s.Heads)
		}
		check("attention row", float64(row[j]), want)
	}
}

func TestAASProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := Shape{Heads: 2, HeadDim: 16, Scale: 0.25}
	a, b := randomFeatures(r, 64, s), randomFeatures(r, 64, s)
	ctx := context.Background()
	self, err := Compare(ctx, GoAttention{}, a, a)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(self.Score()-1) > 1e-6 {
		t.Errorf("score(A, A) = %.9f, want 1", self.Score())
	}
	ab, _ := Compare(ctx, GoAttention{}, a, b)
	ba, _ := Compare(ctx, GoAttention{}, b, a)
	if ab.Score() != ba.Score() {
		t.Errorf("score(A, B) = %v but score(B, A) = %v", ab.Score(), ba.Score())
	}
	// Permuting B's tokens leaves AAS(A→B) unchanged but changes the aligned cosine.
	perm := r.Perm(64)
	c := s.Heads * s.HeadDim
	pb := features.Features{Q: make([]float32, len(b.Q)), K: make([]float32, len(b.K)), V: make([]float32, len(b.V)), Tokens: 64, Heads: s.Heads, HeadDim: s.HeadDim, Scale: s.Scale}
	for i, p := range perm {
		copy(pb.Q[i*c:(i+1)*c], b.Q[p*c:(p+1)*c])
		copy(pb.K[i*c:(i+1)*c], b.K[p*c:(p+1)*c])
		copy(pb.V[i*c:(i+1)*c], b.V[p*c:(p+1)*c])
	}
	apb, _ := Compare(ctx, GoAttention{}, a, pb)
	if math.Abs(apb.AtoB-ab.AtoB) > 1e-6 {
		t.Errorf("permuting B's tokens changed AAS(A→B): %.8f → %.8f", ab.AtoB, apb.AtoB)
	}
	if math.Abs(apb.FeatureCosine-ab.FeatureCosine) < 1e-3 {
		t.Errorf("permuting B's tokens left the aligned cosine unchanged (%.6f): the baseline is not pixel-aligned", ab.FeatureCosine)
	}
	again, _ := Compare(ctx, GoAttention{}, a, b)
	if again.Score() != ab.Score() || again.MapA[5] != ab.MapA[5] {
		t.Error("the same inputs gave different results")
	}
}

func TestRuntimeAttentionMatchesReference(t *testing.T) {
	rt := enginetest.Runtime(t)
	defer rt.Close()
	ra := NewRuntimeAttention(rt)
	ra.MinWork = 0
	defer ra.Close()
	r := rand.New(rand.NewPCG(5, 6))
	s := Shape{Heads: 8, HeadDim: 40, Scale: 1 / math.Sqrt(40)}
	jobs := []Job{randomJob(r, 100, 100, 320), randomJob(r, 100, 100, 320), randomJob(r, 30, 30, 320)}
	got, err := ra.Attend(context.Background(), s, jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs {
		if e := relErr(got[i], refAttend(j.Q, j.K, j.V, j.Tq, j.Tk, s)); e > 1e-5 {
			t.Errorf("job %d: runtime attention relative error %g", i, e)
		}
	}
}
