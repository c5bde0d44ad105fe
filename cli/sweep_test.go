package cli

import (
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
)

var (
	sampleA = filepath.Join("..", "testdata", "samples", "grass.png")
	sampleB = filepath.Join("..", "testdata", "samples", "gravel.png")
)

func TestSweepJSONEqualsScore(t *testing.T) {
	for _, metric := range []string{"aas", "mse"} {
		code, stdout, stderr := runCmd(t, "sweep", sampleA, sampleB, "--t", "100,400", "--size", "64", "--metric", metric, "--json")
		if code != 0 {
			t.Fatalf("sweep: exit %d: %s", code, stderr)
		}
		var sw api.Sweep
		if err := json.Unmarshal([]byte(stdout), &sw); err != nil {
			t.Fatal(err)
		}
		if len(sw.Layers) != 3 || len(sw.Scores) != 3*2 || len(sw.Timesteps) != 2 {
			t.Fatalf("sweep --json: %d layers, %d scores, timesteps %v; want 3, 6, [100 400]", len(sw.Layers), len(sw.Scores), sw.Timesteps)
		}
		for _, sc := range sw.Scores {
			code, stdout, stderr := runCmd(t, "score", sampleA, sampleB, "--t", strconv.Itoa(*sc.T), "--layer", strconv.Itoa(sc.LayerIndex), "--size", "64", "--metric", metric, "--json")
			if code != 0 {
				t.Fatalf("score: exit %d: %s", code, stderr)
			}
			var one api.Record
			if err := json.Unmarshal([]byte(stdout), &one); err != nil {
				t.Fatal(err)
			}
			// the same record, image paths and all
			if !reflect.DeepEqual(one, sc) {
				t.Errorf("%s layer %d t=%d:\nsweep %+v\nscore %+v", metric, sc.LayerIndex, *sc.T, sc, one)
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
		{"--t", "0:2000:100"}, {"--t", "x"}, {"--t", "-5"}, {"--t", "100", "--step", "900"}, {"--step", "0"}, {"--json", "--csv"}, {"--png", "out.jpg"}, {"--prompt", "x"},
	} {
		code, _, stderr := runCmd(t, append([]string{"sweep", sampleA, sampleB, "--size", "64"}, bad...)...)
		if code != exitUsage {
			t.Errorf("sweep %v: exit %d (%s), want 2", bad, code, stderr)
		}
	}
}
