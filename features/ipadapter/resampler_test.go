package ipadapter

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features/ipadapter/ipfixture"
	"github.com/diffsim/diffsim/features/safetensors"
)

// mat is a float64 row-major matrix.
type mat struct {
	r, c int
	v    []float64
}

func newMat(r, c int) mat { return mat{r, c, make([]float64, r*c)} }

func of(vals []float32, r, c int) mat {
	m := newMat(r, c)
	for i, v := range vals {
		m.v[i] = float64(v)
	}
	return m
}

// linearRef is x·Wᵀ (+ b) with a PyTorch [out, in] weight.
func linearRef(x mat, w []float32, out int, b []float32) mat {
	y := newMat(x.r, out)
	for i := range x.r {
		for o := range out {
			s := 0.0
			if b != nil {
				s = float64(b[o])
			}
			for k := range x.c {
				s += x.v[i*x.c+k] * float64(w[o*x.c+k])
			}
			y.v[i*out+o] = s
		}
	}
	return y
}

func layerNormRef(x mat, g, b []float32) mat {
	y := newMat(x.r, x.c)
	for i := range x.r {
		row := x.v[i*x.c : (i+1)*x.c]
		mean, vr := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(x.c)
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(x.c)
		for k, v := range row {
			y.v[i*x.c+k] = (v-mean)/math.Sqrt(vr+1e-5)*float64(g[k]) + float64(b[k])
		}
	}
	return y
}

func addRef(a, b mat) mat {
	y := newMat(a.r, a.c)
	for i := range y.v {
		y.v[i] = a.v[i] + b.v[i]
	}
	return y
}

// resamplerRef is IP-Adapter's Resampler.forward for one image, in float64.
func resamplerRef(w map[string][]float32, s ResamplerShape, feats []float32, n int) []float64 {
	inner := s.Heads * s.HeadDim
	x := linearRef(of(feats, n, s.Embedding), w["image_proj.proj_in.weight"], s.Dim, w["image_proj.proj_in.bias"])
	lat := of(w["image_proj.latents"], s.Queries, s.Dim)
	scale := 1 / math.Sqrt(math.Sqrt(float64(s.HeadDim)))
	for i := range s.Depth {
		p := fmt.Sprintf("image_proj.layers.%d.", i)
		xn := layerNormRef(x, w[p+"0.norm1.weight"], w[p+"0.norm1.bias"])
		ln := layerNormRef(lat, w[p+"0.norm2.weight"], w[p+"0.norm2.bias"])
		q := linearRef(ln, w[p+"0.to_q.weight"], inner, nil)
		kvIn := mat{xn.r + ln.r, s.Dim, append(append([]float64(nil), xn.v...), ln.v...)}
		kv := linearRef(kvIn, w[p+"0.to_kv.weight"], 2*inner, nil)
		att := newMat(s.Queries, inner)
		for h := range s.Heads {
			off := h * s.HeadDim
			for a := range s.Queries {
				scores := make([]float64, kvIn.r)
				best := math.Inf(-1)
				for b := range kvIn.r {
					dot := 0.0
					for d := range s.HeadDim {
						dot += q.v[a*inner+off+d] * scale * kv.v[b*2*inner+off+d] * scale
					}
					scores[b] = dot
					best = max(best, dot)
				}
				sum := 0.0
				for b := range scores {
					scores[b] = math.Exp(scores[b] - best)
					sum += scores[b]
				}
				for b := range scores {
					for d := range s.HeadDim {
						att.v[a*inner+off+d] += scores[b] / sum * kv.v[b*2*inner+inner+off+d]
					}
				}
			}
		}
		lat = addRef(linearRef(att, w[p+"0.to_out.weight"], s.Dim, nil), lat)
		f := layerNormRef(lat, w[p+"1.0.weight"], w[p+"1.0.bias"])
		f = linearRef(f, w[p+"1.1.weight"], s.FeedForward, nil)
		for k, v := range f.v {
			f.v[k] = 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
		}
		lat = addRef(linearRef(f, w[p+"1.3.weight"], s.Dim, nil), lat)
	}
	out := linearRef(lat, w["image_proj.proj_out.weight"], s.Output, w["image_proj.proj_out.bias"])
	return layerNormRef(out, w["image_proj.norm_out.weight"], w["image_proj.norm_out.bias"]).v
}

func TestReadResamplerShape(t *testing.T) {
	ts := newTensorSet(1, false)
	ts.addResampler(tinyShape)
	got, err := ReadResamplerShape(ts.file(t), ResamplerOptions{HeadDim: 8})
	if err != nil {
		t.Fatal(err)
	}
	if got != tinyShape {
		t.Errorf("shape %+v, want %+v", got, tinyShape)
	}
	// IP-Adapter Plus SD 1.5's real shapes, with the default 64-wide heads.
	real := ResamplerShape{Embedding: 1280, Dim: 768, Queries: 16, Output: 768, Depth: 4, Heads: 12, HeadDim: 64, FeedForward: 3072}
	hs := newTensorSet(2, true)
	hs.addResampler(ResamplerShape{Embedding: 1280, Dim: 768, Queries: 16, Output: 768, Depth: 4, Heads: 12, HeadDim: 64, FeedForward: 3072})
	if got, err := ReadResamplerShape(hs.file(t), ResamplerOptions{}); err != nil || got != real {
		t.Errorf("SD 1.5 sizes: %+v, %v; want %+v", got, err, real)
	}
}

// TestResamplerMatchesReference runs the generated graph in ONNX Runtime against a float64 Go
// transcription of resampler.py, with weights stored as float32 and as float16.
func TestResamplerMatchesReference(t *testing.T) {
	rt := openRuntime(t)
	for _, half := range []bool{false, true} {
		t.Run(fmt.Sprintf("f16=%v", half), func(t *testing.T) {
			ts := newTensorSet(3, half)
			ts.addResampler(tinyShape)
			m, shape, err := BuildResampler(ts.file(t), ResamplerOptions{HeadDim: tinyShape.HeadDim})
			if err != nil {
				t.Fatal(err)
			}
			sess := load(t, rt, m, nil)
			const batch, n = 2, 50
			rng := rand.New(rand.NewPCG(4, 5))
			feats := randoms(rng, batch*n*shape.Embedding, 1)
			out, err := sess.Run(t.Context(), engine.F32(ResamplerInput, []int64{batch, n, int64(shape.Embedding)}, feats))
			if err != nil {
				t.Fatal(err)
			}
			got := out[0]
			if want := []int64{batch, int64(shape.Queries), int64(shape.Output)}; fmt.Sprint(got.Shape) != fmt.Sprint(want) {
				t.Fatalf("output shape %v, want %v", got.Shape, want)
			}
			per := n * shape.Embedding
			for i := range batch {
				ref := resamplerRef(ts.Values, shape, feats[i*per:(i+1)*per], n)
				want := make([]float32, len(ref))
				for k, v := range ref {
					want[k] = float32(v)
				}
				o := shape.Queries * shape.Output
				if e := relErr(got.Float32[i*o:(i+1)*o], want); e > 1e-5 {
					t.Errorf("image %d: relative error %.3g against the float64 reference", i, e)
				}
			}
		})
	}
}

func TestResamplerWeightErrors(t *testing.T) {
	ts := newTensorSet(1, false)
	ts.addResampler(tinyShape)
	for _, tc := range []struct {
		drop, want string
	}{
		{"image_proj.latents", "no tensor \"image_proj.latents\""},
		{"image_proj.layers.2.0.to_kv.weight", "image_proj.layers.2.0.to_kv.weight"},
		{"image_proj.norm_out.bias", "norm_out.bias"},
	} {
		var kept []safetensors.Tensor
		for _, x := range ts.Tensors {
			if x.Name != tc.drop {
				kept = append(kept, x)
			}
		}
		sub := tensorSet{&ipfixture.Weights{Tensors: kept, Values: ts.Values}}
		_, _, err := BuildResampler(sub.file(t), ResamplerOptions{HeadDim: 8})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("without %s: err = %v, want it to name %q", tc.drop, err, tc.want)
		}
	}
	if _, _, err := BuildResampler(ts.file(t), ResamplerOptions{HeadDim: 5}); err == nil || !strings.Contains(err.Error(), "multiple") {
		t.Errorf("head size 5 for width 16: err = %v", err)
	}
}
