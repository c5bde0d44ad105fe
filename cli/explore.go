package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/ui"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// explore opens the interactive explorer on a pair of images.
func (a *app) explore(cmd *cobra.Command, imageA, imageB string) error {
	graphics, err := termgfx.ParseProtocol(a.graphics)
	if err != nil {
		return usagef("--graphics %q: want auto, sixel, kitty, halfblock or none", a.graphics)
	}
	// Check the images before taking over the screen, so a typo is one line on stderr.
	if err := checkFiles(imageA, imageB); err != nil {
		return err
	}
	report, progress := ui.NewProgress()
	s, err := a.openSession(cmd, report)
	if err != nil {
		return err
	}
	defer s.Close()
	info := s.Info()
	opts := ui.DefaultOptions()
	opts.Graphics = graphics
	opts.Progress = progress
	opts.Metric = session.Metric(a.metric)
	if a.layer != "" {
		if opts.Layer, err = s.ResolveLayer(a.layer); err != nil {
			return err
		}
	}
	if a.t >= 0 || a.step != 0 {
		if opts.T, err = a.timestep(info); err != nil {
			return err
		}
	}
	if in, ok := a.stdin, true; ok && in != nil {
		opts.Input = in
	}
	if out, ok := a.stdout.(*os.File); ok {
		opts.Output = out
	} else {
		return fmt.Errorf("the explorer needs a terminal on standard output")
	}
	var firstImages time.Duration
	if a.traceStartup {
		opts.OnFirstImages = func() { firstImages = time.Since(a.started) }
	}
	err = ui.Run(cmd.Context(), s, imageA, imageB, opts)
	if a.traceStartup && firstImages > 0 {
		fmt.Fprintf(a.stderr, "diffsim: both images ready for the first frame %d ms after start\n", firstImages.Milliseconds())
	}
	return err
}
