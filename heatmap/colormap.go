package heatmap

import (
	"image/color"
	"math"
	"sync"
)

// Colormap maps a value in [0, 1] to a colour. It holds a 256-entry table. Get one from
// Viridis or Coolwarm; the zero Colormap behaves as Viridis.
type Colormap struct {
	name  string
	table *[256]color.RGBA
}

// PaletteSize is the number of colormap entries in a rendered heatmap's palette. The
// two remaining sixel colour registers are NaNIndex and MarkerIndex.
const PaletteSize = 254

const (
	// NaNIndex is the palette index of "no value" pixels: fully transparent, so the
	// terminal background (sixel) or the photo underneath (Overlay) shows through.
	NaNIndex = 254
	// MarkerIndex is the palette slot DrawCursor claims for its colour.
	MarkerIndex = 255
)

// Name is the colormap's name, for legends and --help.
func (c Colormap) Name() string {
	if c.table == nil {
		return "viridis"
	}
	return c.name
}

// At returns the colour for v in [0, 1], linearly interpolated between table entries.
// Values outside [0, 1] are clamped; NaN gives transparent black.
func (c Colormap) At(v float64) color.RGBA {
	if math.IsNaN(v) {
		return color.RGBA{}
	}
	t := c.table
	if t == nil {
		t = viridisTable()
	}
	v = min(max(v, 0), 1) * 255
	i := int(v)
	if i >= 255 {
		return t[255]
	}
	f := v - float64(i)
	a, b := t[i], t[i+1]
	lerp := func(x, y uint8) uint8 { return uint8(float64(x)*(1-f) + float64(y)*f + 0.5) }
	return color.RGBA{lerp(a.R, b.R), lerp(a.G, b.G), lerp(a.B, b.B), 255}
}

// Palette returns PaletteSize colours sampled evenly from 0 to 1: entry i is At(i/(PaletteSize-1)).
// It leaves room for NaNIndex and MarkerIndex within sixel's 256 registers.
func (c Colormap) Palette() color.Palette {
	p := make(color.Palette, PaletteSize)
	for i := range p {
		p[i] = c.At(float64(i) / (PaletteSize - 1))
	}
	return p
}

// Viridis is matplotlib's perceptually uniform default colormap, for unsigned maps
// (similarity, attention). Its lightness rises monotonically, so it also reads in grey.
func Viridis() Colormap { return Colormap{name: "viridis", table: viridisTable()} }

// Coolwarm is Moreland's diverging blue–white–red colormap, for signed maps (differences).
// Map 0 to the middle of the range to keep white at zero.
func Coolwarm() Colormap { return Colormap{name: "coolwarm", table: coolwarmTable()} }

// Colormaps lists the built-in colormaps by name.
func Colormaps() []Colormap { return []Colormap{Viridis(), Coolwarm()} }

var viridisTable = sync.OnceValue(func() *[256]color.RGBA {
	// Matt Zucker's degree-6 least-squares fit of matplotlib's viridis table (public
	// domain, shadertoy WlfXRN); max error about 1/255 against the published 256 entries,
	// which saves carrying the 768 numbers here. Tested against known anchor colours.
	c := [7][3]float64{
		{0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
		{0.1050930431085774, 1.404613529898575, 1.384590162594685},
		{-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
		{-4.634230498983486, -5.799100973351585, -19.33244095627987},
		{6.228269936347081, 14.17993336680509, 56.69055260068105},
		{4.776384997670288, -13.74514537774601, -65.35303263337234},
		{-5.435455855934631, 4.645852612178535, 26.3124352495832},
	}
	var t [256]color.RGBA
	for i := range t {
		x := float64(i) / 255
		var rgb [3]float64
		for ch := range 3 {
			v := 0.0
			for k := 6; k >= 0; k-- {
				v = v*x + c[k][ch]
			}
			rgb[ch] = v
		}
		t[i] = color.RGBA{unit8(rgb[0]), unit8(rgb[1]), unit8(rgb[2]), 255}
	}
	return &t
})

var coolwarmTable = sync.OnceValue(func() *[256]color.RGBA {
	// Moreland, "Diverging Color Maps for Scientific Visualization" (2009): interpolate
	// in Msh space between blue (59,76,192) and red (180,4,38) through a white of M=88.
	// Computing the table from the definition keeps it exact without a 768-number literal.
	lo := rgbToMsh(59, 76, 192)
	hi := rgbToMsh(180, 4, 38)
	var t [256]color.RGBA
	for i := range t {
		r, g, b := mshToRGB(interpMsh(lo, hi, float64(i)/255))
		t[i] = color.RGBA{unit8(r), unit8(g), unit8(b), 255}
	}
	return &t
})

func unit8(v float64) uint8 { return uint8(min(max(v, 0), 1)*255 + 0.5) }

type msh struct{ m, s, h float64 }

// D65 reference white, as in Moreland's paper.
const refX, refY, refZ = 0.95047, 1.0, 1.08883

func toLinear(c float64) float64 {
	if c <= 0.04045 {
		return c / 12.92
	}
	return math.Pow((c+0.055)/1.055, 2.4)
}

func fromLinear(c float64) float64 {
	if c <= 0.0031308 {
		return c * 12.92
	}
	return 1.055*math.Pow(c, 1/2.4) - 0.055
}

func labF(t float64) float64 {
	if t > 0.008856 {
		return math.Cbrt(t)
	}
	return 7.787*t + 16.0/116
}

func labFInv(t float64) float64 {
	if t3 := t * t * t; t3 > 0.008856 {
		return t3
	}
	return (t - 16.0/116) / 7.787
}

// rgbToLab converts 8-bit sRGB to CIE L*a*b* (D65).
func rgbToLab(r8, g8, b8 uint8) (l, a, b float64) {
	r, g, bl := toLinear(float64(r8)/255), toLinear(float64(g8)/255), toLinear(float64(b8)/255)
	x := 0.4124*r + 0.3576*g + 0.1805*bl
	y := 0.2126*r + 0.7152*g + 0.0722*bl
	z := 0.0193*r + 0.1192*g + 0.9505*bl
	fx, fy, fz := labF(x/refX), labF(y/refY), labF(z/refZ)
	return 116*fy - 16, 500 * (fx - fy), 200 * (fy - fz)
}

func labToRGB(l, a, b float64) (float64, float64, float64) {
	fy := (l + 16) / 116
	x, y, z := refX*labFInv(fy+a/500), refY*labFInv(fy), refZ*labFInv(fy-b/200)
	r := 3.2406*x - 1.5372*y - 0.4986*z
	g := -0.9689*x + 1.8758*y + 0.0415*z
	bl := 0.0557*x - 0.2040*y + 1.0570*z
	return fromLinear(r), fromLinear(g), fromLinear(bl)
}

func rgbToMsh(r, g, b uint8) msh {
	l, a, bb := rgbToLab(r, g, b)
	m := math.Sqrt(l*l + a*a + bb*bb)
	return msh{m, math.Acos(l / m), math.Atan2(bb, a)}
}

func mshToRGB(c msh) (float64, float64, float64) {
	return labToRGB(c.m*math.Cos(c.s), c.m*math.Sin(c.s)*math.Cos(c.h), c.m*math.Sin(c.s)*math.Sin(c.h))
}

// adjustHue spins the hue of an unsaturated end point so the interpolation does not
// pass through a muddy colour (Moreland's AdjustHue).
func adjustHue(sat msh, mUnsat float64) float64 {
	if sat.m >= mUnsat {
		return sat.h
	}
	spin := sat.s * math.Sqrt(mUnsat*mUnsat-sat.m*sat.m) / (sat.m * math.Sin(sat.s))
	if sat.h > -math.Pi/3 {
		return sat.h + spin
	}
	return sat.h - spin
}

func interpMsh(c1, c2 msh, t float64) msh {
	if c1.s > 0.05 && c2.s > 0.05 && angleDiff(c1.h, c2.h) > math.Pi/3 {
		mid := max(c1.m, c2.m, 88)
		if t < 0.5 {
			c2, t = msh{mid, 0, 0}, 2*t
		} else {
			c1, t = msh{mid, 0, 0}, 2*t-1
		}
	}
	if c1.s < 0.05 && c2.s > 0.05 {
		c1.h = adjustHue(c2, c1.m)
	} else if c2.s < 0.05 && c1.s > 0.05 {
		c2.h = adjustHue(c1, c2.m)
	}
	return msh{(1-t)*c1.m + t*c2.m, (1-t)*c1.s + t*c2.s, (1-t)*c1.h + t*c2.h}
}

func angleDiff(a, b float64) float64 {
	d := math.Abs(a - b)
	if d > math.Pi {
		d = 2*math.Pi - d
	}
	return d
}
