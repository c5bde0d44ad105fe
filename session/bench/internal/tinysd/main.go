// Command tinysd writes the miniature Stable Diffusion 1.5 pipeline the tests run (a U-Net
// with SD 1.5's block structure at 16×16 latents, so 128 px images; a VAE encoder; a CLIP text
// encoder; no tokenizer) as a diffusers folder, for scripts/bench-grid.sh. Its weights are
// seeded, not learned.
//
//	go run ./session/bench/internal/tinysd DIR
package main

import (
	"fmt"
	"os"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tinysd DIR")
		os.Exit(2)
	}
	if err := testgraphs.WriteTinyDiffusers(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "tinysd:", err)
		os.Exit(1)
	}
}
