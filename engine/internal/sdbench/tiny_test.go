//go:build cgo

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
)

// TestPruneOnMiniatures runs sdbench's prune step on the miniature U-Net and a small ViT:
// the full-size runs are bench-prune.sh's.
func TestPruneOnMiniatures(t *testing.T) {
	enginetest.Runtime(t)
	dir := t.TempDir()
	if err := testgraphs.WriteTinyDiffusers(dir); err != nil {
		t.Fatal(err)
	}
	unet := filepath.Join(dir, "unet", "model.onnx")
	for _, layer := range []string{"full", "Down0", "Mid", "Up2"} {
		if err := prune(unet, layer, 128); err != nil {
			t.Fatalf("%s: %v", layer, err)
		}
	}
	if _, err := os.Stat(unet); err != nil {
		t.Fatal(err)
	}
}
