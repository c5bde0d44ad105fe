package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rankDir writes the variants of a few photos, in nested folders, plus a broken file.
func rankDir(t *testing.T) string {
	dir := t.TempDir()
	for _, p := range []string{"grass.png", "brick.png", "coffee.png"} {
		class := strings.TrimSuffix(p, ".png")
		for i, v := range variants(samplePhoto(t, p)) {
			writePNG(t, filepath.Join(dir, class, "deeper", fmt.Sprintf("v%d.png", i)), v)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.jpg"), []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRank(t *testing.T) {
	dir := rankDir(t)
	query := filepath.Join(t.TempDir(), "query.png")
	writePNG(t, query, samplePhoto(t, "grass.png"))
	code, stdout, stderr := runCmd(t, "rank", query, dir, "-k", "4", "--size", "64", "--t", "50", "--json", "--quiet")
	if code != 0 {
		t.Fatalf("rank: exit %d: %s", code, stderr)
	}
	var r rankJSON
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Images != 12 || len(r.Results) != 4 || len(r.Skipped) != 1 || !strings.HasSuffix(r.Skipped[0].Path, "broken.jpg") {
		t.Fatalf("rank --json: %d images, %d results, skipped %v; want 12, 4, broken.jpg", r.Images, len(r.Results), r.Skipped)
	}
	if !strings.Contains(stderr, "skipped") || !strings.Contains(stderr, "broken.jpg") {
		t.Errorf("the skipped file is not named on stderr: %q", stderr)
	}
	// the query's own variants come first; the unchanged copy is the best
	if !strings.HasSuffix(r.Results[0].ImageB, filepath.Join("grass", "deeper", "v0.png")) || r.Results[0].Score < 0.9999 {
		t.Errorf("best match %+v, want grass/deeper/v0.png at 1", r.Results[0])
	}
	for i, e := range r.Results {
		if e.Rank != i+1 || (i > 0 && e.Score > r.Results[i-1].Score) {
			t.Errorf("results out of order: %+v", r.Results)
		}
	}
	for _, e := range r.Results[:3] {
		if !strings.Contains(e.ImageB, "grass") {
			t.Errorf("top 3 should be grass variants: %+v", r.Results)
		}
	}

	// MSE: lower is more similar, so the lowest comes first; the text output has k lines
	code, stdout, _ = runCmd(t, "rank", query, dir, "-k", "3", "--size", "64", "--t", "50", "--metric", "mse", "--quiet")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 4 || !strings.Contains(lines[1], "0.0000") || !strings.Contains(lines[0], "lower = more similar") {
		t.Errorf("rank --metric mse (exit %d):\n%s", code, stdout)
	}
	// a query inside DIR is not ranked against itself
	code, stdout, _ = runCmd(t, "rank", filepath.Join(dir, "grass", "deeper", "v0.png"), dir, "-k", "0", "--size", "64", "--json", "--quiet")
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil || r.Images != 11 {
		t.Errorf("query inside DIR: exit %d, %d images, want 11", code, r.Images)
	}
	for _, bad := range [][]string{{"rank", query, query}, {"rank", query, filepath.Join(dir, "nope")}, {"rank", filepath.Join(dir, "broken.jpg"), dir}} {
		if code, _, stderr := runCmd(t, append(bad, "--size", "64")...); code != exitUsage {
			t.Errorf("%v: exit %d (%s), want 2", bad, code, stderr)
		}
	}
}
