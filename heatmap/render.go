package heatmap

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	xdraw "golang.org/x/image/draw"
)

// Grid is a row-major grid of token values (one per attention token); NaN means no value.
type Grid struct {
	W, H   int
	Values []float32
}

// Validate reports a grid whose Values do not hold W×H entries.
func (g Grid) Validate() error {
	if g.W <= 0 || g.H <= 0 || len(g.Values) != g.W*g.H {
		return fmt.Errorf("heatmap: grid %d×%d has %d values, want %d", g.W, g.H, len(g.Values), max(g.W*g.H, 0))
	}
	return nil
}

// At returns the value of token (x, y), NaN outside the grid.
func (g Grid) At(x, y int) float32 {
	if x < 0 || y < 0 || x >= g.W || y >= g.H {
		return float32(math.NaN())
	}
	return g.Values[y*g.W+x]
}

// Range returns the smallest and largest finite values; ok is false when there are none.
func (g Grid) Range() (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, v := range g.Values {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			continue
		}
		lo, hi, ok = min(lo, v), max(hi, v), true
	}
	if !ok {
		return 0, 0, false
	}
	return lo, hi, true
}

// palette returns a fresh 256-entry palette for one rendered image: the colormap, then
// NaNIndex (transparent), then MarkerIndex (white until DrawCursor claims it). Each image
// gets its own copy because DrawCursor may change the marker slot.
func (c Colormap) heatPalette() color.Palette {
	p := make(color.Palette, 256)
	copy(p, c.Palette())
	p[NaNIndex] = color.RGBA{}
	p[MarkerIndex] = color.RGBA{255, 255, 255, 255}
	return p
}

// Render upsamples g to a w×h image coloured by cm, with lo mapped to the first colour
// and hi to the last. The palette is the colormap (see NaNIndex, MarkerIndex), so the
// sixel encoder needs no quantisation.
//
// Upsampling is bilinear in value space: each pixel interpolates the token values around
// it and then looks up its colour. Interpolating values, not colours, keeps every pixel on
// the colormap (so the legend stays true: mixing viridis' blue and yellow in RGB would
// give a grey that means nothing), and it suits a paletted image. Token centres keep their
// exact value; DrawCursor shows where a token's cell lies. A NaN neighbour is left out of
// the weights, so the valid region does not bleed into the missing one; a pixel with only
// NaN neighbours is transparent. Use RenderBlocks for one flat square per token.
func Render(g Grid, cm Colormap, lo, hi float32, w, h int) *image.Paletted {
	m := image.NewPaletted(image.Rect(0, 0, max(w, 0), max(h, 0)), cm.heatPalette())
	if g.Validate() != nil || w <= 0 || h <= 0 {
		fillIndex(m, NaNIndex)
		return m
	}
	sx, sy := float64(g.W)/float64(w), float64(g.H)/float64(h)
	// Precompute the horizontal taps once per column: they are the same on every row.
	type tap struct {
		x0, x1 int
		fx     float64
	}
	taps := make([]tap, w)
	for x := range taps {
		gx := min(max((float64(x)+0.5)*sx-0.5, 0), float64(g.W-1))
		x0 := int(gx)
		taps[x] = tap{x0, min(x0+1, g.W-1), gx - float64(x0)}
	}
	scale := float64(PaletteSize-1) / float64(hi-lo)
	if hi <= lo || math.IsInf(scale, 0) || math.IsNaN(scale) {
		scale = 0
	}
	for y := range h {
		gy := min(max((float64(y)+0.5)*sy-0.5, 0), float64(g.H-1))
		y0 := int(gy)
		y1, fy := min(y0+1, g.H-1), gy-float64(y0)
		r0, r1 := g.Values[y0*g.W:(y0+1)*g.W], g.Values[y1*g.W:(y1+1)*g.W]
		row := m.Pix[y*m.Stride : y*m.Stride+w]
		for x, t := range taps {
			v, ok := bilinear(r0[t.x0], r0[t.x1], r1[t.x0], r1[t.x1], t.fx, fy)
			if !ok {
				row[x] = NaNIndex
				continue
			}
			row[x] = valueIndex(v, float64(lo), scale)
		}
	}
	return m
}

// RenderBlocks is Render with nearest-neighbour upsampling: each token is a flat block.
// It shows token boundaries exactly and encodes to fewer sixel bytes.
func RenderBlocks(g Grid, cm Colormap, lo, hi float32, w, h int) *image.Paletted {
	m := image.NewPaletted(image.Rect(0, 0, max(w, 0), max(h, 0)), cm.heatPalette())
	if g.Validate() != nil || w <= 0 || h <= 0 {
		fillIndex(m, NaNIndex)
		return m
	}
	scale := float64(PaletteSize-1) / float64(hi-lo)
	if hi <= lo || math.IsInf(scale, 0) || math.IsNaN(scale) {
		scale = 0
	}
	for y := range h {
		gy := y * g.H / h
		row := m.Pix[y*m.Stride : y*m.Stride+w]
		for x := range row {
			v := float64(g.Values[gy*g.W+x*g.W/w])
			if math.IsNaN(v) {
				row[x] = NaNIndex
				continue
			}
			row[x] = valueIndex(v, float64(lo), scale)
		}
	}
	return m
}

func valueIndex(v, lo, scale float64) uint8 {
	i := (v-lo)*scale + 0.5
	if !(i > 0) { // also catches NaN from ±Inf values
		return 0
	}
	return uint8(min(i, PaletteSize-1))
}

func bilinear(v00, v10, v01, v11 float32, fx, fy float64) (float64, bool) {
	w := [4]float64{(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy}
	v := [4]float64{float64(v00), float64(v10), float64(v01), float64(v11)}
	var sum, ws float64
	for i := range v {
		if math.IsNaN(v[i]) || w[i] == 0 {
			continue
		}
		sum += w[i] * v[i]
		ws += w[i]
	}
	if ws == 0 {
		return 0, false
	}
	return sum / ws, true
}

func fillIndex(m *image.Paletted, i uint8) {
	for j := range m.Pix {
		m.Pix[j] = i
	}
}

// DrawCursor draws a box around token (tx, ty) of a gridW×gridH grid drawn over img's
// bounds. The line is 1 pixel wide, 2 when a token cell is at least 12 pixels. On a
// heatmap from Render the colour takes the MarkerIndex slot, so it shows exactly instead of
// snapping to the nearest colormap entry.
func DrawCursor(img draw.Image, gridW, gridH, tx, ty int, c color.Color) {
	if gridW <= 0 || gridH <= 0 || tx < 0 || ty < 0 || tx >= gridW || ty >= gridH {
		return
	}
	b := img.Bounds()
	r := image.Rect(
		b.Min.X+tx*b.Dx()/gridW, b.Min.Y+ty*b.Dy()/gridH,
		b.Min.X+(tx+1)*b.Dx()/gridW, b.Min.Y+(ty+1)*b.Dy()/gridH,
	)
	if r.Empty() {
		return
	}
	t := 1
	if r.Dx() >= 12 && r.Dy() >= 12 {
		t = 2
	}
	src := image.Image(image.NewUniform(c))
	if p, ok := img.(*image.Paletted); ok && len(p.Palette) > MarkerIndex {
		p.Palette[MarkerIndex] = c
		src = image.NewUniform(p.Palette[MarkerIndex])
	}
	for _, e := range []image.Rectangle{
		{r.Min, image.Pt(r.Max.X, r.Min.Y+t)},
		{image.Pt(r.Min.X, r.Max.Y-t), r.Max},
		{r.Min, image.Pt(r.Min.X+t, r.Max.Y)},
		{image.Pt(r.Max.X-t, r.Min.Y), r.Max},
	} {
		if p, ok := img.(*image.Paletted); ok && len(p.Palette) > MarkerIndex {
			// draw.Draw would search the palette for the nearest colour; the
			// marker slot is known, so set it directly.
			e = e.Intersect(p.Rect)
			for y := e.Min.Y; y < e.Max.Y; y++ {
				for x := e.Min.X; x < e.Max.X; x++ {
					p.SetColorIndex(x, y, MarkerIndex)
				}
			}
			continue
		}
		draw.Draw(img, e, src, image.Point{}, draw.Src)
	}
}

// Legend returns a colour bar of w×h pixels: vertical (hi at the top) when h > w,
// horizontal (lo at the left) otherwise. Dark tick marks sit at Ticks(lo, hi, 5), where the
// UI writes its labels; pass lo == hi for a bar without ticks.
func Legend(cm Colormap, lo, hi float32, w, h int) image.Image {
	m := image.NewPaletted(image.Rect(0, 0, max(w, 0), max(h, 0)), cm.heatPalette())
	if w <= 0 || h <= 0 {
		return m
	}
	vertical := h > w
	n := w
	if vertical {
		n = h
	}
	for y := range h {
		for x := range w {
			i := x
			if vertical {
				i = h - 1 - y
			}
			m.Pix[y*m.Stride+x] = uint8((i*(PaletteSize-1) + (n-1)/2) / max(n-1, 1))
		}
	}
	if hi <= lo {
		return m
	}
	m.Palette[MarkerIndex] = color.RGBA{0, 0, 0, 255}
	for _, t := range Ticks(lo, hi, 5) {
		p := int(math.Round(float64(t-lo) / float64(hi-lo) * float64(n-1)))
		// a tick a quarter of the bar deep, on the far edge from the labels
		if vertical {
			y := h - 1 - p
			for x := w - max(w/4, 1); x < w; x++ {
				m.SetColorIndex(x, y, MarkerIndex)
			}
		} else {
			for y := h - max(h/4, 1); y < h; y++ {
				m.SetColorIndex(p, y, MarkerIndex)
			}
		}
	}
	return m
}

// Ticks returns about n (the nice step nearest to (hi−lo)/(n−1)) "nice" values (multiples of 1, 2 or 5 × 10^k) within [lo, hi].
func Ticks(lo, hi float32, n int) []float32 {
	if !(hi > lo) || n < 2 {
		return nil
	}
	raw := float64(hi-lo) / float64(n-1)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, s := range []float64{2, 5, 10} {
		// the nice step nearest to the raw one, by ratio
		if math.Abs(math.Log(s*mag/raw)) < math.Abs(math.Log(step/raw)) {
			step = s * mag
		}
	}
	var ts []float32
	for v := math.Ceil(float64(lo)/step) * step; v <= float64(hi)+step*1e-9; v += step {
		ts = append(ts, float32(math.Round(v/step)*step))
	}
	return ts
}

// Overlay blends heat over photo: out = (1−α·a)·photo + α·a·heat, where a is the heat
// pixel's own alpha (so NaN tokens leave the photo untouched). The result has photo's
// size; heat is stretched to it when the sizes differ.
func Overlay(photo image.Image, heat image.Image, alpha float64) *image.RGBA {
	out, h := blendInputs(photo, heat)
	k := min(max(alpha, 0), 1)
	for i := 0; i < len(out.Pix); i += 4 {
		a := float64(h.Pix[i+3]) / 255
		if a == 0 {
			continue
		}
		// heat is premultiplied: photo·(1 − k·a) + k·heat
		for c := range 3 {
			out.Pix[i+c] = uint8((1-k*a)*float64(out.Pix[i+c]) + k*float64(h.Pix[i+c]) + 0.5)
		}
	}
	return out
}

// Fit scales src to fit inside w×h keeping its aspect ratio, centred, with transparent
// bars (shown as the terminal background). Photos are shown once per layout change, so
// the slower, sharper Catmull-Rom filter is worth it.
func Fit(src image.Image, w, h int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, max(w, 0), max(h, 0)))
	sb := src.Bounds()
	if w <= 0 || h <= 0 || sb.Empty() {
		return out
	}
	fw, fh := w, sb.Dy()*w/sb.Dx()
	if fh > h {
		fw, fh = sb.Dx()*h/sb.Dy(), h
	}
	fw, fh = max(fw, 1), max(fh, 1)
	r := image.Rect((w-fw)/2, (h-fh)/2, (w-fw)/2+fw, (h-fh)/2+fh)
	xdraw.CatmullRom.Scale(out, r, src, sb, xdraw.Src, nil)
	return out
}

// Resize stretches src to exactly w×h (Catmull-Rom).
func Resize(src image.Image, w, h int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, max(w, 0), max(h, 0)))
	if w > 0 && h > 0 && !src.Bounds().Empty() {
		xdraw.CatmullRom.Scale(out, out.Rect, src, src.Bounds(), xdraw.Src, nil)
	}
	return out
}

// Posterize limits a heatmap from Render to n evenly spaced colormap levels, in place.
// Fewer levels mean fewer colour boundaries per sixel band, so far fewer bytes (a 32-level
// map is about a quarter of the size) at a PSNR near libsixel's own colour reduction; use
// it when bandwidth matters more than smoothness (a slow SSH link).
func Posterize(m *image.Paletted, n int) {
	if n < 2 || n >= PaletteSize {
		return
	}
	var lut [256]uint8
	for i := range lut {
		lut[i] = uint8(i)
		if i < PaletteSize {
			level := (i*n + PaletteSize/2) / PaletteSize // 0..n
			level = min(level, n-1)
			lut[i] = uint8((level*(PaletteSize-1) + (n-1)/2) / (n - 1))
		}
	}
	for i, c := range m.Pix {
		m.Pix[i] = lut[c]
	}
}

// Tint colours photo with heat while keeping the photo's brightness: each pixel becomes
// heat's hue scaled to the photo pixel's luminance, mixed in with weight α·a (a: the heat
// pixel's alpha). Unlike Overlay, α = 1 still shows every edge and shadow of the photo,
// which is what keeps a photo recognisable at half-block resolution, where a plain blend
// turns it into a flat blob of the colormap's colours.
func Tint(photo image.Image, heat image.Image, alpha float64) *image.RGBA {
	out, h := blendInputs(photo, heat)
	k := min(max(alpha, 0), 1)
	lum := func(r, g, b float64) float64 { return 0.2126*r + 0.7152*g + 0.0722*b }
	for i := 0; i < len(out.Pix); i += 4 {
		a := float64(h.Pix[i+3]) / 255
		if a == 0 {
			continue
		}
		// un-premultiply the heat colour
		hr, hg, hbl := float64(h.Pix[i])/a, float64(h.Pix[i+1])/a, float64(h.Pix[i+2])/a
		pr, pg, pb := float64(out.Pix[i]), float64(out.Pix[i+1]), float64(out.Pix[i+2])
		lh, lp := lum(hr, hg, hbl), lum(pr, pg, pb)
		s := 0.0
		if lh > 0 {
			s = lp / lh
		}
		t := [3]float64{min(hr*s, 255), min(hg*s, 255), min(hbl*s, 255)}
		if l1 := lum(t[0], t[1], t[2]); l1 < lp && l1 < 255 {
			// A dark hue clipped before reaching the photo's brightness: mix in white,
			// which raises luminance linearly, until it does.
			f := (lp - l1) / (255 - l1)
			for c := range t {
				t[c] += f * (255 - t[c])
			}
		}
		w := k * a
		for c := range t {
			out.Pix[i+c] = uint8((1-w)*float64(out.Pix[i+c]) + w*t[c] + 0.5)
		}
	}
	return out
}

// blendInputs copies photo into a new RGBA image at the origin and converts heat, stretched to
// the photo's size, to RGBA once, instead of a colour per At call.
func blendInputs(photo, heat image.Image) (out, h *image.RGBA) {
	b := photo.Bounds()
	out = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, photo, b.Min, draw.Src)
	hb := heat.Bounds()
	if hb.Dx() != b.Dx() || hb.Dy() != b.Dy() {
		heat = Resize(heat, b.Dx(), b.Dy())
		hb = heat.Bounds()
	}
	h = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(h, h.Rect, heat, hb.Min, draw.Src)
	return out, h
}
