package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
)

// countingModel counts the images a model runs, to check what the session batches.
type countingModel struct {
	features.Model
	images, runs int
}

func (m *countingModel) Extract(ctx context.Context, imgs []image.Image, t int, seed int64) ([]features.Extraction, error) {
	m.images += len(imgs)
	m.runs++
	return m.Model.Extract(ctx, imgs, t, seed)
}

// countingSession opens the built-in model at 64 px with a counter around it.
func countingSession(t testing.TB) (*session.Session, *countingModel) {
	t.Helper()
	cm := &countingModel{}
	s, err := session.Open(context.Background(), session.Options{
		Model: "builtin", Size: 64,
		OpenModel: func(ctx context.Context, rt session.Runtime, o session.Options) (features.Model, error) {
			m, err := session.OpenModel(ctx, rt, o)
			cm.Model = m
			return cm, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, cm
}

var (
	sampleA = filepath.Join("testdata", "samples", "grass.png")
	sampleB = filepath.Join("testdata", "samples", "gravel.png")
)

func TestSweepJSONEqualsScore(t *testing.T) {
	for _, metric := range []string{"aas", "mse"} {
		code, stdout, stderr := runCmd(t, "sweep", sampleA, sampleB, "--t", "100,400", "--size", "64", "--metric", metric, "--json")
		if code != 0 {
			t.Fatalf("sweep: exit %d: %s", code, stderr)
		}
		var sw sweepJSON
		if err := json.Unmarshal([]byte(stdout), &sw); err != nil {
			t.Fatal(err)
		}
		if len(sw.Layers) != 3 || len(sw.Scores) != 3*2 || len(sw.Timesteps) != 2 {
			t.Fatalf("sweep --json: %d layers, %d scores, timesteps %v; want 3, 6, [100 400]", len(sw.Layers), len(sw.Scores), sw.Timesteps)
		}
		for _, sc := range sw.Scores {
			code, stdout, stderr := runCmd(t, "score", sampleA, sampleB, "--t", strconv.Itoa(sc.T), "--layer", strconv.Itoa(sc.LayerIndex), "--size", "64", "--metric", metric, "--json")
			if code != 0 {
				t.Fatalf("score: exit %d: %s", code, stderr)
			}
			var one scoreJSON
			if err := json.Unmarshal([]byte(stdout), &one); err != nil {
				t.Fatal(err)
			}
			if one.Score != sc.Score || one.Layer != sc.Layer || one.T != sc.T || one.Step != sc.Step {
				t.Errorf("%s layer %d t=%d: sweep %v (%s, step %d), score %v (%s, step %d)", metric, sc.LayerIndex, sc.T, sc.Score, sc.Layer, sc.Step, one.Score, one.Layer, one.Step)
			}
		}
	}
}

func TestSweepFormats(t *testing.T) {
	pngPath := filepath.Join(t.TempDir(), "sweep.png")
	code, stdout, stderr := runCmd(t, "sweep", sampleA, sampleB, "--size", "64", "--csv", "--png", pngPath, "--step", "900,500")
	if code != 0 {
		t.Fatalf("sweep --csv --png: exit %d: %s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+3*2 || rows[0][3] != "t" || rows[1][3] != "101" || rows[2][3] != "501" || rows[1][4] != "900" {
		t.Errorf("--csv with --step 900,500:\n%s", stdout)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("--png wrote no PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("heatmap is %v: too small to read", b)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(pngPath), ".*tmp*")); len(m) > 0 {
		t.Errorf("temporary files left behind: %v", m)
	}

	// the default table: a header of timesteps, one row per layer
	code, stdout, _ = runCmd(t, "sweep", sampleA, sampleB, "--size", "64", "--quiet")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 1+1+3+1 || !strings.Contains(lines[1], "t=0") || !strings.Contains(lines[1], "t=900") || strings.Contains(lines[1], "t=999") {
		t.Errorf("default table (exit %d):\n%s", code, stdout)
	}

	for _, bad := range [][]string{
		{"--t", "0:2000:100"}, {"--t", "x"}, {"--t", "100", "--step", "900"}, {"--step", "0"}, {"--json", "--csv"}, {"--png", "out.jpg"},
	} {
		code, _, stderr := runCmd(t, append([]string{"sweep", sampleA, sampleB, "--size", "64"}, bad...)...)
		if code != exitUsage {
			t.Errorf("sweep %v: exit %d (%s), want 2", bad, code, stderr)
		}
	}
}

// TestSweepForwards: a sweep over L layers and T timesteps runs the network T times, each
// run a batch of the two images.
func TestSweepForwards(t *testing.T) {
	needsRuntime(t)
	s, cm := countingSession(t)
	a, err := s.Load(sampleA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Load(sampleB)
	if err != nil {
		t.Fatal(err)
	}
	ts := []int{0, 250, 500, 750, 999}
	steps := 0
	grid, err := sweepScores(t.Context(), s, a, b, ts, session.AAS, func() { steps++ })
	if err != nil {
		t.Fatal(err)
	}
	layers := len(s.Info().Layers)
	if len(grid) != len(ts) || len(grid[0]) != layers || steps != len(ts) {
		t.Fatalf("grid %d×%d, %d steps; want %d×%d", len(grid), len(grid[0]), steps, len(ts), layers)
	}
	if f := s.Stats().Forwards; f != len(ts) || cm.runs != len(ts) || cm.images != 2*len(ts) {
		t.Errorf("%d layers × %d timesteps: %d forwards, %d runs of %d images; want %d runs of 2 images each", layers, len(ts), f, cm.runs, cm.images, len(ts))
	}
}

func BenchmarkSweep(b *testing.B) {
	s, _ := countingSession(b)
	a, _ := s.Load(sampleA)
	c, _ := s.Load(sampleB)
	ts := []int{100, 400, 700}
	b.ReportAllocs()
	start := s.Stats().Forwards
	for b.Loop() {
		// the session caches features per t: move the grid each loop so every loop runs the network
		if _, err := sweepScores(b.Context(), s, a, c, ts, session.AAS, func() {}); err != nil {
			b.Fatal(err)
		}
		for i := range ts {
			ts[i] = (ts[i] + 1) % 1000
		}
	}
	b.ReportMetric(float64(s.Stats().Forwards-start)/float64(b.N), "forwards/op")
}
