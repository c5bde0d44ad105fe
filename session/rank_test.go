package session

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
)

func TestImageFiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a.png", "sub/b.JPG", "sub/deep/c.webp", "notes.txt", ".hidden/d.png", "sub/.e.png"} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, _, err := imagefile.ImageFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.png"), filepath.Join(dir, "sub/b.JPG"), filepath.Join(dir, "sub/deep/c.webp")}
	if !slices.Equal(files, want) {
		t.Errorf("ImageFiles = %v, want %v", files, want)
	}
	if _, _, err := imagefile.ImageFiles(filepath.Join(dir, "missing")); err == nil {
		t.Error("ImageFiles on a missing folder: no error")
	}
}

// TestRank: the ranking is ordered by the metric's direction, unreadable files are skipped
// with their path, and N images cost N + 1 feature extractions (the query once) in
// (N + 2) / 2 batched runs.
func TestRank(t *testing.T) {
	s, cm := countingSession(t)
	dir := t.TempDir()
	samples := filepath.Join("..", "testdata", "samples")
	for _, name := range []string{"grass.png", "gravel.png", "brick.png"} {
		data, err := os.ReadFile(filepath.Join(samples, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.png"), []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, _, err := imagefile.ImageFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	query := load(t, s, "chelsea.png")
	firstRun := 0
	for _, m := range []api.Metric{api.AAS, api.MSE} {
		done := 0
		ranked, skipped, err := s.Rank(t.Context(), query, files, 0, 101, m, func() { done++ })
		if err != nil {
			t.Fatal(err)
		}
		if len(ranked) != 3 || len(skipped) != 1 || filepath.Base(skipped[0].Path) != "broken.png" || done != 4 {
			t.Fatalf("%s: %d ranked, skipped %v, %d done; want 3, broken.png, 4", m, len(ranked), skipped, done)
		}
		if ranked[0].Rank != 1 || ranked[0].ImageA != query.Path {
			t.Errorf("%s: first %+v, want rank 1 against the query", m, ranked[0])
		}
		for i := 1; i < len(ranked); i++ {
			if ranked[i].Rank != i+1 || (ranked[i].Score > ranked[i-1].Score) != !m.HigherIsMoreSimilar() && ranked[i].Score != ranked[i-1].Score {
				t.Errorf("%s: out of order: %+v then %+v", m, ranked[i-1], ranked[i])
			}
		}
		if firstRun == 0 {
			firstRun = cm.images
		}
	}
	// the query and three images once each, two to a run; the second metric reuses the cache
	if firstRun != 4 || cm.images != 4 || cm.runs != 2 || s.Stats().Forwards != 2 {
		t.Errorf("%d images run through the network for the first ranking, %d after the second, in %d runs; want 4, 4, 2", firstRun, cm.images, cm.runs)
	}
}
