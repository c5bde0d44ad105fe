package synth

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/sheet.png from the generator")

func mustStyles(t *testing.T, n int) []Style {
	t.Helper()
	s, err := Styles(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustContents(t *testing.T, n int) []Content {
	t.Helper()
	c, err := Contents(n)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// meanAbsDiff is the mean absolute difference of two images' RGB channels, in 0…255.
func meanAbsDiff(a, b *image.NRGBA) float64 {
	var sum int
	for i := 0; i < len(a.Pix); i += 4 {
		for k := range 3 {
			d := int(a.Pix[i+k]) - int(b.Pix[i+k])
			sum += max(d, -d)
		}
	}
	return float64(sum) / float64(len(a.Pix)/4*3)
}

func TestSameSeedSameBytes(t *testing.T) {
	o := Options{Styles: 3, Contents: 4, Size: 40, Seed: 7}
	read := func(dir string) map[string][]byte {
		paths, err := Write(context.Background(), dir, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 12 {
			t.Fatalf("wrote %d files, want 3 × 4", len(paths))
		}
		files := map[string][]byte{}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(dir, p)
			files[rel] = b
		}
		return files
	}
	a, b := read(t.TempDir()), read(t.TempDir())
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	if _, ok := a[filepath.Join("stripes-warm", "disc.png")]; !ok {
		t.Errorf("no stripes-warm/disc.png in the grid layout: %v", a)
	}
}

// Two images that differ only in one class, or only in the seed, must differ visibly: the
// mean channel difference is far above what rounding could make.
func TestClassesAndSeedsDiffer(t *testing.T) {
	styles, contents := mustStyles(t, MaxStyles), mustContents(t, MaxContents)
	const size, seed = 48, 3
	c0 := contents[0]
	imgs := make([]*image.NRGBA, len(styles))
	for i, s := range styles {
		imgs[i] = Render(s, c0, size, seed)
	}
	for i := range styles {
		for k := i + 1; k < len(styles); k++ {
			if d := meanAbsDiff(imgs[i], imgs[k]); d < 5 {
				t.Errorf("%s and %s (both %s) differ by only %.2f", styles[i].Name, styles[k].Name, c0.Name, d)
			}
		}
	}
	s0 := styles[0]
	for i := range contents {
		for k := i + 1; k < len(contents); k++ {
			if d := meanAbsDiff(Render(s0, contents[i], size, seed), Render(s0, contents[k], size, seed)); d < 5 {
				t.Errorf("%s and %s (both %s) differ by only %.2f", contents[i].Name, contents[k].Name, s0.Name, d)
			}
		}
	}
	if d := meanAbsDiff(Render(s0, c0, size, 1), Render(s0, c0, size, 2)); d < 5 {
		t.Errorf("seeds 1 and 2 give nearly the same %s %s (difference %.2f)", s0.Name, c0.Name, d)
	}
}

// Styles differ in both texture and palette along any prefix of the order, and every name is
// readable and distinct.
func TestStyleOrder(t *testing.T) {
	all := mustStyles(t, MaxStyles)
	name := regexp.MustCompile(`^[a-z]+-[a-z]+$`)
	seen := map[string]bool{}
	for _, s := range all {
		if !name.MatchString(s.Name) || seen[s.Name] {
			t.Errorf("style name %q: want texture-palette, unique", s.Name)
		}
		seen[s.Name] = true
	}
	first := all[:len(textures)]
	tex, pal := map[string]bool{}, map[string]bool{}
	for _, s := range first {
		tex[s.Texture], pal[s.Palette] = true, true
	}
	if len(tex) != len(first) || len(pal) != len(first) {
		t.Errorf("the first %d styles use %d textures and %d palettes, want all different", len(first), len(tex), len(pal))
	}
}

// The shape stays whole inside the image and covers a sizeable part of it, whatever the seed:
// the content is always there to be seen.
func TestShapeInsideImage(t *testing.T) {
	s := mustStyles(t, 1)[0]
	const size = 64
	for _, c := range mustContents(t, MaxContents) {
		for seed := uint64(0); seed < 40; seed++ {
			j := drawJitter(s, c, seed)
			inside, border := 0, 0
			for py := range size {
				for px := range size {
					x, y := (float64(px)+0.5)/size, (float64(py)+0.5)/size
					if !c.shape.inside(shapeFrame(x, y, j)) {
						continue
					}
					inside++
					if px == 0 || py == 0 || px == size-1 || py == size-1 {
						border++
					}
				}
			}
			if frac := float64(inside) / (size * size); frac < 0.04 || frac > 0.5 || border > 0 {
				t.Errorf("%s, seed %d: the shape covers %.0f%% of the image and touches the border at %d pixels", c.Name, seed, 100*frac, border)
			}
		}
	}
}

func TestOptionsOutOfRange(t *testing.T) {
	for _, o := range []Options{
		{Styles: 0, Contents: 1, Size: 64},
		{Styles: MaxStyles + 1, Contents: 1, Size: 64},
		{Styles: 1, Contents: MaxContents + 1, Size: 64},
		{Styles: 1, Contents: 1, Size: 4},
	} {
		if _, err := Write(context.Background(), t.TempDir(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestWriteStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	paths, err := Write(ctx, t.TempDir(), Options{Styles: 2, Contents: 2, Size: 16, Seed: 1})
	if err == nil || len(paths) != 0 {
		t.Errorf("cancelled Write wrote %d files, error %v", len(paths), err)
	}
}

// The generator's pictures are part of the contract: a benchmark made today must be the one
// made tomorrow, and the toy model's evaluation set is drawn by it. testdata/sheet.png holds
// the eight first styles × every content at 16 px, seed 1; the comparison allows rounding
// differences between CPU architectures (Go may fuse multiply-adds on some), not a change of
// picture. Regenerate with go test ./session/bench/synth -run Golden -update.
func TestGoldenSheet(t *testing.T) {
	const size = 16
	styles, contents := mustStyles(t, len(textures)), mustContents(t, MaxContents)
	sheet := image.NewNRGBA(image.Rect(0, 0, size*len(contents), size*len(styles)))
	for i, s := range styles {
		for k, c := range contents {
			draw.Draw(sheet, image.Rect(k*size, i*size, (k+1)*size, (i+1)*size), Render(s, c, size, 1), image.Point{}, draw.Src)
		}
	}
	path := filepath.Join("testdata", "sheet.png")
	if *update {
		var buf bytes.Buffer
		if err := png.Encode(&buf, sheet); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if want.Bounds() != sheet.Bounds() {
		t.Fatalf("golden sheet is %v, generated %v", want.Bounds(), sheet.Bounds())
	}
	off := 0
	for y := range sheet.Bounds().Dy() {
		for x := range sheet.Bounds().Dx() {
			r, g, b, _ := want.At(x, y).RGBA()
			o := sheet.PixOffset(x, y)
			for k, w := range [3]uint32{r >> 8, g >> 8, b >> 8} {
				if d := int(sheet.Pix[o+k]) - int(w); d > 8 || d < -8 {
					off++
				}
			}
		}
	}
	if limit := len(sheet.Pix) / 4 * 3 / 200; off > limit {
		t.Errorf("%d channel values differ from testdata/sheet.png by more than 8 (allowed %d): the generator's pictures changed; if on purpose, rerun with -update", off, limit)
	}
}

func BenchmarkRender128(b *testing.B) {
	s, c := mustStylesB(b), mustContentsB(b)
	b.ReportAllocs()
	for b.Loop() {
		Render(s, c, 128, 1)
	}
}

func mustStylesB(b *testing.B) Style {
	s, err := Styles(1)
	if err != nil {
		b.Fatal(err)
	}
	return s[0]
}

func mustContentsB(b *testing.B) Content {
	c, err := Contents(1)
	if err != nil {
		b.Fatal(err)
	}
	return c[0]
}
