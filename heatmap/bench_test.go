package heatmap

import (
	"bytes"
	"fmt"
	"image"
	"testing"
)

// Benchmarks at 512×512 (docs/terminal.md's reference size) and 300×300 (a typical on-screen
// image). Compare runs with benchstat. SetBytes is the source's RGBA size, so MB/s reads
// as input throughput.
var benchSizes = []int{300, 512}

func benchImages(b *testing.B, n int) map[string]image.Image {
	b.Helper()
	photo := Fit(samplePhoto(b, "astronaut.png"), n, n)
	return map[string]image.Image{
		"heatmap": Render(testGrid(32), Viridis(), 0, 1, n, n),
		"photo":   photo,
	}
}

func BenchmarkSixel(b *testing.B) {
	for _, n := range benchSizes {
		imgs := benchImages(b, n)
		cases := []struct {
			name string
			m    image.Image
		}{
			{"heatmap", imgs["heatmap"]},
			{"photo-cached-palette", Quantize(imgs["photo"], 255)},
			{"photo-quantize-each-time", imgs["photo"]},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
				var e SixelEncoder
				var buf bytes.Buffer
				b.SetBytes(int64(4 * n * n))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := e.Encode(&buf, c.m); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(buf.Len()), "out-bytes")
			})
		}
	}
}

func BenchmarkQuantize(b *testing.B) {
	for _, n := range benchSizes {
		photo := benchImages(b, n)["photo"]
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(4 * n * n))
			b.ReportAllocs()
			for b.Loop() {
				Quantize(photo, 255)
			}
		})
	}
}

func BenchmarkKitty(b *testing.B) {
	for _, n := range benchSizes {
		for name, m := range benchImages(b, n) {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				e := KittyEncoder{Compress: true, ID: 1}
				var buf bytes.Buffer
				b.SetBytes(int64(4 * n * n))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := e.Encode(&buf, m); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(buf.Len()), "out-bytes")
			})
		}
	}
}

func BenchmarkHalfBlock(b *testing.B) {
	for _, n := range benchSizes {
		for name, m := range benchImages(b, n) {
			// the cells an n-pixel image takes with a 6×13 font, at 2 pixels per cell row
			cols, rows := n/6, n/13
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				b.SetBytes(int64(4 * n * n))
				b.ReportAllocs()
				var s string
				for b.Loop() {
					s = HalfBlock(m, cols, rows, TrueColor)
				}
				b.ReportMetric(float64(len(s)), "out-bytes")
			})
		}
	}
}

func BenchmarkRender(b *testing.B) {
	g := testGrid(32)
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n * n))
			b.ReportAllocs()
			for b.Loop() {
				Render(g, Viridis(), 0, 1, n, n)
			}
		})
	}
}
