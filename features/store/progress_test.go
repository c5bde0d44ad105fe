package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProgressBarDrawsOnlyOnATerminal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stderr")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	quiet := NewProgressBar(out) // a regular file is not a terminal
	quiet.Report("config.json", 10, 10)
	if err := quiet.Close(); err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, path); len(b) != 0 {
		t.Fatalf("drew %q on a non-terminal", b)
	}

	loud := &ProgressBar{out: out, on: true}
	loud.Report("onnx/model.onnx", 0, 2048)
	loud.Report("onnx/model.onnx", 2048, 2048)
	loud.Report("config.json", 5, 10)
	if err := loud.Close(); err != nil {
		t.Fatal(err)
	}
	if err := loud.Close(); err != nil {
		t.Fatal(err)
	}
	got := string(readAll(t, path))
	for _, want := range []string{"onnx/model.onnx", "100%", "config.json", "2.0 kB"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar output lacks %q:\n%q", want, got)
		}
	}
}
