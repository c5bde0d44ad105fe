package batch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseInts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		bad  bool
	}{
		{in: "100,400", want: []int{100, 400}},
		{in: "400, 100,100", want: []int{100, 400}},
		{in: "0:999:100", want: []int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900}},
		{in: "0:900:100,999", want: []int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999}},
		{in: "5:7", want: []int{5, 6, 7}},
		{in: "1000", bad: true},
		{in: "-1", bad: true},
		{in: "9:1", bad: true},
		{in: "0:10:0", bad: true},
		{in: "a", bad: true},
		{in: "1:2:3:4", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseInts(tc.in, "--t", 0, 999)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseInts(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseInts(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseInts(f *testing.F) {
	for _, s := range []string{"100,400", "0:999:100", "1:2:3:4", ",,", "0:999:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseInts(s, "--t", 0, 999)
		if err != nil {
			return
		}
		if len(got) == 0 || !slices.IsSorted(got) || got[0] < 0 || got[len(got)-1] > 999 {
			t.Fatalf("ParseInts(%q) = %v", s, got)
		}
	})
}

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
