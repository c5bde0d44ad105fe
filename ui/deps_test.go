package ui

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoRuntimeLinked: the wire package and the explorer link no runtime. `go list -deps` of
// api and ui names neither onnxruntime_go nor protobuf, nor the engine or the session that
// hold them, so what draws and what talks to a server builds without cgo. A view that needs
// something from session/… takes it from a leaf (as the results view's image listing comes
// from features/imagefile).
func TestNoRuntimeLinked(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the go command is not on PATH")
		}
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/diffsim/diffsim/api", "github.com/diffsim/diffsim/ui").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "onnxruntime") || strings.Contains(p, "protobuf") ||
			strings.HasPrefix(p, "github.com/diffsim/diffsim/engine") || p == "github.com/diffsim/diffsim/session" {
			t.Errorf("api or ui links %s", p)
		}
	}
}
