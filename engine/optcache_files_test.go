package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// seedEntries writes cache entries of the given sizes, the first used longest ago.
func seedEntries(t *testing.T, dir string, sizes ...int) []string {
	t.Helper()
	var keys []string
	for i, n := range sizes {
		key := string(rune('a'+i)) + "entry"
		p := filepath.Join(dir, key)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, weightsFile), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := writeMeta(p, GraphCacheEntry{Key: key}); err != nil {
			t.Fatal(err)
		}
		used := time.Now().Add(time.Duration(i-len(sizes)) * time.Hour)
		if err := os.Chtimes(filepath.Join(p, metaFile), used, used); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

func TestTrimGraphCacheDropsLeastRecentlyUsed(t *testing.T) {
	cases := []struct {
		name  string
		sizes []int
		max   int64
		kept  int // how many of the most recently used entries remain
	}{
		{"under the bound", []int{1000, 1000}, 1 << 20, 2},
		{"one too many", []int{1000, 1000, 1000}, 2500, 2},
		{"only the newest fits", []int{1000, 1000, 1000}, 1500, 1},
		{"nothing fits", []int{1000}, 10, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			keys := seedEntries(t, dir, tc.sizes...)
			if _, err := TrimGraphCache(dir, tc.max); err != nil {
				t.Fatal(err)
			}
			for i, k := range keys {
				_, err := os.Stat(filepath.Join(dir, k))
				wantKept := i >= len(keys)-tc.kept
				if (err == nil) != wantKept {
					t.Errorf("entry %d (%s): present=%v, want %v", i, k, err == nil, wantKept)
				}
			}
		})
	}
}

func TestCleanGraphCache(t *testing.T) {
	dir := t.TempDir()
	seedEntries(t, dir, 100, 200)
	if err := os.MkdirAll(filepath.Join(dir, ".write-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	freed, err := CleanGraphCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if freed < 300 {
		t.Errorf("freed %d bytes, want at least the 300 bytes of weights", freed)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("%d things left after clean", len(left))
	}
	if n, err := CleanGraphCache(filepath.Join(dir, "missing")); n != 0 || err != nil {
		t.Errorf("cleaning a missing cache: %d, %v; want 0, nil", n, err)
	}
}
