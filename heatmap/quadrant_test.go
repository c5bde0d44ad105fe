package heatmap

import (
	"image"
	"image/color"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// TestQuadrants: a cell whose 2×2 pixels split in two colours gets the glyph of that
// split, drawn in those colours; every line has exactly cols cells.
func TestQuadrants(t *testing.T) {
	red, blue := color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}
	tests := []struct {
		name  string
		quads [4]color.RGBA // TL, TR, BL, BR
		glyph string        // the glyph, or its complement with the colours swapped
		other string
	}{
		{"left half", [4]color.RGBA{red, blue, red, blue}, "▌", "▐"},
		{"top half", [4]color.RGBA{red, red, blue, blue}, "▀", "▄"},
		{"diagonal", [4]color.RGBA{red, blue, blue, red}, "▚", "▞"},
		{"one corner", [4]color.RGBA{red, blue, blue, blue}, "▘", "▟"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := image.NewRGBA(image.Rect(0, 0, 2, 4))
			for i, c := range tc.quads {
				x, y := i%2, 2*(i/2)
				img.SetRGBA(x, y, c)
				img.SetRGBA(x, y+1, c)
			}
			out := Quadrants(img, 1, 1, TrueColor)
			glyph := ansi.Strip(out)
			if glyph != tc.glyph && glyph != tc.other {
				t.Fatalf("glyph %q, want %q or %q (%q)", glyph, tc.glyph, tc.other, out)
			}
			if !strings.Contains(out, "2;255;0;0") || !strings.Contains(out, "2;0;0;255") {
				t.Errorf("colours missing from %q", out)
			}
		})
	}
	// Transparent quadrants are the terminal's background: the opaque ones are drawn.
	img := image.NewRGBA(image.Rect(0, 0, 2, 4))
	img.SetRGBA(0, 0, red)
	img.SetRGBA(0, 1, red)
	if out := Quadrants(img, 1, 1, TrueColor); ansi.Strip(out) != "▘" || !strings.Contains(out, "49") {
		t.Errorf("one opaque quadrant: %q", out)
	}
	if out := Quadrants(image.NewRGBA(image.Rect(0, 0, 2, 4)), 1, 1, TrueColor); ansi.Strip(out) != " " || strings.Contains(out, "2;0;0;0") {
		t.Errorf("transparent cell: %q", out)
	}
	// Size: any image comes out as rows lines of cols cells.
	out := Quadrants(image.NewRGBA(image.Rect(0, 0, 37, 23)), 9, 4, ANSI256)
	lines := strings.Split(out, "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4", len(lines))
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w != 9 {
			t.Errorf("line %d is %d cells, want 9", i, w)
		}
	}
	if Quadrants(image.NewRGBA(image.Rect(0, 0, 4, 4)), 0, 3, TrueColor) != "" {
		t.Error("no columns: want no output")
	}
}
