package heatmap

import (
	"image/color"
	"math"
	"testing"
)

func near(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) <= tol && d(a.G, b.G) <= tol && d(a.B, b.B) <= tol && a.A == b.A
}

func TestColormapAnchors(t *testing.T) {
	tests := []struct {
		cm   Colormap
		v    float64
		want color.RGBA
		tol  int
	}{
		// matplotlib's published viridis entries 0, 128 and 255.
		{Viridis(), 0, color.RGBA{0x44, 0x01, 0x54, 255}, 4},
		{Viridis(), 128.0 / 255, color.RGBA{0x21, 0x91, 0x8c, 255}, 4},
		{Viridis(), 1, color.RGBA{0xfd, 0xe7, 0x25, 255}, 4},
		// Moreland's cool-warm end points and white-ish middle.
		{Coolwarm(), 0, color.RGBA{59, 76, 192, 255}, 1},
		{Coolwarm(), 1, color.RGBA{180, 4, 38, 255}, 1},
		{Coolwarm(), 0.5, color.RGBA{221, 221, 221, 255}, 3},
	}
	for _, tt := range tests {
		if got := tt.cm.At(tt.v); !near(got, tt.want, tt.tol) {
			t.Errorf("%s.At(%.3f) = %v, want %v ±%d", tt.cm.Name(), tt.v, got, tt.want, tt.tol)
		}
	}
}

func TestColormapClampAndNaN(t *testing.T) {
	cm := Viridis()
	if cm.At(-3) != cm.At(0) || cm.At(7) != cm.At(1) {
		t.Error("At does not clamp values outside [0, 1]")
	}
	if got := cm.At(math.NaN()); got.A != 0 {
		t.Errorf("At(NaN) = %v, want transparent", got)
	}
}

// Viridis is designed so lightness rises monotonically; a broken fit would show here.
func TestViridisLightnessMonotonic(t *testing.T) {
	prev := -1.0
	for i := range 256 {
		c := Viridis().At(float64(i) / 255)
		l, _, _ := rgbToLab(c.R, c.G, c.B)
		if l < prev-0.2 { // 8-bit rounding wobbles by a tenth of a unit
			t.Fatalf("L* falls at entry %d: %.2f after %.2f", i, l, prev)
		}
		prev = max(prev, l)
	}
}

// A diverging map is darkest at both ends and lightest in the middle.
func TestCoolwarmLightnessPeaksInMiddle(t *testing.T) {
	light := func(v float64) float64 {
		c := Coolwarm().At(v)
		l, _, _ := rgbToLab(c.R, c.G, c.B)
		return l
	}
	for _, v := range []float64{0.1, 0.2, 0.3, 0.4} {
		if !(light(v) < light(v+0.1)) || !(light(1-v) < light(1-v-0.1)) {
			t.Errorf("coolwarm lightness not rising towards the middle at %.1f", v)
		}
	}
}

func TestPalette(t *testing.T) {
	p := Viridis().Palette()
	if len(p) != PaletteSize {
		t.Fatalf("len(Palette()) = %d, want %d", len(p), PaletteSize)
	}
	if p[0] != Viridis().At(0) || p[PaletteSize-1] != Viridis().At(1) {
		t.Error("palette does not span the colormap end to end")
	}
}
