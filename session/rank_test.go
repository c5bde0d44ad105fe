package session

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
	files, _, err := ImageFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.png"), filepath.Join(dir, "sub/b.JPG"), filepath.Join(dir, "sub/deep/c.webp")}
	if !slices.Equal(files, want) {
		t.Errorf("ImageFiles = %v, want %v", files, want)
	}
	if _, _, err := ImageFiles(filepath.Join(dir, "missing")); err == nil {
		t.Error("ImageFiles on a missing folder: no error")
	}
}

// TestRank: the ranking is ordered by the metric's direction, an identical copy comes first,
// unreadable files are skipped with their path, and the query costs one extraction.
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
	files, _, err := ImageFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	query := load(t, s, "grass.png")
	firstRun := 0
	for _, m := range []Metric{AAS, MSE} {
		done := 0
		ranked, skipped, err := s.Rank(t.Context(), query, files, 0, 101, m, func() { done++ })
		if err != nil {
			t.Fatal(err)
		}
		if len(ranked) != 3 || len(skipped) != 1 || filepath.Base(skipped[0].Path) != "broken.png" || done != 4 {
			t.Fatalf("%s: %d ranked, skipped %v, %d done; want 3, broken.png, 4", m, len(ranked), skipped, done)
		}
		if filepath.Base(ranked[0].ImageB) != "grass.png" || ranked[0].Rank != 1 || ranked[0].ImageA != query.Path {
			t.Errorf("%s: first %+v, want the query's copy", m, ranked[0])
		}
		for i := 1; i < len(ranked); i++ {
			if ranked[i].Rank != i+1 || (*ranked[i].Score > *ranked[i-1].Score) != !m.HigherIsMoreSimilar() && *ranked[i].Score != *ranked[i-1].Score {
				t.Errorf("%s: out of order: %+v then %+v", m, ranked[i-1], ranked[i])
			}
		}
		if firstRun == 0 {
			firstRun = cm.images
		}
	}
	// the query and three images at most once (the copy of the query shares its features);
	// the second metric reuses the cache
	if firstRun > 4 || cm.images != firstRun {
		t.Errorf("%d images run through the network for the first ranking, %d after the second; want ≤ 4 and no more", firstRun, cm.images)
	}
}
