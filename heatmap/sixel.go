package heatmap

import (
	"fmt"
	"image"
	"io"
	"slices"
	"strconv"
)

// SixelEncoder writes DEC sixel graphics. It keeps its scratch buffers between calls, so
// reuse one per goroutine; it is not safe for concurrent use.
//
// An *image.Paletted (every heatmap from Render) is encoded with its own palette, no
// quantisation. Any other image is quantised with Quantize on every call: quantise a photo
// once yourself, or cache the encoded bytes.
//
// The encoder is written here rather than taken from go-sixel (still used to decode, in
// tests and in the benchmark) because output size is what matters over SSH: go-sixel
// starts a new pass across the whole band for every colour in it, while this encoder, like
// libsixel, packs runs of different colours that do not overlap into the same pass. On a
// smooth 256×256 heatmap that is several times fewer bytes (see scripts/bench-graphics.sh).
type SixelEncoder struct {
	// Colors bounds the palette when an image must be quantised; 0 means 255.
	Colors int

	out   []byte
	bits  []byte  // palette × width sixel columns of the current band
	lo    []int   // per colour: first and last column used in the band
	hi    []int   //
	seen  []uint8 // colours present in the band
	items []sixelRun
	done  []bool
}

// sixelRun is one stretch of a colour within a band, emitted as a unit in some pass.
type sixelRun struct {
	x0, x1 int // columns [x0, x1)
	c      uint8
}

// Encode writes m as one sixel DCS sequence (ESC P q … ESC \).
func (e *SixelEncoder) Encode(w io.Writer, m image.Image) error {
	p, ok := m.(*image.Paletted)
	if !ok || len(p.Palette) > 256 {
		n := e.Colors
		if n <= 0 {
			n = 255
		}
		p = Quantize(m, n)
	}
	e.out = e.encode(e.out[:0], p)
	if _, err := w.Write(e.out); err != nil {
		return fmt.Errorf("heatmap: write sixel %dx%d: %w", p.Rect.Dx(), p.Rect.Dy(), err)
	}
	return nil
}

// splitGap is the number of empty columns at which a colour's stretch is cut in two: a
// shorter gap costs fewer bytes as a '?' run than as a colour switch and a separate run.
const splitGap = 6

func (e *SixelEncoder) encode(out []byte, p *image.Paletted) []byte {
	w, h := p.Rect.Dx(), p.Rect.Dy()
	// P2 = 1: transparent pixels (NaN tokens, letterbox bars) are left unset and show the
	// terminal's background. With P2 = 0 terminals paint them in colour register 0 (black
	// in xterm whatever its background), a dark box on a light theme. An image redrawn in
	// place must then have its cells cleared first; termgfx.Writer does that.
	out = append(out, "\x1bP0;1q\"1;1;"...)
	out = strconv.AppendInt(out, int64(w), 10)
	out = append(out, ';')
	out = strconv.AppendInt(out, int64(h), 10)

	nc := len(p.Palette)
	opaque := make([]bool, 256)
	used := make([]bool, 256)
	for y := range h {
		for _, c := range p.Pix[y*p.Stride : y*p.Stride+w] {
			used[c] = true
		}
	}
	for i, c := range p.Palette {
		r, g, b, a := c.RGBA()
		if a == 0 || !used[i] {
			continue
		}
		opaque[i] = true
		out = append(out, '#')
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, ";2;"...)
		// Registers are whole percents; round (go-sixel truncates, which costs ~3 dB).
		out = strconv.AppendInt(out, int64((r*100+0x7fff)/0xffff), 10)
		out = append(out, ';')
		out = strconv.AppendInt(out, int64((g*100+0x7fff)/0xffff), 10)
		out = append(out, ';')
		out = strconv.AppendInt(out, int64((b*100+0x7fff)/0xffff), 10)
	}

	if n := nc * w; cap(e.bits) < n {
		e.bits = make([]byte, n)
	} else {
		e.bits = e.bits[:n]
		clear(e.bits)
	}
	if cap(e.lo) < nc {
		e.lo, e.hi = make([]int, nc), make([]int, nc)
	}
	e.lo, e.hi = e.lo[:nc], e.hi[:nc]
	for i := range e.lo {
		e.lo[i], e.hi[i] = -1, -1
	}

	for band := 0; band*6 < h; band++ {
		if band > 0 {
			out = append(out, '-')
		}
		e.seen = e.seen[:0]
		for r := 0; r < 6 && band*6+r < h; r++ {
			row := p.Pix[(band*6+r)*p.Stride:][:w]
			bit := byte(1) << r
			for x, c := range row {
				if int(c) >= nc || !opaque[c] {
					continue
				}
				if e.lo[c] < 0 {
					e.seen = append(e.seen, c)
					e.lo[c] = x
				}
				e.lo[c] = min(e.lo[c], x)
				e.hi[c] = max(e.hi[c], x)
				e.bits[int(c)*w+x] |= bit
			}
		}
		// Cut each colour's columns into stretches separated by long gaps.
		e.items = e.items[:0]
		for _, c := range e.seen {
			row := e.bits[int(c)*w:][:w]
			start, gap := -1, 0
			for x := e.lo[c]; x <= e.hi[c]; x++ {
				if row[x] != 0 {
					if start < 0 {
						start = x
					}
					gap = 0
					continue
				}
				gap++
				if start >= 0 && gap == splitGap {
					e.items = append(e.items, sixelRun{start, x - gap + 1, c})
					start = -1
				}
			}
			if start >= 0 {
				e.items = append(e.items, sixelRun{start, e.hi[c] + 1, c})
			}
		}
		slices.SortFunc(e.items, func(a, b sixelRun) int { return a.x0 - b.x0 })
		out = e.appendPasses(out, w)
		for _, c := range e.seen {
			clear(e.bits[int(c)*w+e.lo[c] : int(c)*w+e.hi[c]+1])
			e.lo[c], e.hi[c] = -1, -1
		}
	}
	return append(out, "\x1b\\"...)
}

// appendPasses writes the band's stretches in as few passes as it can: each pass goes left
// to right taking the next stretch that starts at or after the current column, so colours
// that do not overlap share a pass instead of each paying for a whole one.
func (e *SixelEncoder) appendPasses(out []byte, w int) []byte {
	left := len(e.items)
	e.done = append(e.done[:0], make([]bool, len(e.items))...)
	done := e.done
	cur := -1
	for left > 0 {
		pos := 0
		for i, it := range e.items {
			if done[i] || it.x0 < pos {
				continue
			}
			if int(it.c) != cur {
				out = append(out, '#')
				out = strconv.AppendInt(out, int64(it.c), 10)
				cur = int(it.c)
			}
			out = appendSixelRun(out, '?', it.x0-pos)
			row := e.bits[int(it.c)*w:]
			for x := it.x0; x < it.x1; {
				ch := row[x]
				n := 1
				for x+n < it.x1 && row[x+n] == ch {
					n++
				}
				out = appendSixelRun(out, '?'+ch, n)
				x += n
			}
			pos = it.x1
			done[i] = true
			left--
		}
		if left > 0 {
			out = append(out, '$')
		}
	}
	return out
}

func appendSixelRun(out []byte, ch byte, n int) []byte {
	switch {
	case n <= 0:
		return out
	case n <= 3:
		for range n {
			out = append(out, ch)
		}
		return out
	}
	out = append(out, '!')
	out = strconv.AppendInt(out, int64(n), 10)
	return append(out, ch)
}
