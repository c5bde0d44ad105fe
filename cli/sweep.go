package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session"
)

// sweepCmd is `diffsim sweep`: a pair at every layer × a set of timesteps.
type sweepCmd struct {
	scoring
	tList, stepList, pngPath string
	json, csv                bool
}

func newSweepCmd(a *app) *cobra.Command {
	c := &sweepCmd{scoring: scoring{app: a, diff: &diffusionFlags{}}}
	cmd := &cobra.Command{
		Use:   "sweep IMAGE_A IMAGE_B",
		Short: "Score a pair at every layer × a set of timesteps: table, --json, --csv, --png",
		Long: `sweep scores a pair at every attention layer and each timestep of a grid. Each timestep
costs one batched network run that serves every layer. The grid defaults to ` + session.DefaultSweepT + `
(t = 0, 100, …, 900); --t takes a list and ranges START:END[:STEP] (END included when on the
grid), --step the same in the reference code's step indices (t = 1001 − step). Models without
timesteps are swept over their layers only. --layer keeps one layer. --json prints the setup
once and one score record per layer and timestep (as score --json prints it).`,
		Example: `  diffsim sweep a.png b.png
  diffsim sweep a.png b.png --t 100,400 --json
  diffsim sweep a.png b.png --t 0:999:50 --png sweep.png
  diffsim sweep a.png b.png --step 900,500 --csv > sweep.csv`,
		Args: exactArgs(2, "two images"),
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, args[0], args[1]) },
	}
	f := cmd.Flags()
	c.modelFlags.register(f, false)
	f.StringVar(&c.tList, "t", session.DefaultSweepT, "timesteps: a list and ranges START:END[:STEP], e.g. 100,400 or 0:999:50")
	f.StringVar(&c.stepList, "step", "", "the reference code's step indices instead of --t (t = 1001 − step), e.g. 900,500")
	inGroup(f, groupCommon, "t", "step")
	c.diff.register(f)
	c.registerNoServer(f)
	f.BoolVar(&c.json, "json", false, "print one JSON object: the setup, and a score record per layer and timestep")
	f.BoolVar(&c.csv, "csv", false, "print CSV, one row per layer and timestep")
	f.StringVar(&c.pngPath, "png", "", "also draw a heatmap (layers × timesteps) into this PNG file")
	inGroup(f, groupOutput, "json", "csv", "png")
	return cmd
}

func (c *sweepCmd) run(cmd *cobra.Command, pathA, pathB string) error {
	changed := cmd.Flags().Changed
	if changed("step") && changed("t") {
		return usagef("give --t or --step, not both")
	}
	if c.csv && c.json {
		return usagef("give --json or --csv, not both")
	}
	if c.pngPath != "" && strings.ToLower(filepath.Ext(c.pngPath)) != ".png" {
		return usagef("--png %s: the file name should end in .png", c.pngPath)
	}
	ts, err := session.ParseTimesteps(c.tList)
	if changed("step") {
		ts, err = session.ParseSteps(c.stepList)
	}
	if err != nil {
		return err
	}
	if err := checkImages(cmd.Context(), c.images.limits(), pathA, pathB); err != nil {
		return err
	}
	sw, err := c.sweep(cmd, pathA, pathB, ts)
	if err != nil {
		return err
	}
	if c.pngPath != "" {
		if err := c.writePNG(c.pngPath, drawSweep(sw)); err != nil {
			return err
		}
	}
	switch {
	case c.json:
		return json.NewEncoder(c.stdout).Encode(sw)
	case c.csv:
		return sw.WriteCSV(c.stdout)
	}
	if err := sw.WriteTable(c.stdout); err != nil {
		return err
	}
	for _, r := range sw.Scores {
		if r.Baseline != nil {
			_, err := fmt.Fprintf(c.stdout, "calibrated against baseline %.8s (%s): --json adds each score's rescaled value and percentile\n", r.Baseline.Key, r.Baseline.Source)
			return err
		}
	}
	return nil
}

// sweep computes the sweep with the command's one scorer (here or served).
func (c *sweepCmd) sweep(cmd *cobra.Command, pathA, pathB string, ts []int) (api.Sweep, error) {
	changed := cmd.Flags().Changed
	sc, err := c.scorer(cmd, nil)
	if err != nil {
		return api.Sweep{}, err
	}
	defer sc.Close()
	info := sc.Info()
	var layers []int // nil: all
	if c.layer != "" {
		l, err := info.ResolveLayer(c.layer)
		if err != nil {
			return api.Sweep{}, err
		}
		layers = []int{l}
	}
	if !info.Timesteps && (changed("t") || changed("step")) && !c.quiet {
		fmt.Fprintf(c.stderr, "diffsim: %s has no timesteps; sweeping its layers only\n", info.Name)
	}
	a, err := sc.Load(pathA)
	if err != nil {
		return api.Sweep{}, err
	}
	b, err := sc.Load(pathB)
	if err != nil {
		return api.Sweep{}, err
	}
	steps := len(ts)
	if !info.Timesteps {
		steps = 1
	}
	bar := c.newProgress("sweep", steps, 0)
	sw, err := sc.Sweep(cmd.Context(), a, b, layers, ts, api.Metric(c.metric), func() { bar.Add(1) })
	bar.Close()
	return sw, err
}
