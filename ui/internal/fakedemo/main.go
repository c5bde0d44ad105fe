// Command fakedemo runs the explorer against the fake backend, for the end-to-end test
// and screenshots while the real session is being written.
//
//	fakedemo [-delay 300ms] [-graphics halfblock] A B
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/diffsim/diffsim/ui"
	"github.com/diffsim/diffsim/ui/internal/fake"
	"github.com/diffsim/diffsim/ui/termgfx"
)

func main() { os.Exit(run()) }

func run() int {
	delay := flag.Duration("delay", 300*time.Millisecond, "time of one fake network run")
	graphics := termgfx.Auto
	flag.Var(&graphics, "graphics", "auto|sixel|kitty|halfblock|quadrant|none")
	cellW := flag.Int("cellw", 0, "cell width in pixels (0: assume 10)")
	cellH := flag.Int("cellh", 0, "cell height in pixels (0: assume 20)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: fakedemo [flags] IMAGE_A IMAGE_B")
		return 2
	}
	b := fake.New()
	b.Delay = *delay
	opts := ui.DefaultOptions()
	opts.Graphics = graphics
	opts.CellW, opts.CellH = *cellW, *cellH
	if err := ui.Run(context.Background(), b, flag.Arg(0), flag.Arg(1), opts); err != nil {
		fmt.Fprintln(os.Stderr, "fakedemo:", err)
		return 1
	}
	return 0
}
