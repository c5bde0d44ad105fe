package heatmap

import (
	"image"
	"image/draw"
	"strconv"
	"strings"

	xdraw "golang.org/x/image/draw"
)

// HalfBlockMode selects the colour escapes HalfBlock emits.
type HalfBlockMode int

const (
	// TrueColor uses 24-bit SGR colours (38;2 / 48;2).
	TrueColor HalfBlockMode = iota
	// ANSI256 uses the xterm 256-colour cube and grey ramp (38;5 / 48;5).
	ANSI256
)

// HalfBlock draws m in cols×rows character cells: each cell is '▀' with the foreground
// the upper pixel and the background the lower one, so a cell shows two square-ish
// pixels. m is resampled to cols×2·rows pixels unless it already has that size. Lines are
// separated by "\n" and end with a style reset; transparent pixels show the terminal's
// default colours ('▄' or ' '). It is the fallback that works in any colour terminal, and
// the output when stdout is not a terminal.
func HalfBlock(m image.Image, cols, rows int, mode HalfBlockMode) string {
	if cols <= 0 || rows <= 0 {
		return ""
	}
	// RGBA, not NRGBA: x/image/draw has a fast path for RGBA to RGBA.
	px := image.NewRGBA(image.Rect(0, 0, cols, 2*rows))
	b := m.Bounds()
	if b.Dx() == cols && b.Dy() == 2*rows {
		draw.Draw(px, px.Rect, m, b.Min, draw.Src)
	} else if !b.Empty() {
		// Box-like averaging matters when shrinking a photo to ~80 columns: nearest
		// would alias. ApproxBiLinear is cheap and good enough at 2–8× reduction.
		xdraw.ApproxBiLinear.Scale(px, px.Rect, m, b, xdraw.Src, nil)
	}
	var sb strings.Builder
	sb.Grow(rows * cols * 24)
	// param appends the SGR parameters for one colour; transparent (alpha < 128)
	// is the terminal's default colour.
	param := func(dst []byte, x, y int, bg bool) []byte {
		p := px.Pix[px.PixOffset(x, y):]
		switch {
		case p[3] < 128 && bg:
			return append(dst, "49"...)
		case p[3] < 128:
			return append(dst, "39"...)
		}
		r, g, b := p[0], p[1], p[2]
		if a := uint32(p[3]); a != 255 { // un-premultiply
			r, g, b = uint8(uint32(r)*255/a), uint8(uint32(g)*255/a), uint8(uint32(b)*255/a)
		}
		return appendColour(dst, r, g, b, bg, mode)
	}
	opaque := func(x, y int) bool { return px.Pix[px.PixOffset(x, y)+3] >= 128 }
	var fg, bg, curFG, curBG []byte
	for y := range rows {
		if y > 0 {
			sb.WriteByte('\n')
		}
		curFG, curBG = curFG[:0], curBG[:0]
		for x := range cols {
			up, lo := 2*y, 2*y+1
			glyph := "▀"
			switch {
			case !opaque(x, up) && !opaque(x, lo):
				glyph = " "
			case !opaque(x, up):
				glyph, up, lo = "▄", lo, up
			}
			fg = param(fg[:0], x, up, false)
			bg = param(bg[:0], x, lo, true)
			needFG := glyph != " " && string(fg) != string(curFG)
			needBG := string(bg) != string(curBG)
			curFG, curBG = writeSGR(&sb, fg, bg, curFG, curBG, needFG, needBG)
			sb.WriteString(glyph)
		}
		sb.WriteString("\x1b[0m")
	}
	return sb.String()
}

// cube levels of the xterm 256-colour palette (indices 16–231).
var cubeLevels = [6]int{0, 95, 135, 175, 215, 255}

// ansi256 returns the xterm 256-colour index nearest to (r, g, b) among the 6×6×6 cube
// and the 24-step grey ramp (the first 16 colours vary by terminal, so they are avoided).
func ansi256(r, g, b uint8) int {
	q := func(v uint8) int {
		if v < 48 {
			return 0
		}
		if v < 115 {
			return 1
		}
		return (int(v) - 35) / 40
	}
	qr, qg, qb := q(r), q(g), q(b)
	cr, cg, cb := cubeLevels[qr], cubeLevels[qg], cubeLevels[qb]
	avg := (int(r) + int(g) + int(b)) / 3
	gi := 23
	if avg <= 238 {
		gi = max((avg-3)/10, 0)
	}
	gv := 8 + 10*gi
	d := func(x, y, z int) int {
		dr, dg, db := int(r)-x, int(g)-y, int(b)-z
		return dr*dr + dg*dg + db*db
	}
	if d(gv, gv, gv) < d(cr, cg, cb) {
		return 232 + gi
	}
	return 16 + 36*qr + 6*qg + qb
}

// writeSGR writes one SGR sequence setting the colours that changed (fg, bg: their parameters)
// and returns the colours now in force; unchanged colours cost no bytes.
func writeSGR(sb *strings.Builder, fg, bg, curFG, curBG []byte, needFG, needBG bool) ([]byte, []byte) {
	if !needFG && !needBG {
		return curFG, curBG
	}
	sb.WriteString("\x1b[")
	if needFG {
		sb.Write(fg)
		curFG = append(curFG[:0], fg...)
	}
	if needBG {
		if needFG {
			sb.WriteByte(';')
		}
		sb.Write(bg)
		curBG = append(curBG[:0], bg...)
	}
	sb.WriteByte('m')
	return curFG, curBG
}

// appendColour appends the SGR parameters that set the foreground (or, with bg, the
// background) to r, g, b: 24-bit, or the nearest of the 256-colour palette.
func appendColour(dst []byte, r, g, b uint8, bg bool, mode HalfBlockMode) []byte {
	if bg {
		dst = append(dst, "48;"...)
	} else {
		dst = append(dst, "38;"...)
	}
	if mode == ANSI256 {
		dst = append(dst, "5;"...)
		return strconv.AppendInt(dst, int64(ansi256(r, g, b)), 10)
	}
	dst = append(dst, "2;"...)
	dst = strconv.AppendInt(dst, int64(r), 10)
	dst = append(dst, ';')
	dst = strconv.AppendInt(dst, int64(g), 10)
	dst = append(dst, ';')
	return strconv.AppendInt(dst, int64(b), 10)
}
