package heatmap

import (
	"image"
	"image/draw"
	"strings"

	xdraw "golang.org/x/image/draw"
)

// quadrantGlyphs are the block characters by which quadrants they fill: bit 0 top-left,
// 1 top-right, 2 bottom-left, 3 bottom-right (chafa's "quad" symbols).
var quadrantGlyphs = [16]string{" ", "▘", "▝", "▀", "▖", "▌", "▞", "▛", "▗", "▚", "▐", "▜", "▄", "▙", "▟", "█"}

// Quadrants draws m in cols×rows cells of quadrant block characters: each cell shows a
// 2×2 grid of pixels in two colours (the foreground and background of the glyph that
// splits the four best), twice the horizontal detail of HalfBlock, for terminals without
// sixel or kitty graphics. m is resampled to 2·cols×4·rows square pixels, and each cell's
// 2×4 block is read as 2×2 (cells are about twice as tall as wide). Transparent quadrants
// show the terminal's default background, as HalfBlock's do. Lines are separated by "\n"
// and end with a style reset.
func Quadrants(m image.Image, cols, rows int, mode HalfBlockMode) string {
	if cols <= 0 || rows <= 0 {
		return ""
	}
	px := image.NewRGBA(image.Rect(0, 0, 2*cols, 4*rows))
	b := m.Bounds()
	if b.Dx() == px.Rect.Dx() && b.Dy() == px.Rect.Dy() {
		draw.Draw(px, px.Rect, m, b.Min, draw.Src)
	} else if !b.Empty() {
		xdraw.ApproxBiLinear.Scale(px, px.Rect, m, b, xdraw.Src, nil)
	}
	sgr := func(dst []byte, c [3]float64, bg bool) []byte {
		r, g, bl := uint8(c[0]+0.5), uint8(c[1]+0.5), uint8(c[2]+0.5)
		return appendColour(dst, r, g, bl, bg, mode)
	}
	var sb strings.Builder
	sb.Grow(rows * cols * 40)
	var fg, bg, curFG, curBG []byte
	for y := range rows {
		if y > 0 {
			sb.WriteByte('\n')
		}
		curFG, curBG = curFG[:0], curBG[:0]
		for x := range cols {
			q, opaque := cellQuadrants(px, 2*x, 4*y)
			var mask int
			var f, k [3]float64
			switch {
			case opaque == 15:
				mask, f, k = splitQuadrants(q)
				fg = sgr(fg[:0], f, false)
				bg = sgr(bg[:0], k, true)
			case opaque == 0:
				mask = 0
				fg = append(fg[:0], "39"...)
				bg = append(bg[:0], "49"...)
			default:
				// Some quadrants transparent: the opaque ones in their mean colour over
				// the default background.
				n := 0.0
				for i := range 4 {
					if opaque&(1<<i) != 0 {
						n++
						for c := range 3 {
							f[c] += q[i][c]
						}
					}
				}
				for c := range 3 {
					f[c] /= n
				}
				mask = opaque
				fg = sgr(fg[:0], f, false)
				bg = append(bg[:0], "49"...)
			}
			needFG := string(fg) != string(curFG)
			needBG := string(bg) != string(curBG)
			curFG, curBG = writeSGR(&sb, fg, bg, curFG, curBG, needFG, needBG)
			sb.WriteString(quadrantGlyphs[mask])
		}
		sb.WriteString("\x1b[0m")
	}
	return sb.String()
}

// cellQuadrants averages the 2×4 pixels at (x0, y0) into four quadrant colours (TL, TR,
// BL, BR), and says which quadrants are opaque (a bit each, alpha ≥ half).
func cellQuadrants(px *image.RGBA, x0, y0 int) (q [4][3]float64, opaque int) {
	for i := range 4 {
		qx, qy := x0+i%2, y0+2*(i/2)
		a := 0.0
		for dy := range 2 {
			p := px.Pix[px.PixOffset(qx, qy+dy):]
			a += float64(p[3])
			for c := range 3 {
				q[i][c] += float64(p[c])
			}
		}
		if a >= 255 {
			opaque |= 1 << i
		}
		if a > 0 {
			for c := range 3 { // un-premultiply the pair's mean
				q[i][c] = min(q[i][c]*255/a, 255)
			}
		}
	}
	return q, opaque
}

// splitQuadrants picks the glyph (a mask of the quadrants drawn in the foreground) whose
// two colours, each the mean of its quadrants, are closest to the four in squared error.
func splitQuadrants(q [4][3]float64) (mask int, fg, bg [3]float64) {
	best := -1.0
	for m := 1; m < 8; m++ { // with its complement, every two-way split once
		var f, k [3]float64
		nf, nk := 0.0, 0.0
		for i := range 4 {
			if m&(1<<i) != 0 {
				nf++
				for c := range 3 {
					f[c] += q[i][c]
				}
			} else {
				nk++
				for c := range 3 {
					k[c] += q[i][c]
				}
			}
		}
		for c := range 3 {
			f[c] /= nf
			k[c] /= nk
		}
		e := 0.0
		for i := range 4 {
			ref := k
			if m&(1<<i) != 0 {
				ref = f
			}
			for c := range 3 {
				d := q[i][c] - ref[c]
				e += d * d
			}
		}
		if best < 0 || e < best {
			best, mask, fg, bg = e, m, f, k
		}
	}
	return mask, fg, bg
}
