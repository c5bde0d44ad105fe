package cli

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/session/bench"
	"github.com/diffsim/diffsim/ui"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// resultsArgs checks the arguments of `diffsim explore --results RESULTS [DATA]`: at most the
// benchmark's folder (or CSV), after the optional word explore.
func resultsArgs(cmd *cobra.Command, args []string) error {
	if n := len(resultsDataArgs(args)); n > 1 {
		return usagef("%s --results takes at most the benchmark's folder (the PATH given to bench), got %d arguments", cmd.CommandPath(), n)
	}
	return nil
}

func resultsDataArgs(args []string) []string {
	if len(args) > 0 && args[0] == "explore" {
		if _, err := os.Stat(args[0]); err != nil {
			return args[1:]
		}
	}
	return args
}

// resultsData is the DATA argument, or "".
func resultsData(args []string) string {
	if a := resultsDataArgs(args); len(a) == 1 {
		return a[0]
	}
	return ""
}

// runResults opens the results explorer: the accuracy matrices of a bench run, a cell's failed
// decisions, and their images in the explorer with the model the results were made with.
func (c *exploreCmd) runResults(cmd *cobra.Command, data string) error {
	graphics, err := termgfx.ParseProtocol(c.graphics)
	if err != nil {
		return usagef("--graphics %q: want auto, sixel, kitty, halfblock, quadrant or none", c.graphics)
	}
	rep, err := bench.LoadReport(c.results)
	if err != nil {
		if errors.Is(err, bench.ErrMismatch) || errors.Is(err, bench.ErrIncomplete) {
			return usageError{err}
		}
		return err
	}
	root, err := resultsRoot(c.results, data)
	if err != nil {
		return err
	}
	// The decisions were made with the results' size, seed and conditioning: score with those.
	g := rep.Settings
	changed := cmd.Flags().Changed
	if !changed("size") {
		c.size = g.Size
	}
	if !changed("seed") {
		c.seed = g.Seed
	}
	if !changed("prompt") && !changed("cfg") {
		c.diff.prompt, c.diff.cfg = g.Prompt, g.CFG
	}
	if err := c.checkFlags(cmd); err != nil {
		return err
	}
	screen, err := c.terminal()
	if err != nil {
		return err
	}
	report, progress := ui.NewProgress()
	sc, err := c.scorer(cmd, report)
	if err != nil {
		return err
	}
	defer sc.Close()
	info := sc.Info()
	if info.Name != g.Model {
		return usagef("%s was made with model %s, not %s: give it with --model", c.results, g.Model, info.Name)
	}
	opts := ui.DefaultOptions()
	opts.Graphics = graphics
	if info.Caps.Progress {
		opts.Progress = progress
	}
	opts.ExportDir = c.exportDir
	opts.Input, opts.Output = c.stdin, screen
	return ui.RunResults(cmd.Context(), sc, ui.Results{Path: c.results, Report: rep, Root: root}, opts)
}

// resultsRoot is the folder a benchmark's image paths are relative to: DATA (a folder, or the
// folder of a CSV), or, without it, the working folder or the results' folder, whichever holds
// the first decision's reference image.
func resultsRoot(results, data string) (string, error) {
	first, err := bench.FirstTask(results)
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(first.Ref) {
		return "", nil
	}
	if data != "" {
		fi, err := os.Stat(data)
		if err != nil {
			return "", usageError{err}
		}
		if !fi.IsDir() {
			data = filepath.Dir(data)
		}
		if _, err := os.Stat(filepath.Join(data, first.Ref)); err != nil {
			return "", usagef("%s has no %s, the first decision's reference: give the PATH the benchmark was run on", data, first.Ref)
		}
		return data, nil
	}
	for _, dir := range []string{".", filepath.Dir(results)} {
		if _, err := os.Stat(filepath.Join(dir, first.Ref)); err == nil {
			return dir, nil
		}
	}
	return "", usagef("cannot find %s, the first decision's reference, here or beside %s: give the benchmark's folder, as in diffsim explore --results %s DATA", first.Ref, results, results)
}
