// Command benchgfx compares this project's terminal image encoders with libsixel's
// img2sixel on the same pictures: a sample photograph and a heatmap, at the explorer's
// on-screen sizes. For each it prints the median time, the output size and the PSNR of the
// decoded output against the source (every sixel output is decoded with go-sixel's decoder,
// so both sides are measured the same way). scripts/bench-graphics.sh runs it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	_ "image/jpeg"

	"github.com/diffsim/diffsim/heatmap"
	"github.com/mattn/go-sixel"
)

func main() { os.Exit(run()) }

func run() int {
	photoPath := flag.String("photo", "../shared/samples/astronaut.png", "photograph to encode")
	sizes := flag.String("sizes", "256,480", "comma-separated square sizes in pixels")
	runs := flag.Int("runs", 9, "timed runs per encoder (median reported)")
	img2sixel := flag.String("img2sixel", "img2sixel", "libsixel's img2sixel binary; empty to skip")
	flag.Parse()

	photo, err := loadImage(*photoPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgfx:", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "benchgfx")
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgfx:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "encoder\timage\tsize\tms\tbytes\tPSNR dB\t")
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "benchgfx: bad size %q in -sizes\n", f)
			return 2
		}
		pics := []struct {
			name string
			src  image.Image
		}{
			{"photo", heatmap.Fit(photo, n, n)},
			{"heatmap", heatmap.Render(sampleGrid(), heatmap.Viridis(), 0, 1, n, n)},
		}
		for _, p := range pics {
			ref := toRGBA(p.src)
			for _, e := range encoders(p.name, p.src, *img2sixel, tmp) {
				ms, out, err := timeIt(*runs, e.fn)
				if err != nil {
					fmt.Fprintf(os.Stderr, "benchgfx: %s on %s %d: %v\n", e.name, p.name, n, err)
					return 1
				}
				q := "-"
				if e.decode != nil {
					if m, err := e.decode(out); err == nil {
						q = fmt.Sprintf("%.1f", psnr(ref, m))
					} else {
						q = "decode: " + err.Error()
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d×%d\t%.1f\t%d\t%s\t\n", e.name, p.name, n, n, ms, len(out), q)
			}
		}
	}
	tw.Flush()
	return 0
}

type encoder struct {
	name   string
	fn     func() ([]byte, error)
	decode func([]byte) (image.Image, error)
}

func encoders(kind string, src image.Image, img2sixel, tmp string) []encoder {
	decodeSixel := func(b []byte) (image.Image, error) {
		var m image.Image
		err := sixel.NewDecoder(bytes.NewReader(b)).Decode(&m)
		return m, err
	}
	se := &heatmap.SixelEncoder{}
	label := "diffsim sixel (own palette)"
	if kind == "photo" {
		label = "diffsim sixel (Quantize+encode)"
	}
	es := []encoder{{label, func() ([]byte, error) {
		var buf bytes.Buffer
		err := se.Encode(&buf, src)
		return buf.Bytes(), err
	}, decodeSixel}}
	if hm, ok := src.(*image.Paletted); ok && kind == "heatmap" {
		for _, n := range []int{64, 32} {
			post := *hm
			post.Pix = slices.Clone(hm.Pix)
			heatmap.Posterize(&post, n)
			es = append(es, encoder{fmt.Sprintf("diffsim sixel (Posterize %d)", n), func() ([]byte, error) {
				var buf bytes.Buffer
				err := se.Encode(&buf, &post)
				return buf.Bytes(), err
			}, decodeSixel})
		}
	}
	if kind == "photo" {
		q := heatmap.Quantize(src, 255)
		es = append(es, encoder{"diffsim sixel (cached palette)", func() ([]byte, error) {
			var buf bytes.Buffer
			err := se.Encode(&buf, q)
			return buf.Bytes(), err
		}, decodeSixel})
	}
	if img2sixel != "" {
		pngPath := filepath.Join(tmp, kind+".png")
		// An RGBA PNG, as any other program would hand over a rendered picture:
		// libsixel treats paletted PNGs differently (it kept 25 of 97 colours).
		if err := writePNG(pngPath, toRGBA(src)); err == nil {
			es = append(es, encoder{"img2sixel (process, PNG decode)", func() ([]byte, error) {
				return exec.Command(img2sixel, pngPath).Output()
			}, decodeSixel})
		}
	}
	ke := &heatmap.KittyEncoder{Compress: true, ID: 1}
	es = append(es, encoder{"diffsim kitty (zlib RGBA)", func() ([]byte, error) {
		var buf bytes.Buffer
		err := ke.Encode(&buf, src)
		return buf.Bytes(), err
	}, nil})
	b := src.Bounds()
	es = append(es, encoder{"diffsim half-block 24-bit", func() ([]byte, error) {
		return []byte(heatmap.HalfBlock(src, b.Dx()/6, b.Dy()/13, heatmap.TrueColor)), nil
	}, nil})
	return es
}

func timeIt(runs int, fn func() ([]byte, error)) (float64, []byte, error) {
	var out []byte
	ds := make([]time.Duration, 0, runs)
	for range max(runs, 1) {
		t := time.Now()
		b, err := fn()
		if err != nil {
			return 0, nil, err
		}
		ds = append(ds, time.Since(t))
		out = b
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000, out, nil
}

// sampleGrid is a smooth 32×32 map with a sharp feature, like an attention alignment map.
func sampleGrid() heatmap.Grid {
	g := heatmap.Grid{W: 32, H: 32, Values: make([]float32, 32*32)}
	for y := range g.H {
		for x := range g.W {
			fx, fy := float64(x)/31, float64(y)/31
			v := 0.5 + 0.3*math.Sin(6*fx)*math.Cos(5*fy) + 0.2*math.Exp(-((fx-0.7)*(fx-0.7)+(fy-0.3)*(fy-0.3))*40)
			g.Values[y*g.W+x] = float32(v)
		}
	}
	return g
}

func loadImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open photo: %w (pass -photo FILE)", err)
	}
	defer f.Close()
	m, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return m, nil
}

func writePNG(path string, m image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

func toRGBA(m image.Image) *image.RGBA {
	b := m.Bounds()
	r := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(r, r.Rect, m, b.Min, draw.Src)
	return r
}

// psnr compares RGB over the reference's area; pixels the decoder did not produce count
// as black, so a truncated output is punished rather than ignored.
func psnr(ref *image.RGBA, m image.Image) float64 {
	got := toRGBA(m)
	var se float64
	n := 0
	for y := range ref.Rect.Dy() {
		for x := range ref.Rect.Dx() {
			a := ref.Pix[ref.PixOffset(x, y):]
			var b []uint8
			if image.Pt(x, y).In(got.Rect) {
				b = got.Pix[got.PixOffset(x, y):]
			} else {
				b = []uint8{0, 0, 0, 0}
			}
			for c := range 3 {
				d := float64(a[c]) - float64(b[c])
				se += d * d
			}
			n += 3
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}
