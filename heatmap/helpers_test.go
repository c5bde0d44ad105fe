package heatmap

import (
	"bytes"
	"image"
	"image/draw"
	"math"
	"os"
	"path/filepath"
	"testing"

	_ "image/jpeg"
	_ "image/png"

	"github.com/mattn/go-sixel"
)

// samplePhoto loads a sample photograph: the repository's testdata/samples first, then
// the shared samples next to the checkout. Tests that need one skip when neither exists.
func samplePhoto(t testing.TB, name string) image.Image {
	t.Helper()
	for _, dir := range []string{"../testdata/samples", "../../shared/samples"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		defer f.Close()
		m, _, err := image.Decode(f)
		if err != nil {
			t.Fatalf("decode sample %s: %v", name, err)
		}
		return m
	}
	t.Skipf("sample photo %s not found in ../testdata/samples or ../../shared/samples", name)
	return nil
}

// testGrid is a smooth map with a sharp peak, like an attention alignment map.
func testGrid(n int) Grid {
	g := Grid{W: n, H: n, Values: make([]float32, n*n)}
	for y := range n {
		for x := range n {
			fx, fy := float64(x)/float64(n-1), float64(y)/float64(n-1)
			v := 0.5 + 0.3*math.Sin(6*fx)*math.Cos(5*fy) + 0.2*math.Exp(-((fx-0.7)*(fx-0.7)+(fy-0.3)*(fy-0.3))*40)
			g.Values[y*n+x] = float32(v)
		}
	}
	return g
}

func decodeSixel(t testing.TB, b []byte) image.Image {
	t.Helper()
	var m image.Image
	if err := sixel.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		t.Fatalf("go-sixel cannot decode our output: %v", err)
	}
	return m
}

func toRGBA(m image.Image) *image.RGBA {
	b := m.Bounds()
	r := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(r, r.Rect, m, b.Min, draw.Src)
	return r
}

// psnr compares the RGB of opaque reference pixels; a pixel missing from got counts as black.
func psnr(ref, got image.Image) float64 {
	a, b := toRGBA(ref), toRGBA(got)
	var se float64
	n := 0
	for y := range a.Rect.Dy() {
		for x := range a.Rect.Dx() {
			pa := a.Pix[a.PixOffset(x, y):]
			if pa[3] == 0 {
				continue
			}
			pb := []uint8{0, 0, 0, 0}
			if image.Pt(x, y).In(b.Rect) {
				pb = b.Pix[b.PixOffset(x, y):]
			}
			for c := range 3 {
				d := float64(pa[c]) - float64(pb[c])
				se += d * d
			}
			n += 3
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}
