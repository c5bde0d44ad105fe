package builtin

import (
	"context"
	"image"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/aas"
)

// BenchmarkBuildAndScorePair is the first-run cost: build the graph, load it, extract a
// 256 px pair in one batch and compute AAS at every layer.
func BenchmarkBuildAndScorePair(b *testing.B) {
	rt := enginetest.Runtime(b)
	defer rt.Close()
	a, c := sample(b, "grass.png"), sample(b, "gravel.png")
	att := aas.NewRuntimeAttention(rt)
	defer att.Close()
	b.ReportAllocs()
	for b.Loop() {
		m, err := Open(rt, testSize)
		if err != nil {
			b.Fatal(err)
		}
		ex, err := m.Extract(context.Background(), []image.Image{a, c}, DefaultT, 2334)
		if err != nil {
			b.Fatal(err)
		}
		for li := range ex[0].Layers {
			if _, err := aas.Compare(context.Background(), att, ex[0].Layers[li], ex[1].Layers[li]); err != nil {
				b.Fatal(err)
			}
		}
		m.Close()
	}
}

func BenchmarkExtractPair(b *testing.B) {
	m := openTestModel(b)
	a, c := sample(b, "grass.png"), sample(b, "gravel.png")
	for b.Loop() {
		if _, err := m.Extract(context.Background(), []image.Image{a, c}, DefaultT, 2334); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompareLayers(b *testing.B) {
	m := openTestModel(b)
	ex, err := m.Extract(context.Background(), []image.Image{sample(b, "grass.png"), sample(b, "gravel.png")}, DefaultT, 2334)
	if err != nil {
		b.Fatal(err)
	}
	for li, lv := range Levels {
		b.Run(lv.Name, func(b *testing.B) {
			for b.Loop() {
				if _, err := aas.Compare(context.Background(), m.att, ex[0].Layers[li], ex[1].Layers[li]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
