package builtin

import (
	"context"
	"math"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/features/schedule"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
)

func TestGraphRunsAndMatchesGoAttention(t *testing.T) {
	const size = 128
	m, err := Graph(size)
	if err != nil {
		t.Fatal(err)
	}
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, lv := range Levels {
		q, k, v := Taps(lv.Name)
		outs = append(outs, q, k, v, "/"+lv.Name+"/attn/Reshape_3_output_0")
	}
	outs = append(outs, OutputEmbed)
	rt := enginetest.Runtime(t)
	defer rt.Close()
	s, err := rt.Load(onnx.AppendOutputs(data, outs[:len(outs)-1]), engine.SessionOptions{Outputs: outs})
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := imagefile.Load(context.Background(), "../../testdata/samples/chelsea.png", imagefile.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	px := features.CHW(features.ResizeSquare(img, size), features.HalfMean, features.HalfStd)
	noise := schedule.Noise(1, len(px))
	res, err := s.Run(context.Background(),
		engine.F32(InputImage, []int64{1, 3, size, size}, px),
		engine.I64(InputTimestep, []int64{1}, []int64{101}),
		engine.F32(InputNoise, []int64{1, 3, size, size}, noise))
	if err != nil {
		t.Fatal(err)
	}
	for i, lv := range Levels {
		q, k, v, o := res[4*i], res[4*i+1], res[4*i+2], res[4*i+3]
		t.Logf("%s: q %v o %v", lv.Name, q.Shape, o.Shape)
		f := features.Features{Q: q.Float32, K: k.Float32, V: v.Float32, Tokens: int(q.Shape[1]), Heads: heads, HeadDim: headDim, Scale: float64(lv.Scale)}
		got, err := aas.GoAttention{}.Attend(context.Background(), aas.Shape{Heads: heads, HeadDim: headDim, Scale: float64(lv.Scale)},
			[]aas.Job{{Q: f.Q, K: f.K, V: f.V, Tq: f.Tokens, Tk: f.Tokens}})
		if err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for j := range got[0] {
			d := float64(got[0][j] - o.Float32[j])
			num += d * d
			den += float64(o.Float32[j]) * float64(o.Float32[j])
		}
		if rel := math.Sqrt(num / den); rel > 1e-5 {
			t.Errorf("%s: Go attention differs from the graph's: relative L2 %g", lv.Name, rel)
		}
	}
	t.Log("embedding", res[len(res)-1].Float32)
}
