package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/api"
)

// scoreCmd is `diffsim score`: one pair at one layer and timestep.
type scoreCmd struct {
	scoring
	json bool
}

func newScoreCmd(a *app) *cobra.Command {
	c := &scoreCmd{scoring: scoring{app: a, diff: &diffusionFlags{}}}
	cmd := &cobra.Command{
		Use:   "score IMAGE_A IMAGE_B",
		Short: "Score one pair at one layer and timestep",
		Long: `score prints the Aligned Attention Score of a pair at one layer and timestep, with the
baselines beside it (pixel-aligned feature cosine, MSE, and the global embedding's cosine
where the model has one). --json prints one record; a value that does not apply is null.`,
		Example: `  diffsim score a.png b.png
  diffsim score a.png b.png --layer coarse --t 500 --json`,
		Args: exactArgs(2, "two images"),
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, args[0], args[1]) },
	}
	f := cmd.Flags()
	c.modelFlags.register(f, true)
	c.diff.register(f)
	c.registerNoServer(f)
	f.BoolVar(&c.json, "json", false, "print one JSON record (snake_case keys; null where a value does not apply)")
	inGroup(f, groupOutput, "json")
	return cmd
}

func (c *scoreCmd) run(cmd *cobra.Command, pathA, pathB string) error {
	// A typo should not wait for a model to load.
	if err := checkImages(cmd.Context(), c.images.limits(), pathA, pathB); err != nil {
		return err
	}
	sc, err := c.scorer(cmd, nil)
	if err != nil {
		return err
	}
	defer sc.Close()
	tg, err := sc.Resolve(c.selection())
	if err != nil {
		return err
	}
	a, err := sc.Load(pathA)
	if err != nil {
		return err
	}
	b, err := sc.Load(pathB)
	if err != nil {
		return err
	}
	r, err := sc.Score(cmd.Context(), api.Request{A: a, B: b, Layer: tg.Layer, T: tg.T, Metric: tg.Metric, Token: -1})
	if err != nil {
		return err
	}
	rec := api.RecordOf(sc, r) // calibrated by the model's baseline, where it has one
	if c.json {
		return json.NewEncoder(c.stdout).Encode(rec)
	}
	return writeScore(c.stdout, rec, sc.Info().Layers[tg.Layer].Label())
}

// writeScore prints a record for people.
func writeScore(w io.Writer, rec api.Record, layer string) error {
	dir := "higher = more similar"
	if !rec.HigherIsMoreSimilar {
		dir = "lower = more similar"
	}
	fmt.Fprintf(w, "%s %s  (A→B %s, B→A %s; %s)\n", rec.Metric, value(rec.Score), value(rec.AtoB), value(rec.BtoA), dir)
	base := fmt.Sprintf("baselines: feature cosine %s, mse %s", value(rec.FeatureCosine), value(rec.MSE))
	if !rec.GlobalCosine.IsNaN() {
		base += ", global embedding cosine " + value(rec.GlobalCosine)
	}
	fmt.Fprintln(w, base)
	if line := calibrationLine(rec); line != "" {
		fmt.Fprintln(w, line)
	}
	if rec.Meaningless != nil {
		fmt.Fprintf(w, "note: %s\n", *rec.Meaningless)
	}
	when := "no timesteps"
	if rec.T != nil {
		when = fmt.Sprintf("t=%d (step %d)", *rec.T, *rec.Step)
	}
	fmt.Fprintf(w, "layer %s, %s, %d px, seed %d, %s\n", layer, when, rec.Size, rec.Seed, rec.Device)
	_, err := fmt.Fprintf(w, "model: %s\n", rec.ModelDescription)
	return err
}

// column prints v with dec decimals, right-aligned in a column, or n/a.
func column(v *float64, dec int) string {
	if v == nil {
		return fmt.Sprintf("%*s", dec+3, "n/a")
	}
	return fmt.Sprintf("%*.*f", dec+3, dec, *v)
}

// value prints a score with four decimals, or n/a where it does not apply.
func value(v api.Float) string {
	if v.IsNaN() {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", float64(v))
}
