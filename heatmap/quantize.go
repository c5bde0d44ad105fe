package heatmap

import (
	"image"
	"image/color"
	"image/draw"
	"slices"
)

// Quantize reduces m to at most n colours (2 ≤ n ≤ 256) without dithering.
//
// It is a median cut over a 5-bit-per-channel histogram, refined by two k-means passes
// over the histogram, then each pixel maps to its nearest palette colour at 6 bits per
// channel (found lazily, only for colours that occur). That is several times faster than
// go-sixel's default median cut on every pixel and needs no per-encode work: quantise a
// photo once and keep the result. Without dithering, flat regions stay flat, which keeps
// sixel runs long (fewer bytes) at a PSNR within a dB or two of dithered output.
// Fully transparent pixels map to a transparent entry appended to the palette.
func Quantize(m image.Image, n int) *image.Paletted {
	n = min(max(n, 2), 256)
	b := m.Bounds()
	rgba, ok := m.(*image.RGBA)
	if !ok {
		rgba = image.NewRGBA(b)
		draw.Draw(rgba, b, m, b.Min, draw.Src)
	}
	var hist [1 << 15]histBin
	transparent := false
	for y := b.Min.Y; y < b.Max.Y; y++ {
		px := rgba.Pix[rgba.PixOffset(b.Min.X, y):][:4*b.Dx()]
		for i := 0; i < len(px); i += 4 {
			if px[i+3] == 0 {
				transparent = true
				continue
			}
			h := &hist[int(px[i]>>3)<<10|int(px[i+1]>>3)<<5|int(px[i+2]>>3)]
			h.n++
			h.r += uint64(px[i])
			h.g += uint64(px[i+1])
			h.b += uint64(px[i+2])
		}
	}
	var bins []colorBin
	for _, h := range hist {
		if h.n > 0 {
			f := float64(h.n)
			bins = append(bins, colorBin{[3]float64{float64(h.r) / f, float64(h.g) / f, float64(h.b) / f}, f})
		}
	}
	slots := n
	if transparent {
		slots--
	}
	pal := medianCut(bins, slots)
	pal = kmeans(bins, pal, 2)
	p := make(color.Palette, 0, n)
	for _, c := range pal {
		p = append(p, color.RGBA{uint8(c[0] + 0.5), uint8(c[1] + 0.5), uint8(c[2] + 0.5), 255})
	}
	tIndex := uint8(0)
	if transparent {
		tIndex = uint8(len(p))
		p = append(p, color.RGBA{})
	}
	out := image.NewPaletted(image.Rect(0, 0, b.Dx(), b.Dy()), p)
	nearest := newNearest(pal)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		px := rgba.Pix[rgba.PixOffset(b.Min.X, y):][:4*b.Dx()]
		row := out.Pix[(y-b.Min.Y)*out.Stride:]
		for i, x := 0, 0; i < len(px); i, x = i+4, x+1 {
			if px[i+3] == 0 {
				row[x] = tIndex
				continue
			}
			row[x] = nearest.index(px[i], px[i+1], px[i+2])
		}
	}
	return out
}

type histBin struct {
	n, r, g, b uint64
}

type colorBin struct {
	c [3]float64
	n float64
}

type box struct {
	bins []colorBin
	err  float64 // weighted squared error around the mean: the split priority
	mean [3]float64
	axis int // channel with the largest spread
}

func newBox(bins []colorBin) box {
	bx := box{bins: bins}
	var n float64
	var s, s2 [3]float64
	for _, b := range bins {
		for ch := range 3 {
			s[ch] += b.n * b.c[ch]
			s2[ch] += b.n * b.c[ch] * b.c[ch]
		}
		n += b.n
	}
	best := -1.0
	for ch := range 3 {
		bx.mean[ch] = s[ch] / n
		v := s2[ch] - s[ch]*s[ch]/n
		bx.err += v
		if v > best {
			best, bx.axis = v, ch
		}
	}
	return bx
}

// medianCut splits the box with the largest squared error at the weighted median of its
// widest channel until there are n boxes or nothing left to split.
func medianCut(bins []colorBin, n int) [][3]float64 {
	if len(bins) == 0 {
		return [][3]float64{{0, 0, 0}}
	}
	boxes := []box{newBox(bins)}
	for len(boxes) < n {
		bi := -1
		for i, bx := range boxes {
			if len(bx.bins) > 1 && (bi < 0 || bx.err > boxes[bi].err) {
				bi = i
			}
		}
		if bi < 0 {
			break
		}
		bx := boxes[bi]
		ax := bx.axis
		slices.SortFunc(bx.bins, func(a, b colorBin) int {
			switch {
			case a.c[ax] < b.c[ax]:
				return -1
			case a.c[ax] > b.c[ax]:
				return 1
			}
			return 0
		})
		var total, acc float64
		for _, b := range bx.bins {
			total += b.n
		}
		cut := 1
		for i, b := range bx.bins[:len(bx.bins)-1] {
			acc += b.n
			cut = i + 1
			if acc >= total/2 {
				break
			}
		}
		boxes[bi] = newBox(bx.bins[:cut])
		boxes = append(boxes, newBox(bx.bins[cut:]))
	}
	pal := make([][3]float64, len(boxes))
	for i, bx := range boxes {
		pal[i] = bx.mean
	}
	return pal
}

// kmeans moves each palette colour to the mean of the histogram bins nearest to it.
func kmeans(bins []colorBin, pal [][3]float64, iters int) [][3]float64 {
	for range iters {
		sum := make([][4]float64, len(pal))
		ss := newSortedSearch(pal)
		for _, b := range bins {
			i := ss.nearest(int32(b.c[0]+0.5), int32(b.c[1]+0.5), int32(b.c[2]+0.5))
			for ch := range 3 {
				sum[i][ch] += b.n * b.c[ch]
			}
			sum[i][3] += b.n
		}
		for i := range pal {
			if sum[i][3] > 0 {
				pal[i] = [3]float64{sum[i][0] / sum[i][3], sum[i][1] / sum[i][3], sum[i][2] / sum[i][3]}
			}
		}
	}
	return pal
}

// sortedSearch finds the nearest palette colour by scanning outward from the entry with
// the closest green (the channel that weighs most in what people see and usually has the
// widest spread) and stopping once the green difference alone exceeds the best distance:
// an order of magnitude fewer distance computations than a full scan of 255 colours.
type sortedSearch struct {
	byG []sortedColor
}

type sortedColor struct {
	r, g, b int32
	i       int
}

func newSortedSearch(pal [][3]float64) sortedSearch {
	ss := sortedSearch{byG: make([]sortedColor, len(pal))}
	for i, c := range pal {
		ss.byG[i] = sortedColor{int32(c[0] + 0.5), int32(c[1] + 0.5), int32(c[2] + 0.5), i}
	}
	slices.SortFunc(ss.byG, func(a, b sortedColor) int { return int(a.g - b.g) })
	return ss
}

func (ss sortedSearch) nearest(r, g, b int32) int {
	p := ss.byG
	hi, _ := slices.BinarySearchFunc(p, g, func(c sortedColor, g int32) int { return int(c.g - g) })
	lo := hi - 1
	best, bd := 0, int32(1<<30)
	for lo >= 0 || hi < len(p) {
		if hi < len(p) {
			c := p[hi]
			dg := c.g - g
			if dg*dg >= bd {
				hi = len(p)
			} else {
				dr, db := c.r-r, c.b-b
				if d := dr*dr + dg*dg + db*db; d < bd {
					best, bd = c.i, d
				}
				hi++
			}
		}
		if lo >= 0 {
			c := p[lo]
			dg := g - c.g
			if dg*dg >= bd {
				lo = -1
			} else {
				dr, db := c.r-r, c.b-b
				if d := dr*dr + dg*dg + db*db; d < bd {
					best, bd = c.i, d
				}
				lo--
			}
		}
	}
	return best
}

// nearest caches the nearest palette index per 6-bit-per-channel colour; entries are
// filled on first use, so only colours present in the image cost a palette search.
type nearest struct {
	ss  sortedSearch
	lut []uint16 // index+1; 0 = not computed yet
}

func newNearest(pal [][3]float64) *nearest {
	return &nearest{ss: newSortedSearch(pal), lut: make([]uint16, 1<<18)}
}

func (nn *nearest) index(r, g, b uint8) uint8 {
	k := int(r>>2)<<12 | int(g>>2)<<6 | int(b>>2)
	if v := nn.lut[k]; v != 0 {
		return uint8(v - 1)
	}
	// search from the bucket centre so every colour in the bucket gets the same answer
	i := nn.ss.nearest(int32(r&^3)+2, int32(g&^3)+2, int32(b&^3)+2)
	nn.lut[k] = uint16(i + 1)
	return uint8(i)
}
