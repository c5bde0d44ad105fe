package heatmap

import (
	"bytes"
	"image"
	"image/color"
	"testing"
)

// PSNR floors, measured then rounded down (2026-11 on go-sixel v0.0.14's decoder, which
// truncates percents to 8 bits and so costs ~1 dB by itself): a heatmap with its own
// palette measured 49.2 dB, so 45; a photo after Quantize(255) 37.5–37.7 dB, so 34.
func TestSixelRoundTripPSNR(t *testing.T) {
	tests := []struct {
		name string
		src  func(t *testing.T) image.Image
		min  float64
	}{
		{"heatmap 256", func(*testing.T) image.Image { return Render(testGrid(32), Viridis(), 0, 1, 256, 256) }, 45},
		{"heatmap coolwarm 300×200", func(*testing.T) image.Image { return Render(testGrid(16), Coolwarm(), 0, 1, 300, 200) }, 45},
		{"heatmap posterized 32", func(*testing.T) image.Image {
			m := Render(testGrid(32), Viridis(), 0, 1, 256, 256)
			Posterize(m, 32)
			return m
		}, 45}, // against its own (posterized) source
		{"photo astronaut 256", func(t *testing.T) image.Image { return Fit(samplePhoto(t, "astronaut.png"), 256, 256) }, 34},
		{"photo chelsea 480×320", func(t *testing.T) image.Image { return Fit(samplePhoto(t, "chelsea.png"), 480, 320) }, 34},
	}
	var e SixelEncoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src(t)
			var buf bytes.Buffer
			if err := e.Encode(&buf, src); err != nil {
				t.Fatal(err)
			}
			got := decodeSixel(t, buf.Bytes())
			if got.Bounds().Dx() != src.Bounds().Dx() {
				t.Errorf("decoded width %d, want %d", got.Bounds().Dx(), src.Bounds().Dx())
			}
			p := psnr(src, got)
			t.Logf("%d bytes, PSNR %.1f dB", buf.Len(), p)
			if p < tt.min {
				t.Errorf("PSNR %.1f dB, want ≥ %.0f", p, tt.min)
			}
		})
	}
}

func TestSixelTransparentPixelsUnset(t *testing.T) {
	g := Grid{W: 2, H: 1, Values: []float32{0.5, nan}}
	var buf bytes.Buffer
	if err := (&SixelEncoder{}).Encode(&buf, RenderBlocks(g, Viridis(), 0, 1, 12, 6)); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\x1bP0;1q\"1;1;12;6")) {
		t.Fatalf("header %q, want P2=1 and raster 12×6", buf.Bytes()[:min(20, buf.Len())])
	}
	got := toRGBA(decodeSixel(t, buf.Bytes()))
	// go-sixel's decoder crops to the drawn extent: only the left half was drawn.
	if got.Rect.Dx() != 6 {
		t.Errorf("decoded width %d, want 6 (the NaN half left unset)", got.Rect.Dx())
	}
}

func TestSixelReusedEncoderIsDeterministic(t *testing.T) {
	var e SixelEncoder
	a := Render(testGrid(8), Viridis(), 0, 1, 64, 64)
	b := Render(testGrid(16), Coolwarm(), 0, 1, 97, 31)
	var first, other, again bytes.Buffer
	for _, step := range []struct {
		w *bytes.Buffer
		m image.Image
	}{{&first, a}, {&other, b}, {&again, a}} {
		if err := e.Encode(step.w, step.m); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Error("re-encoding the same image with a reused encoder gave different bytes")
	}
}

func TestQuantize(t *testing.T) {
	src := Fit(samplePhoto(t, "coffee.png"), 200, 150)
	for _, n := range []int{2, 16, 255} {
		q := Quantize(src, n)
		if len(q.Palette) > n {
			t.Errorf("Quantize(%d) made %d colours", n, len(q.Palette))
		}
	}
	// letterbox bars are transparent: they get their own transparent entry
	q := Quantize(src, 16)
	if _, _, _, a := q.Palette[q.ColorIndexAt(100, 0)].RGBA(); a != 0 {
		t.Error("transparent letterbox pixel did not map to a transparent entry")
	}
	if p := psnr(src, Quantize(src, 255)); p < 34 {
		t.Errorf("Quantize(255) PSNR %.1f dB, want ≥ 34", p)
	}
}

// FuzzSixelRoundTrip encodes arbitrary small paletted images and decodes them with
// go-sixel: every pixel must come back as its palette colour rounded to whole percents.
func FuzzSixelRoundTrip(f *testing.F) {
	f.Add(uint8(7), uint8(5), []byte{0, 1, 2, 3, 255, 9, 9, 9})
	f.Add(uint8(1), uint8(13), []byte{4})
	f.Fuzz(func(t *testing.T, w8, h8 uint8, data []byte) {
		w, h := int(w8%40)+1, int(h8%40)+1
		pal := make(color.Palette, 16)
		for i := range pal {
			pal[i] = color.RGBA{uint8(i * 17), uint8(255 - i*13), uint8(i * 7), 255}
		}
		m := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		for i := range m.Pix {
			if len(data) > 0 {
				m.Pix[i] = data[i%len(data)] % 16
			}
		}
		var buf bytes.Buffer
		if err := (&SixelEncoder{}).Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		got := toRGBA(decodeSixel(t, buf.Bytes()))
		if got.Rect.Dx() != w || got.Rect.Dy() != h {
			t.Fatalf("decoded %v, want %d×%d", got.Rect, w, h)
		}
		pct := func(v uint8) uint8 { return uint8(((uint32(v)*100 + 127) / 255) * 255 / 100) }
		for y := range h {
			for x := range w {
				c := pal[m.ColorIndexAt(x, y)].(color.RGBA)
				want := color.RGBA{pct(c.R), pct(c.G), pct(c.B), 255}
				if g := got.RGBAAt(x, y); g != want {
					t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, want)
				}
			}
		}
	})
}
