package diffusion

import (
	"os"
	"testing"
)

// TestMain keeps the latents and text embeddings the tests compute (memo.go) in a folder of
// their own, never in the user's cache.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "diffsim-diffusion-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("DIFFSIM_MEMO", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
