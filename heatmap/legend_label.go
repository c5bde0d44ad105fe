package heatmap

import (
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// LabeledLegend is Legend with its tick values written beside it, for PNG output (the
// terminal UI writes labels as text instead). The bar is vertical, barW pixels wide, on
// the left of a w×h white image; labels use basicfont's 7×13 face in black.
func LabeledLegend(cm Colormap, lo, hi float32, barW, w, h int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, max(w, 0), max(h, 0)))
	draw.Draw(out, out.Rect, image.White, image.Point{}, draw.Src)
	face := basicfont.Face7x13
	// keep half a text line free above and below so end labels are not clipped
	pad := face.Height / 2
	if w <= 0 || h <= 2*pad {
		return out
	}
	barW = min(max(barW, 1), w)
	bar := Legend(cm, lo, hi, barW, h-2*pad)
	draw.Draw(out, image.Rect(0, pad, barW, h-pad), bar, image.Point{}, draw.Src)
	d := font.Drawer{Dst: out, Src: image.NewUniform(color.Black), Face: face}
	n := h - 2*pad
	ticks := Ticks(lo, hi, 5)
	for i, label := range TickLabels(ticks) {
		p := int(math.Round(float64(ticks[i]-lo) / float64(hi-lo) * float64(n-1)))
		y := pad + n - 1 - p
		d.Dot = fixed.P(barW+3, y+face.Ascent/2)
		d.DrawString(label)
	}
	return out
}
