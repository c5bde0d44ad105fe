package synth

import (
	"math"
	"math/rand/v2"
)

// texture makes, for one image's jitter and an orientation, the texture's value in [0, 1]
// at a point of the image (coordinates in [0, 1)).
type texture struct {
	name    string
	prepare func(j jitter, angle float64) func(x, y float64) float64
}

// along turns image coordinates into the texture's rotated frame.
func along(x, y, angle float64) (u, v float64) {
	sin, cos := math.Sincos(angle)
	return x*cos + y*sin, -x*sin + y*cos
}

// sharp turns a wave in [-1, 1] into a nearly two-tone value with soft edges.
func sharp(w float64) float64 { return smoothstep(-0.35, 0.35, w) }

func smoothstep(lo, hi, x float64) float64 {
	t := min(max((x-lo)/(hi-lo), 0), 1)
	return t * t * (3 - 2*t)
}

// frac is the distance of x above the integer below it, in [0, 1).
func frac(x float64) float64 { return x - math.Floor(x) }

// tri is a triangle wave of period 1 in [0, 1].
func tri(x float64) float64 { return 1 - 2*math.Abs(frac(x)-0.5) }

func stripes(j jitter, angle float64) func(x, y float64) float64 {
	f := 7 * j.freq * 2 * math.Pi
	return func(x, y float64) float64 {
		u, _ := along(x, y, angle)
		return sharp(math.Sin(f*u + j.phase[0]))
	}
}

func dots(j jitter, angle float64) func(x, y float64) float64 {
	f := 6 * j.freq
	return func(x, y float64) float64 {
		u, v := along(x, y, angle)
		du, dv := frac(f*u+j.phase[0]/(2*math.Pi))-0.5, frac(f*v+j.phase[1]/(2*math.Pi))-0.5
		return 1 - smoothstep(0.22, 0.3, math.Hypot(du, dv))
	}
}

func checks(j jitter, angle float64) func(x, y float64) float64 {
	f := 5 * j.freq * 2 * math.Pi
	return func(x, y float64) float64 {
		u, v := along(x, y, angle)
		return sharp(4 * math.Sin(f*u+j.phase[0]) * math.Sin(f*v+j.phase[1]))
	}
}

func waves(j jitter, angle float64) func(x, y float64) float64 {
	f := 6 * j.freq * 2 * math.Pi
	return func(x, y float64) float64 {
		u, v := along(x, y, angle)
		return 0.5 + 0.5*math.Sin(f*(u+0.05*math.Sin(3*2*math.Pi*v+j.phase[1]))+j.phase[0])
	}
}

// rings are concentric circles about a point outside the image, in the texture's direction.
func rings(j jitter, angle float64) func(x, y float64) float64 {
	f := 8 * j.freq * 2 * math.Pi
	sin, cos := math.Sincos(angle + math.Pi/4)
	ox, oy := 0.5-1.1*cos, 0.5-1.1*sin
	return func(x, y float64) float64 {
		return sharp(math.Sin(f*math.Hypot(x-ox, y-oy) + j.phase[0]))
	}
}

func gridLines(j jitter, angle float64) func(x, y float64) float64 {
	f := 6 * j.freq
	return func(x, y float64) float64 {
		u, v := along(x, y, angle)
		du := math.Abs(frac(f*u+j.phase[0]/(2*math.Pi)) - 0.5)
		dv := math.Abs(frac(f*v+j.phase[1]/(2*math.Pi)) - 0.5)
		return smoothstep(0.32, 0.4, max(du, dv))
	}
}

func zigzag(j jitter, angle float64) func(x, y float64) float64 {
	f := 7 * j.freq * 2 * math.Pi
	return func(x, y float64) float64 {
		u, v := along(x, y, angle)
		return sharp(math.Sin(f*(u+0.06*tri(8*v+j.phase[1])) + j.phase[0]))
	}
}

// blotches are smooth random patches: a sum of a few low-frequency waves in random
// directions, made two-tone.
func blotches(j jitter, angle float64) func(x, y float64) float64 {
	const n = 6
	r := rand.New(rand.NewPCG(j.seed, math.Float64bits(angle)))
	var kx, ky, ph [n]float64
	for i := range n {
		a := r.Float64() * 2 * math.Pi
		k := (2.5 + 2*r.Float64()) * j.freq * 2 * math.Pi
		kx[i], ky[i], ph[i] = k*math.Cos(a), k*math.Sin(a), r.Float64()*2*math.Pi
	}
	return func(x, y float64) float64 {
		s := 0.0
		for i := range n {
			s += math.Sin(kx[i]*x + ky[i]*y + ph[i])
		}
		return sharp(s / math.Sqrt(n))
	}
}

// shape reports whether a point of the shape's frame (centred, nominal radius 1) is inside.
type shape struct {
	name   string
	inside func(x, y float64) bool
}

func disc(x, y float64) bool { return x*x+y*y < 0.9*0.9 }

func ring(x, y float64) bool {
	r := math.Hypot(x, y)
	return r > 0.55 && r < 1
}

func square(x, y float64) bool { return math.Abs(x) < 0.8 && math.Abs(y) < 0.8 }

// triangle is equilateral, pointing up, with circumradius 1.05.
func triangle(x, y float64) bool {
	const r = 1.05
	// Three half-planes whose inner normals point at the centre, each at distance r/2.
	for _, a := range [3]float64{math.Pi / 2, math.Pi/2 + 2*math.Pi/3, math.Pi/2 + 4*math.Pi/3} {
		if x*math.Cos(a)+y*math.Sin(a) > r/2 {
			return false
		}
	}
	return true
}

func cross(x, y float64) bool {
	ax, ay := math.Abs(x), math.Abs(y)
	return (ax < 0.3 && ay < 0.95) || (ay < 0.3 && ax < 0.95)
}

// star has five points: its radius runs linearly between 0.45 and 1.05 with the angle.
func star(x, y float64) bool {
	a := math.Atan2(x, -y) // 0 at the top point
	return math.Hypot(x, y) < 0.45+0.6*tri(a*5/(2*math.Pi)+0.5)
}

func crescent(x, y float64) bool {
	return x*x+y*y < 0.95*0.95 && (x-0.45)*(x-0.45)+(y+0.1)*(y+0.1) > 0.8*0.8
}

func bar(x, y float64) bool { return math.Abs(x) < 1.05 && math.Abs(y) < 0.28 }
