package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/session/bench"
)

func (a *benchCmd) benchReportCommand() *cobra.Command {
	var pngPath string
	var csvOut bool
	cmd := &cobra.Command{
		Use:   "report RESULTS",
		Short: "The accuracy matrix (layers × t) of bench results: table, PNG heatmap, --json, --csv",
		Long: `report reads bench results (a results file, or a folder of shard files, merged on the fly)
and prints, for every decision set and metric, the accuracy of each layer (rows) at each
timestep (columns) with its 95% Wilson interval. The best cell is marked *, and the cells that
McNemar's exact test on the same decisions cannot tell from it (p ≥ 0.05) are marked =. For the
grid layout it prints the style and content matrices and their difference (style − content,
with Newcombe's interval): positive where a layer and t follow style more than content.

--png draws the same as a heatmap figure: one panel per set and metric (and the difference),
layers down with their short names, t and step across, a colour bar, each cell's value and
interval. --json prints one object per cell and --csv one row per cell:
  set (all, or style and content for the grid layout), layer, layer_index, layer_label, t, step,
  metric, accuracy, ci_low, ci_high, n (decisions made), correct, skipped, best,
  indistinguishable (from the best), p_vs_best, meaningless.
A single-cell results file reads as a grid of one cell.`,
		Example: `  diffsim bench report grid.jsonl
  diffsim bench report results/ --png grid.png
  diffsim bench report grid.jsonl --json | jq 'select(.best)'`,
		Args: exactArgs(1, "a results file or folder"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.json && csvOut {
				return usagef("give --json or --csv, not both")
			}
			if pngPath != "" && strings.ToLower(filepath.Ext(pngPath)) != ".png" {
				return usagef("--png %s: the file name should end in .png", pngPath)
			}
			rep, err := bench.LoadReport(args[0])
			if err != nil {
				if errors.Is(err, bench.ErrMismatch) || errors.Is(err, bench.ErrIncomplete) {
					return usageError{err}
				}
				return err
			}
			if !rep.Complete() && !a.quiet {
				fmt.Fprintf(a.stderr, "diffsim: %d of %d decisions × t are recorded: the report covers those\n", rep.Records, rep.Expected)
			}
			if pngPath != "" {
				if err := a.writePNG(pngPath, drawReport(rep)); err != nil {
					return err
				}
			}
			switch {
			case a.json:
				return rep.WriteJSON(a.stdout)
			case csvOut:
				return rep.WriteCSV(a.stdout)
			}
			return rep.WriteText(a.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pngPath, "png", "", "also draw the matrices as a heatmap into this PNG file")
	f.BoolVar(&a.json, "json", false, "print one JSON object per cell")
	f.BoolVar(&csvOut, "csv", false, "print CSV, one row per cell")
	f.BoolVar(&a.quiet, "quiet", false, "no notices on stderr")
	return cmd
}

// mergeGrid is `bench merge` on grid results: the merged file written atomically and
// streamed (a large grid is never held in memory), then the report.
func (a *benchCmd) mergeGrid(args []string, out string, partial bool) error {
	var dst io.Writer
	if out != "" {
		pf, err := renameio.NewPendingFile(out, renameio.WithPermissions(0o644))
		if err != nil {
			return err
		}
		defer pf.Cleanup()
		dst = pf
	}
	var tally *bench.Tally
	each := func(g bench.GridSettings, r bench.GridRecord) {
		if tally == nil {
			tally = bench.NewTally(g)
		}
		tally.Add(r)
	}
	var g bench.GridSettings
	var err error
	if fi, statErr := os.Stat(args[0]); statErr == nil && fi.IsDir() {
		if len(args) > 1 {
			return usagef("merge takes one results folder or a list of files, not both")
		}
		g, _, err = bench.MergeGridDir(args[0], partial, dst, each)
	} else {
		g, _, err = bench.MergeGrid(args, dst, each)
	}
	if err != nil {
		if errors.Is(err, bench.ErrMismatch) || errors.Is(err, bench.ErrIncomplete) {
			return usageError{err}
		}
		return err
	}
	if pf, ok := dst.(*renameio.PendingFile); ok {
		if err := pf.CloseAtomicallyReplace(); err != nil {
			return err
		}
	}
	if tally == nil {
		tally = bench.NewTally(g)
	}
	rep := tally.Report()
	if !rep.Complete() {
		fmt.Fprintf(a.stderr, "diffsim: %d of %d decisions × t are missing: a shard is missing or unfinished\n", rep.Expected-rep.Records, rep.Expected)
	}
	if a.json {
		return rep.WriteJSON(a.stdout)
	}
	return rep.WriteText(a.stdout)
}
