package heatmap

import (
	"flag"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestHalfBlockGolden(t *testing.T) {
	heat := Render(testGrid(8), Viridis(), 0, 1, 16, 8)
	nanGrid := Grid{W: 2, H: 2, Values: []float32{0, nan, 1, nan}}
	for _, tt := range []struct {
		file string
		m    image.Image
		mode HalfBlockMode
	}{
		{"halfblock-truecolor.golden", heat, TrueColor},
		{"halfblock-ansi256.golden", heat, ANSI256},
		{"halfblock-nan.golden", RenderBlocks(nanGrid, Coolwarm(), 0, 1, 4, 4), TrueColor},
	} {
		t.Run(tt.file, func(t *testing.T) {
			golden(t, tt.file, HalfBlock(tt.m, tt.m.Bounds().Dx(), tt.m.Bounds().Dy()/2, tt.mode))
		})
	}
}

func TestHalfBlockShape(t *testing.T) {
	m := image.NewRGBA(image.Rect(0, 0, 2, 2))
	m.Set(0, 0, color.RGBA{255, 0, 0, 255})
	m.Set(0, 1, color.RGBA{0, 0, 255, 255})
	m.Set(1, 1, color.RGBA{0, 255, 0, 255})
	got := HalfBlock(m, 2, 1, TrueColor)
	want := "\x1b[38;2;255;0;0;48;2;0;0;255m▀\x1b[38;2;0;255;0;49m▄\x1b[0m"
	if got != want {
		t.Errorf("HalfBlock = %q, want %q", got, want)
	}
	// resampled to the cell grid: 3 lines, each ending in a reset
	s := HalfBlock(Render(testGrid(8), Viridis(), 0, 1, 100, 100), 10, 3, ANSI256)
	lines := strings.Split(s, "\n")
	if len(lines) != 3 || strings.Count(lines[0], "▀") != 10 || !strings.HasSuffix(lines[2], "\x1b[0m") {
		t.Errorf("10×3 half-blocks: %q", s)
	}
	if HalfBlock(m, 0, 3, TrueColor) != "" {
		t.Error("zero columns should give no output")
	}
}

func TestANSI256(t *testing.T) {
	for _, tt := range []struct {
		r, g, b uint8
		want    int
	}{
		{0, 0, 0, 16}, {255, 255, 255, 231}, {255, 0, 0, 196}, {128, 128, 128, 244}, {95, 135, 175, 67},
	} {
		if got := ansi256(tt.r, tt.g, tt.b); got != tt.want {
			t.Errorf("ansi256(%d,%d,%d) = %d, want %d", tt.r, tt.g, tt.b, got, tt.want)
		}
	}
}
