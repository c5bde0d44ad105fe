// Package synth draws a procedural dataset of styles × contents: each image shows one shape
// (its content: a disc, a triangle, a cross…) filled and surrounded by one texture in one
// palette (its style: "stripes-warm", "dots-cool"…). Written as the grid layout
// DIR/STYLE/CONTENT.png, it is a benchmark whose two labels are known by construction (does a
// metric follow the style or the content?) and, drawn with many seeds, training data from the
// same distribution.
//
// Everything is a pure function of (style, content, size, seed): the same arguments give the
// same bytes. The seed moves what a class leaves free, so two seeds give two different images
// of the same style and content: the shape's position, size and rotation, and the texture's
// phase, angle and frequency, all jittered within bounds that keep the classes apart. Drawing
// works in coordinates relative to the image, so a size changes the resolution, not the
// picture.
package synth

import (
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
)

// Style is how an image looks: a texture in a palette.
type Style struct {
	Name    string // texture-palette, e.g. "stripes-warm"
	Texture string
	Palette string
	tex     texture
	pal     palette
}

// Content is what an image shows: a shape.
type Content struct {
	Name  string
	shape shape
}

// The textures, palettes and shapes, in the order Styles and Contents hand them out.
var (
	textures = []texture{
		{"stripes", stripes}, {"dots", dots}, {"checks", checks}, {"waves", waves},
		{"rings", rings}, {"grid", gridLines}, {"zigzag", zigzag}, {"blotches", blotches},
	}
	palettes = []palette{
		// background dark, background light, figure dark, figure light
		{"warm", rgb(0x5a1e12), rgb(0x8c3a1c), rgb(0xe8762b), rgb(0xfcd76a)},
		{"cool", rgb(0x0f2247), rgb(0x234a7d), rgb(0x3fa7d6), rgb(0xc6f1ff)},
		{"forest", rgb(0x16301a), rgb(0x2e5a2c), rgb(0x7fb241), rgb(0xe2f0a8)},
		{"mono", rgb(0x1c1c1c), rgb(0x4a4a4a), rgb(0xa8a8a8), rgb(0xf4f4f4)},
		{"candy", rgb(0x4a1240), rgb(0x7a2a6e), rgb(0xf06fb0), rgb(0xffe0f4)},
		{"earth", rgb(0x2e2416), rgb(0x5c4a2e), rgb(0xb99563), rgb(0xf1e2c0)},
		{"dusk", rgb(0x1d1238), rgb(0x3e2a6b), rgb(0xd4674f), rgb(0xffc29a)},
		{"sea", rgb(0x06302e), rgb(0x0f5a55), rgb(0x2fc3b0), rgb(0xd2fff4)},
	}
	shapes = []shape{
		{"disc", disc}, {"triangle", triangle}, {"square", square}, {"cross", cross},
		{"ring", ring}, {"star", star}, {"crescent", crescent}, {"bar", bar},
	}
)

// MaxStyles and MaxContents are how many distinct styles and contents there are.
var (
	MaxStyles   = len(textures) * len(palettes)
	MaxContents = len(shapes)
)

// Styles returns the first n styles. The order pairs textures and palettes along the
// diagonals of their table: the first eight styles have eight different textures and eight
// different palettes, so any prefix varies both, and all 64 pairs come before a repeat.
func Styles(n int) ([]Style, error) {
	if n < 1 || n > MaxStyles {
		return nil, fmt.Errorf("%d styles: want 1 to %d (%d textures × %d palettes)", n, MaxStyles, len(textures), len(palettes))
	}
	out := make([]Style, n)
	for i := range out {
		t := textures[i%len(textures)]
		p := palettes[(i+i/len(textures))%len(palettes)]
		out[i] = Style{Name: t.name + "-" + p.name, Texture: t.name, Palette: p.name, tex: t, pal: p}
	}
	return out, nil
}

// Contents returns the first n contents.
func Contents(n int) ([]Content, error) {
	if n < 1 || n > MaxContents {
		return nil, fmt.Errorf("%d contents: want 1 to %d (%s)", n, MaxContents, shapeNames())
	}
	out := make([]Content, n)
	for i := range out {
		out[i] = Content{Name: shapes[i].name, shape: shapes[i]}
	}
	return out, nil
}

func shapeNames() string {
	s := ""
	for i, sh := range shapes {
		if i > 0 {
			s += ", "
		}
		s += sh.name
	}
	return s
}

// jitter is what the seed decides about one image.
type jitter struct {
	cx, cy, radius, rot float64 // the shape: centre, size and rotation (relative units, radians)
	angle, freq         float64 // the texture: orientation and cycles across the image
	phase               [2]float64
	bgAngle             float64 // the background's texture runs at another angle than the figure's
	seed                uint64  // for textures drawn from random components (blotches)
}

// drawJitter decides an image's jitter from the seed and the names of its classes: every
// (seed, style, content) draws its own, reproducibly on every platform (PCG is specified).
func drawJitter(s Style, c Content, seed uint64) jitter {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s", s.Name, c.Name)
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	return jitter{
		cx: u(0.38, 0.62), cy: u(0.38, 0.62), radius: u(0.24, 0.31), rot: u(-0.3, 0.3),
		angle: u(-0.25, 0.25), freq: u(0.9, 1.1),
		phase:   [2]float64{u(0, 2*math.Pi), u(0, 2*math.Pi)},
		bgAngle: u(1.2, 1.9),
		seed:    r.Uint64(),
	}
}

// samples per pixel side: 3×3 supersampling smooths shape edges and fine textures alike.
const samples = 3

// Render draws one image, size × size pixels.
func Render(s Style, c Content, size int, seed uint64) *image.NRGBA {
	j := drawJitter(s, c, seed)
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	fg := s.tex.prepare(j, j.angle)
	bg := s.tex.prepare(j, j.angle+j.bgAngle)
	inv := 1 / float64(size*samples)
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			var acc [3]float64
			for sy := 0; sy < samples; sy++ {
				for sx := 0; sx < samples; sx++ {
					x := float64(px*samples+sx)*inv + inv/2
					y := float64(py*samples+sy)*inv + inv/2
					var col [3]float64
					if c.shape.inside(shapeFrame(x, y, j)) {
						col = mix(s.pal.fgDark, s.pal.fgLight, fg(x, y))
					} else {
						col = mix(s.pal.bgDark, s.pal.bgLight, bg(x, y))
					}
					for k := range acc {
						acc[k] += col[k]
					}
				}
			}
			o := img.PixOffset(px, py)
			for k := range acc {
				img.Pix[o+k] = uint8(math.Round(acc[k] / (samples * samples)))
			}
			img.Pix[o+3] = 0xff
		}
	}
	return img
}

// shapeFrame maps image coordinates into the shape's own frame: centred, rotated, and
// scaled so that the shape's nominal radius is 1.
func shapeFrame(x, y float64, j jitter) (float64, float64) {
	dx, dy := (x-j.cx)/j.radius, (y-j.cy)/j.radius
	sin, cos := math.Sincos(-j.rot)
	return dx*cos - dy*sin, dx*sin + dy*cos
}

func mix(a, b color.RGBA, t float64) [3]float64 {
	t = min(max(t, 0), 1)
	return [3]float64{
		float64(a.R) + t*(float64(b.R)-float64(a.R)),
		float64(a.G) + t*(float64(b.G)-float64(a.G)),
		float64(a.B) + t*(float64(b.B)-float64(a.B)),
	}
}

type palette struct {
	name                             string
	bgDark, bgLight, fgDark, fgLight color.RGBA
}

func rgb(v uint32) color.RGBA {
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 0xff}
}
