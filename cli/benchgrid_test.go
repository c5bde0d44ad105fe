package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/session/bench"
)

// styleContentDataset writes the grid layout: styles × contents, 64 px, procedural. A style is
// a palette and a stripe texture; a content is a shape (a polygon with 3 + c sides).
func styleContentDataset(t testing.TB, styles, contents int) string {
	t.Helper()
	dir := t.TempDir()
	for s := range styles {
		for c := range contents {
			img := image.NewRGBA(image.Rect(0, 0, 64, 64))
			fg := color.RGBA{uint8(60 + 180*s/styles), uint8(200 - 150*s/styles), uint8(40 + 90*(s%2)), 255}
			bg := color.RGBA{fg.B / 2, fg.R / 3, fg.G / 2, 255}
			sides := 3 + c
			for y := range 64 {
				for x := range 64 {
					dx, dy := float64(x)-32, float64(y)-32
					seg := 2 * math.Pi / float64(sides)
					th := math.Atan2(dy, dx) + 10*math.Pi
					edge := 22 * math.Cos(seg/2) / math.Cos(math.Mod(th, seg)-seg/2)
					stripe := math.Sin(float64(x*(s+1))*0.5+float64(y)*0.3) > 0
					col := bg
					if math.Hypot(dx, dy) < edge {
						col = fg
					}
					if stripe {
						col.R, col.G = col.R/4*3, col.G/4*3
					}
					img.SetRGBA(x, y, col)
				}
			}
			writePNG(t, filepath.Join(dir, fmt.Sprintf("style%d", s), fmt.Sprintf("shape%d.png", c)), img)
		}
	}
	return dir
}

// cellFile derives from a grid results file the results file a single-cell run at layer li,
// timestep ti and metric mi writes.
func cellFile(t *testing.T, path string, li, ti, mi int) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := bench.ReadGridFile(path, func(g bench.GridSettings, l bench.GridLine) error {
		if l.T == g.T[ti] {
			line, err := json.Marshal(l.Decision(g, li, mi))
			b.Write(append(line, '\n'))
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestBenchGridEqualsSingleCells runs a grid on the built-in model and, for every cell, today's
// single-cell bench at that layer, t and metric: the cell's decisions are the same, byte for
// byte, unreadable image included.
func TestBenchGridEqualsSingleCells(t *testing.T) {
	dir := tripletDataset(t, "grass.png", "gravel.png", "brick.png")
	if err := os.WriteFile(filepath.Join(dir, "grass", "broken.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	grid := filepath.Join(tmp, "grid.jsonl")
	code, stdout, stderr := runCmd(t, "bench", "triplet", dir, "--layers", "all", "--t", "50,300", "--metric", "aas,mse",
		"--size", "64", "--max", "24", "--out", grid, "--no-server")
	if code != 0 {
		t.Fatalf("grid: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "images through the network in") || !strings.Contains(stderr, "12 single-cell runs") {
		t.Errorf("the grid does not say what it cost: %s", stderr)
	}
	if !strings.Contains(stdout, "all · AAS") || !strings.Contains(stdout, "coarse.attn") || !strings.Contains(stdout, "best: ") {
		t.Errorf("grid report:\n%s", stdout)
	}
	layers := []string{"fine", "medium", "coarse"}
	ts := []string{"50", "300"}
	metrics := []string{"aas", "mse"}
	skipped := false
	for li, l := range layers {
		for ti, tt := range ts {
			for mi, m := range metrics {
				single := filepath.Join(tmp, fmt.Sprintf("%s-%s-%s.jsonl", l, tt, m))
				code, _, stderr := runCmd(t, "bench", "triplet", dir, "--layer", l, "--t", tt, "--metric", m,
					"--size", "64", "--max", "24", "--out", single, "--no-server", "--quiet")
				if code != 0 {
					t.Fatalf("single cell %s t=%s %s: exit %d: %s", l, tt, m, code, stderr)
				}
				want, _ := os.ReadFile(single)
				if got := cellFile(t, grid, li, ti, mi); !bytes.Equal(got, want) {
					t.Fatalf("cell %s t=%s %s differs from the single-cell run:\n got %s\nwant %s", l, tt, m, got, want)
				}
				skipped = skipped || bytes.Contains(want, []byte(`"skipped"`))
			}
		}
	}
	if !skipped {
		t.Error("no decision was skipped: the broken image was not drawn, and the test checks less than it says")
	}
}

func TestBenchGridLayoutReportAndShards(t *testing.T) {
	dir := styleContentDataset(t, 3, 3)
	tmp := t.TempDir()
	single := filepath.Join(tmp, "single.jsonl")
	args := []string{"bench", "grid", dir, "--t", "50,500", "--layers", "fine,coarse", "--size", "64", "--quiet", "--no-server"}
	code, text, stderr := runCmd(t, append(args, "--out", single)...)
	if code != 0 {
		t.Fatalf("grid layout: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"style · AAS · 18 decisions", "content · AAS · 18 decisions", "style − content · AAS", "fine.attn", "t=500 (step 501)"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	// shards, by index and through a folder, merge into the single run's file
	res := filepath.Join(tmp, "results") + "/"
	for i := range 3 {
		if code, _, stderr := runCmd(t, append(args, "--out", res, "--shard", fmt.Sprintf("%d/3", i))...); code != 0 {
			t.Fatalf("shard %d: exit %d: %s", i, code, stderr)
		}
	}
	code, status, _ := runCmd(t, "bench", "status", res)
	if code != 0 || !strings.Contains(status, "72 of 72 decisions × timesteps") || strings.Count(status, "done\n") != 3 {
		t.Errorf("status: exit %d\n%s", code, status)
	}
	merged := filepath.Join(tmp, "merged.jsonl")
	code, mergedText, stderr := runCmd(t, "bench", "merge", res, "--out", merged)
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	want, _ := os.ReadFile(single)
	if got, _ := os.ReadFile(merged); !bytes.Equal(got, want) {
		t.Error("merged grid shards differ from the single run")
	}
	if mergedText != text {
		t.Errorf("merge's report differs from the run's:\n%s\nrun:\n%s", mergedText, text)
	}

	// report: text (from the file and from the folder), JSON, CSV, PNG
	code, again, _ := runCmd(t, "bench", "report", single)
	if code != 0 || again != text {
		t.Errorf("report of the results file differs from the run's:\n%s", again)
	}
	code, fromDir, _ := runCmd(t, "bench", "report", res)
	if code != 0 || fromDir != text {
		t.Errorf("report of the results folder differs from the run's:\n%s", fromDir)
	}
	code, js, _ := runCmd(t, "bench", "report", single, "--json")
	lines := strings.Split(strings.TrimSpace(js), "\n")
	if code != 0 || len(lines) != 2*2*2 {
		t.Fatalf("report --json: exit %d, %d lines", code, len(lines))
	}
	sets := map[string]int{}
	for _, l := range lines {
		var c map[string]any
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"set", "layer", "t", "step", "metric", "accuracy", "ci_low", "ci_high", "n"} {
			if _, ok := c[k]; !ok {
				t.Errorf("record lacks %q: %s", k, l)
			}
		}
		sets[c["set"].(string)]++
		if c["n"].(float64) != 18 {
			t.Errorf("cell of %v decisions, want 18: %s", c["n"], l)
		}
	}
	if sets["style"] != 4 || sets["content"] != 4 {
		t.Errorf("sets %v, want 4 style and 4 content cells", sets)
	}
	code, csvText, _ := runCmd(t, "bench", "report", single, "--csv")
	rows, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if code != 0 || err != nil || len(rows) != 9 || rows[0][0] != "set" {
		t.Errorf("report --csv: exit %d, %d rows, %v", code, len(rows), err)
	}
	pngPath := filepath.Join(tmp, "grid.png")
	if code, _, stderr := runCmd(t, "bench", "report", single, "--png", pngPath, "--quiet"); code != 0 {
		t.Fatalf("report --png: exit %d: %s", code, stderr)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 1000 || img.Bounds().Dy() < 300 {
		t.Errorf("report PNG: %v, %v", img.Bounds(), err)
	}
}

func TestBenchGridUsage(t *testing.T) {
	dir := styleContentDataset(t, 2, 2)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--layer", "fine", "--layers", "all"}, "not both"},
		{[]string{"--metric", "aas,l2"}, `--metric "l2"`},
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--t", "50,1000"}, "1000 is outside 0..999"},
		{[]string{"--t", "50", "--step", "900"}, "not both"},
		{[]string{"--layers", "fine,nope"}, "no layer"},
	} {
		code, _, stderr := runCmd(t, append([]string{"bench", "grid", dir, "--size", "64", "--no-server"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.says) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.says)
		}
	}
	if code, _, stderr := runCmd(t, "bench", "report", filepath.Join(dir, "style0", "shape0.png")); code != 2 || !strings.Contains(stderr, "not a diffsim bench decision") {
		t.Errorf("report of an image: exit %d, %q", code, stderr)
	}
}

// A grid through a running server makes the same results file and report, byte for byte.
func TestServedGridEqualsLocal(t *testing.T) {
	enginetest.Runtime(t)
	startTestServer(t)
	dir := styleContentDataset(t, 3, 3)
	tmp := t.TempDir()
	outs, reports := map[string]string{}, map[string]string{}
	for _, mode := range []string{"local", "served"} {
		outs[mode] = filepath.Join(tmp, mode+".jsonl")
		args := []string{"bench", "grid", dir, "--t", "50,500", "--layers", "all", "--metric", "all", "--size", "64", "--out", outs[mode]}
		if mode == "local" {
			args = append(args, "--no-server")
		}
		code, stdout, stderr := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, code, stderr)
		}
		if mode == "served" && !strings.Contains(stderr, "on the server") {
			t.Errorf("the served run does not say the server computed: %s", stderr)
		}
		reports[mode] = stdout
	}
	local, _ := os.ReadFile(outs["local"])
	served, _ := os.ReadFile(outs["served"])
	if !bytes.Equal(local, served) {
		t.Error("served grid results differ from local ones")
	}
	if reports["local"] != reports["served"] {
		t.Errorf("served report differs:\n%s\nlocal:\n%s", reports["served"], reports["local"])
	}
}

func TestExploreResultsChecks(t *testing.T) {
	dir := styleContentDataset(t, 2, 2)
	res := filepath.Join(t.TempDir(), "grid.jsonl")
	if code, _, stderr := runCmd(t, "bench", "grid", dir, "--size", "64", "--t", "50", "--out", res, "--quiet", "--no-server"); code != 0 {
		t.Fatalf("grid: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		// the images are not beside the results nor here: the data folder is asked for
		{[]string{"explore", "--results", res}, "give the benchmark's folder"},
		{[]string{"explore", "--results", res, t.TempDir()}, "the first decision's reference"},
		{[]string{"explore", "--results", res, dir, "extra"}, "at most the benchmark's folder"},
		{[]string{"explore", "--results", filepath.Join(dir, "style0", "shape0.png"), dir}, "not a diffsim bench decision"},
		// all is well but for the terminal: tests have none
		{[]string{"explore", "--results", res, dir}, "needs a terminal"},
		{[]string{"--results", res, dir}, "needs a terminal"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.says) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.says)
		}
	}
}
