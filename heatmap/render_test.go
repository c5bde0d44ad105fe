package heatmap

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"
)

var nan = float32(math.NaN())

func TestRenderTokenCentres(t *testing.T) {
	g := Grid{W: 2, H: 2, Values: []float32{0, 1, 0.5, nan}}
	m := Render(g, Viridis(), 0, 1, 40, 40)
	if got := len(m.Palette); got != 256 {
		t.Fatalf("palette has %d colours, want 256", got)
	}
	// Pixel (9,9) is the centre of token (0,0); the value there is exact.
	for _, tt := range []struct {
		x, y int
		want uint8
	}{
		{9, 9, 0}, {30, 9, PaletteSize - 1}, {9, 30, 127}, {35, 35, NaNIndex}, {0, 0, 0},
	} {
		if got := m.ColorIndexAt(tt.x, tt.y); got != tt.want {
			t.Errorf("index at (%d,%d) = %d, want %d", tt.x, tt.y, got, tt.want)
		}
	}
	// Between two valid tokens the value is interpolated; next to a NaN token the
	// valid neighbour's value carries on alone.
	if got := m.ColorIndexAt(20, 30); got != 127 {
		t.Errorf("index beside the NaN token = %d, want 127", got)
	}
	if got := m.ColorIndexAt(20, 9); got < 100 || got > 153 {
		t.Errorf("index between 0 and 1 = %d, want about 127", got)
	}
}

func TestRenderAllNaNIsTransparent(t *testing.T) {
	g := Grid{W: 2, H: 1, Values: []float32{nan, nan}}
	m := Render(g, Viridis(), 0, 1, 8, 4)
	for _, c := range m.Pix {
		if c != NaNIndex {
			t.Fatalf("pixel index %d, want NaNIndex", c)
		}
	}
	if _, _, _, a := m.Palette[NaNIndex].RGBA(); a != 0 {
		t.Error("NaN colour is not transparent")
	}
}

func TestRenderBadInput(t *testing.T) {
	for name, g := range map[string]Grid{
		"short": {W: 3, H: 3, Values: []float32{1}},
		"empty": {},
	} {
		if err := g.Validate(); err == nil {
			t.Errorf("%s: Validate accepted a bad grid", name)
		}
		m := Render(g, Viridis(), 0, 1, 4, 4)
		if m.Bounds().Dx() != 4 || m.Pix[0] != NaNIndex {
			t.Errorf("%s: Render did not return a transparent 4×4 image", name)
		}
	}
	// lo == hi must not divide by zero.
	m := Render(Grid{W: 1, H: 1, Values: []float32{3}}, Viridis(), 3, 3, 2, 2)
	if m.Pix[0] != 0 {
		t.Errorf("flat grid index %d, want 0", m.Pix[0])
	}
}

func TestRenderBlocks(t *testing.T) {
	g := Grid{W: 2, H: 1, Values: []float32{0, 1}}
	m := RenderBlocks(g, Viridis(), 0, 1, 4, 2)
	want := []uint8{0, 0, PaletteSize - 1, PaletteSize - 1}
	for x, w := range want {
		if got := m.ColorIndexAt(x, 1); got != w {
			t.Errorf("x=%d: index %d, want %d", x, got, w)
		}
	}
}

func TestPosterize(t *testing.T) {
	g := Grid{W: 256, H: 1, Values: make([]float32, 256)}
	for i := range g.Values {
		g.Values[i] = float32(i) / 255
	}
	m := RenderBlocks(g, Viridis(), 0, 1, 256, 1)
	Posterize(m, 8)
	seen := map[uint8]bool{}
	for _, c := range m.Pix {
		seen[c] = true
	}
	if len(seen) != 8 || !seen[0] || !seen[PaletteSize-1] {
		t.Errorf("Posterize(8) left %d levels %v, want 8 including both ends", len(seen), seen)
	}
}

func TestDrawCursorUsesMarkerSlot(t *testing.T) {
	m := Render(Grid{W: 4, H: 4, Values: make([]float32, 16)}, Viridis(), 0, 1, 40, 40)
	red := color.RGBA{255, 0, 0, 255}
	DrawCursor(m, 4, 4, 1, 2, red)
	if m.Palette[MarkerIndex] != red {
		t.Fatalf("marker slot is %v, want %v", m.Palette[MarkerIndex], red)
	}
	// token (1,2) spans x 10..19, y 20..29; its border is 1 px (cells under 12 px).
	for _, p := range []image.Point{{10, 20}, {19, 29}, {15, 20}, {10, 25}} {
		if m.ColorIndexAt(p.X, p.Y) != MarkerIndex {
			t.Errorf("border pixel %v not drawn", p)
		}
	}
	if m.ColorIndexAt(15, 25) == MarkerIndex || m.ColorIndexAt(9, 20) == MarkerIndex {
		t.Error("cursor drew inside the cell or outside it")
	}
	// an out-of-range token draws nothing and must not panic
	DrawCursor(m, 4, 4, 4, 0, red)
	rgba := image.NewRGBA(image.Rect(0, 0, 8, 8))
	DrawCursor(rgba, 2, 2, 1, 1, red)
	if rgba.RGBAAt(7, 7) != red {
		t.Error("cursor on an RGBA image not drawn")
	}
}

func TestLegend(t *testing.T) {
	v := Legend(Viridis(), 0, 1, 10, 100).(*image.Paletted)
	if v.ColorIndexAt(0, 99) != 0 || v.ColorIndexAt(0, 0) != PaletteSize-1 {
		t.Errorf("vertical legend: bottom %d top %d, want low at the bottom", v.ColorIndexAt(0, 99), v.ColorIndexAt(0, 0))
	}
	h := Legend(Viridis(), 0, 0, 100, 10).(*image.Paletted)
	if h.ColorIndexAt(0, 0) != 0 || h.ColorIndexAt(99, 0) != PaletteSize-1 {
		t.Error("horizontal legend does not run low to high left to right")
	}
	// ticks at 0, 0.2 … 1 are drawn on the right edge of the vertical bar
	if v.ColorIndexAt(9, 99) != MarkerIndex || v.ColorIndexAt(0, 99) == MarkerIndex {
		t.Error("tick at 0 missing or too long")
	}
}

func TestTicks(t *testing.T) {
	tests := []struct {
		lo, hi float32
		want   []float32
	}{
		{0, 1, []float32{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{-1, 1, []float32{-1, -0.5, 0, 0.5, 1}},
		{0.13, 0.92, []float32{0.2, 0.4, 0.6, 0.8}},
		{1, 1, nil},
	}
	for _, tt := range tests {
		got := Ticks(tt.lo, tt.hi, 5)
		if len(got) != len(tt.want) {
			t.Errorf("Ticks(%g, %g) = %v, want %v", tt.lo, tt.hi, got, tt.want)
			continue
		}
		for i := range got {
			if math.Abs(float64(got[i]-tt.want[i])) > 1e-6 {
				t.Errorf("Ticks(%g, %g) = %v, want %v", tt.lo, tt.hi, got, tt.want)
				break
			}
		}
	}
}

func TestFitKeepsAspect(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for i := range src.Pix {
		src.Pix[i] = 200
	}
	m := Fit(src, 100, 100)
	if m.Bounds().Dx() != 100 || m.Bounds().Dy() != 100 {
		t.Fatalf("Fit size %v", m.Bounds())
	}
	// 200×100 in 100×100: 50 rows of picture, 25 transparent rows above and below.
	if m.RGBAAt(50, 10).A != 0 || m.RGBAAt(50, 50).A == 0 || m.RGBAAt(50, 90).A != 0 {
		t.Error("Fit did not letterbox a wide image top and bottom")
	}
	if r := Resize(src, 30, 40); r.Bounds().Dx() != 30 || r.RGBAAt(0, 0).A == 0 {
		t.Error("Resize did not stretch to 30×40")
	}
}

func TestOverlay(t *testing.T) {
	photo := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := range photo.Pix {
		photo.Pix[i] = 100
	}
	heat := Render(Grid{W: 2, H: 1, Values: []float32{1, nan}}, Viridis(), 0, 1, 4, 4)
	out := Overlay(photo, heat, 0.5)
	top := Viridis().At(1)
	if got := out.RGBAAt(0, 0); !near(got, color.RGBA{uint8((100 + int(top.R) + 1) / 2), uint8((100 + int(top.G) + 1) / 2), uint8((100 + int(top.B) + 1) / 2), 100}, 1) {
		t.Errorf("blended pixel %v", got)
	}
	if got := out.RGBAAt(3, 0); got != (color.RGBA{100, 100, 100, 100}) {
		t.Errorf("NaN pixel changed the photo: %v", got)
	}
	if got := Overlay(photo, heat, 0).RGBAAt(0, 0); got != (color.RGBA{100, 100, 100, 100}) {
		t.Errorf("alpha 0 changed the photo: %v", got)
	}
}

func TestLabeledLegend(t *testing.T) {
	m := LabeledLegend(Viridis(), 0, 1, 12, 60, 200)
	if m.Bounds().Dx() != 60 || m.Bounds().Dy() != 200 {
		t.Fatalf("size %v", m.Bounds())
	}
	// the bar's top is the top colour; some label pixels are black
	if got := m.RGBAAt(0, 7); !near(got, Viridis().At(1), 2) {
		t.Errorf("bar top %v, want %v", got, Viridis().At(1))
	}
	dark := 0
	for y := range 200 {
		for x := 15; x < 60; x++ {
			if m.RGBAAt(x, y).R < 64 {
				dark++
			}
		}
	}
	if dark < 50 {
		t.Errorf("only %d dark pixels right of the bar: labels missing", dark)
	}
	_ = LabeledLegend(Viridis(), 0, 1, 12, 0, 0) // degenerate sizes must not panic
}

// TestTint: the tint takes the map's hue and keeps the photo's luminance, so dark stays
// dark and light stays light whatever the map says; α = 0 and transparent map pixels
// leave the photo as it is.
func TestTint(t *testing.T) {
	lum := func(c color.RGBA) float64 { return 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B) }
	tests := []struct {
		name  string
		photo color.RGBA
		heat  color.RGBA
		alpha float64
		check func(t *testing.T, got color.RGBA)
	}{
		{"dark photo stays dark under bright yellow", color.RGBA{30, 30, 30, 255}, color.RGBA{253, 231, 37, 255}, 1, func(t *testing.T, got color.RGBA) {
			if l := lum(got); math.Abs(l-30) > 3 || got.R <= got.B {
				t.Errorf("got %v (luminance %.1f), want yellowish at luminance 30", got, l)
			}
		}},
		{"light photo stays light under dark purple", color.RGBA{220, 220, 220, 255}, color.RGBA{68, 1, 84, 255}, 1, func(t *testing.T, got color.RGBA) {
			if l := lum(got); l < 100 || got.B <= got.G {
				t.Errorf("got %v (luminance %.1f), want a light purple", got, l)
			}
		}},
		{"alpha 0 is the photo", color.RGBA{10, 200, 30, 255}, color.RGBA{253, 231, 37, 255}, 0, func(t *testing.T, got color.RGBA) {
			if got != (color.RGBA{10, 200, 30, 255}) {
				t.Errorf("got %v", got)
			}
		}},
		{"transparent heat is the photo", color.RGBA{10, 200, 30, 255}, color.RGBA{}, 1, func(t *testing.T, got color.RGBA) {
			if got != (color.RGBA{10, 200, 30, 255}) {
				t.Errorf("got %v", got)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			photo := image.NewRGBA(image.Rect(0, 0, 2, 2))
			heat := image.NewRGBA(image.Rect(0, 0, 2, 2))
			draw.Draw(photo, photo.Rect, image.NewUniform(tc.photo), image.Point{}, draw.Src)
			draw.Draw(heat, heat.Rect, image.NewUniform(tc.heat), image.Point{}, draw.Src)
			tc.check(t, Tint(photo, heat, tc.alpha).RGBAAt(1, 1))
		})
	}
}
