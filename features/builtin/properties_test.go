package builtin

import (
	"context"
	"fmt"
	"image"
	"math"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/aas"
	"github.com/diffsim/diffsim/features/imagefile"

	"golang.org/x/image/draw"
)

// These tests check what AAS promises on the built-in model, on the real sample photographs,
// and assert the figures the README quotes: each to the decimals it is printed with (half a
// unit of the last digit, plus 2e-5 for the runtime's float32 arithmetic). The model is
// deterministic (seeded noise, no learned weights), so a figure that moves means the model or
// the maths changed: update the README with the new value, do not widen the tolerance.

// near checks a quoted figure: got must round to want at the given decimals.
func near(t *testing.T, what string, got, want float64, decimals int) {
	t.Helper()
	tol := 0.5*math.Pow(10, -float64(decimals)) + 2e-5
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.6f; the README says %.*f (tolerance ±%.5f)", what, got, decimals, want, tol)
	}
}

const testSize = 256

type testModel struct {
	*Model
	att aas.Attention
}

func openTestModel(t testing.TB) testModel {
	t.Helper()
	rt := enginetest.Runtime(t)
	m, err := Open(rt, testSize)
	if err != nil {
		rt.Close()
		t.Fatal(err)
	}
	att := aas.NewRuntimeAttention(rt)
	t.Cleanup(func() { att.Close(); m.Close(); rt.Close() })
	return testModel{m, att}
}

func sample(t testing.TB, name string) image.Image {
	t.Helper()
	img, _, err := imagefile.Load(context.Background(), filepath.Join("..", "..", "testdata", "samples", name), imagefile.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func crop(img image.Image, r image.Rectangle) image.Image {
	dst := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Copy(dst, image.Point{}, img, r, draw.Src, nil)
	return dst
}

func mirror(img image.Image) image.Image {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			dst.Set(b.Dx()-1-x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return dst
}

// compareAll extracts a and b at t in one batch and compares them at every layer.
func compareAll(t testing.TB, m testModel, a, b image.Image, ts int) []aas.Comparison {
	t.Helper()
	ex, err := m.Extract(context.Background(), []image.Image{a, b}, ts, 2334)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]aas.Comparison, len(ex[0].Layers))
	for i := range out {
		out[i], err = aas.Compare(context.Background(), m.att, ex[0].Layers[i], ex[1].Layers[i])
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestSelfScoreIsOne(t *testing.T) {
	m := openTestModel(t)
	img := sample(t, "astronaut.png")
	for _, ts := range []int{0, 101, 401, 999} {
		for li, c := range compareAll(t, m, img, img, ts) {
			if math.Abs(c.Score()-1) > 1e-6 {
				t.Errorf("t=%d layer %d: score(A, A) = %.9f, want 1", ts, li, c.Score())
			}
		}
	}
}

func TestShiftedCopyAASBeatsAlignedCosine(t *testing.T) {
	m := openTestModel(t)
	img := sample(t, "astronaut.png") // 512×512: working size 256 halves it
	for li, lv := range Levels {
		patch := 512 / lv.Grid   // patch size in source pixels
		shift := max(1, patch/3) // a third of a patch
		a := crop(img, image.Rect(0, 0, 512-patch, 512-patch))
		b := crop(img, image.Rect(shift, shift, 512-patch+shift, 512-patch+shift))
		c := compareAll(t, m, a, b, DefaultT)[li]
		t.Logf("%s: shift %d px: AAS %.6f, aligned cosine %.6f", lv.Name, shift, c.Score(), c.FeatureCosine)
		if c.Score() <= c.FeatureCosine {
			t.Errorf("%s: AAS %.4f is not above the pixel-aligned cosine %.4f for a shifted copy", lv.Name, c.Score(), c.FeatureCosine)
		}
		if lv.Name == "medium" {
			near(t, "medium, shifted copy: AAS", c.Score(), 0.9997, 4)
			near(t, "medium, shifted copy: aligned cosine", c.FeatureCosine, 0.9706, 4)
		}
	}
}

func TestSameTextureScoresAboveDifferentTexture(t *testing.T) {
	m := openTestModel(t)
	left := func(name string) image.Image { return crop(sample(t, name), image.Rect(0, 0, 256, 512)) }
	right := func(name string) image.Image { return crop(sample(t, name), image.Rect(256, 0, 512, 512)) }
	score := func(a, b image.Image) float64 { return compareAll(t, m, a, b, DefaultT)[DefaultLayer].Score() }
	grassGrass := score(left("grass.png"), right("grass.png"))
	gravelGravel := score(left("gravel.png"), right("gravel.png"))
	brickBrick := score(left("brick.png"), right("brick.png"))
	grassGravel := score(left("grass.png"), right("gravel.png"))
	grassBrick := score(left("grass.png"), right("brick.png"))
	gravelBrick := score(left("gravel.png"), right("brick.png"))
	t.Logf("same: grass %.6f gravel %.6f brick %.6f; different: grass/gravel %.6f grass/brick %.6f gravel/brick %.6f",
		grassGrass, gravelGravel, brickBrick, grassGravel, grassBrick, gravelBrick)
	// Every texture: its two crops score above each pair of it with another texture.
	for _, tc := range []struct {
		texture string
		same    float64
		diff    []float64
	}{
		{"grass", grassGrass, []float64{grassGravel, grassBrick}},
		{"gravel", gravelGravel, []float64{grassGravel, gravelBrick}},
		{"brick", brickBrick, []float64{grassBrick, gravelBrick}},
	} {
		for _, diff := range tc.diff {
			if tc.same <= diff {
				t.Errorf("%s/%s (%.4f) does not score above a pair with another texture (%.4f)", tc.texture, tc.texture, tc.same, diff)
			}
		}
	}
	for _, f := range []struct {
		what      string
		got, want float64
	}{
		{"grass/grass", grassGrass, 0.9994},
		{"gravel/gravel", gravelGravel, 0.9999},
		{"brick/brick", brickBrick, 0.9972},
		{"grass/gravel", grassGravel, 0.9968},
		{"grass/brick", grassBrick, 0.9817},
		{"gravel/brick", gravelBrick, 0.9714},
	} {
		near(t, f.what, f.got, f.want, 4)
	}
}

func TestMirrorScoresAboveUnrelatedPhoto(t *testing.T) {
	m := openTestModel(t)
	for _, pair := range [][2]string{{"chelsea.png", "rocket.jpg"}, {"coffee.png", "astronaut.png"}, {"astronaut.png", "hubble_deep_field.jpg"}} {
		img, other := sample(t, pair[0]), sample(t, pair[1])
		mir := compareAll(t, m, img, mirror(img), DefaultT)[DefaultLayer].Score()
		unrel := compareAll(t, m, img, other, DefaultT)[DefaultLayer].Score()
		t.Logf("%s: mirror %.4f, against %s %.4f", pair[0], mir, pair[1], unrel)
		if mir <= unrel {
			t.Errorf("%s: its mirror (%.4f) does not score above %s (%.4f)", pair[0], mir, pair[1], unrel)
		}
	}
}

func TestSpreadShrinksWithNoise(t *testing.T) {
	m := openTestModel(t)
	names := []string{"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "grass.png", "brick.png"}
	imgs := make([]image.Image, len(names))
	for i, n := range names {
		imgs[i] = sample(t, n)
	}
	spread := func(ts int) float64 {
		ex, err := m.Extract(context.Background(), imgs, ts, 2334)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := range imgs {
			for j := i + 1; j < len(imgs); j++ {
				c, err := aas.Compare(context.Background(), m.att, ex[i].Layers[DefaultLayer], ex[j].Layers[DefaultLayer])
				if err != nil {
					t.Fatal(err)
				}
				lo, hi = min(lo, c.Score()), max(hi, c.Score())
			}
		}
		return hi - lo
	}
	prev := math.Inf(1)
	for _, tc := range []struct {
		t        int
		want     float64
		decimals int
	}{{0, 0.60, 2}, {300, 0.03, 2}, {600, 0.0069, 4}, {999, 0.0002, 4}} {
		s := spread(tc.t)
		t.Logf("t=%d: spread of scores over %d pairs %.6f", tc.t, len(imgs)*(len(imgs)-1)/2, s)
		if s >= prev {
			t.Errorf("t=%d: spread %.4f did not shrink from %.4f", tc.t, s, prev)
		}
		near(t, fmt.Sprintf("spread at t=%d", tc.t), s, tc.want, tc.decimals)
		prev = s
	}
}
