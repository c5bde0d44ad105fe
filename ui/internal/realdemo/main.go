// Command realdemo runs the explorer over a real session (the built-in model by default),
// for screenshots until the diffsim command wires the explorer in.
//
//	realdemo [-model builtin] [-size 256] A B
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/ui"
	"github.com/diffsim/diffsim/ui/termgfx"
)

func main() { os.Exit(run()) }

func run() int {
	model := flag.String("model", "builtin", "model name, folder or file")
	size := flag.Int("size", 0, "working size in pixels (0: the model's)")
	graphics := termgfx.Auto
	flag.Var(&graphics, "graphics", "auto|sixel|kitty|halfblock|none")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: realdemo [flags] IMAGE_A IMAGE_B")
		return 2
	}
	ctx := context.Background()
	report, progress := ui.NewProgress()
	s, err := session.Open(ctx, session.Options{Model: *model, Size: *size, OnProgress: report})
	if err != nil {
		fmt.Fprintln(os.Stderr, "realdemo:", err)
		return 1
	}
	defer s.Close()
	opts := ui.DefaultOptions()
	opts.Graphics = graphics
	opts.Progress = progress
	if err := ui.Run(ctx, s, flag.Arg(0), flag.Arg(1), opts); err != nil {
		fmt.Fprintln(os.Stderr, "realdemo:", err)
		return 1
	}
	return 0
}
