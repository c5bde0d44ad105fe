package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/baseline"
)

// baselineCmd is `diffsim baseline`: build, list and show the baselines of unrelated pairs
// that put scores on a readable scale.
type baselineCmd struct {
	scoring
	pairs   int
	shuffle uint64
	tList   string
	json    bool
}

func newBaselineCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Baselines of unrelated pairs: rescaled scores and percentiles",
		Long: `A baseline is the distribution of scores of random pairs of unrelated images, at every layer,
timestep and metric of one model and its settings (size, seed, prompt). Where one exists,
score, sweep, rank and the explorer add the rescaled score, (s − b) / (1 − b) with b the
baseline's mean (0: a typical unrelated pair, 1: identical images; for MSE (b − s) / b), and
the percentage of unrelated pairs less similar, so that layers, whose raw scores crowd into
different narrow bands, can be compared. Rankings and benchmark accuracies do not change:
both are monotone in the score. The built-in model ships a baseline made from 64 generated
images; build one for any other model from a folder of unrelated photographs.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBaselineBuildCmd(a), newBaselineListCmd(a), newBaselineShowCmd(a))
	return cmd
}

func newBaselineBuildCmd(a *app) *cobra.Command {
	c := &baselineCmd{scoring: scoring{app: a, diff: &diffusionFlags{}}}
	cmd := &cobra.Command{
		Use:   "build DIR",
		Short: "Score random pairs of the images in DIR (recursive) and keep them as the model's baseline",
		Long: `build scores --pairs random pairs of different images found in DIR (recursive) at every layer,
every timestep of --t and every metric, and keeps the distribution (mean, spread, quantiles,
count) in diffsim's cache, keyed by the model's content and settings: scores with the same
model, size, seed and prompt use it from then on. Pairs are chains through shuffled orders
of the images, so each image costs one network run per timestep. The images should be
unrelated to each other (a folder of varied photographs); about 64 give means to ±0.001
on the built-in model (the README has the numbers).`,
		Example: `  diffsim baseline build photos/ --model sd15 --size 256
  diffsim baseline build photos/ --pairs 200 --t 101,251,401,501`,
		Args: exactArgs(1, "a folder of images"),
		RunE: func(cmd *cobra.Command, args []string) error { return c.build(cmd, args[0]) },
	}
	f := cmd.Flags()
	c.modelFlags.register(f, false)
	for _, n := range []string{"layer", "metric"} {
		_ = f.MarkHidden(n) // every layer and metric is built
	}
	c.diff.register(f)
	f.IntVar(&c.pairs, "pairs", 0, "pairs to score (default: as many as images, each image in two pairs)")
	f.Uint64Var(&c.shuffle, "shuffle", 1, "seed of the random pairing (another draws other pairs of the same images)")
	f.StringVar(&c.tList, "t", "0:900:100,999", "timesteps: a list and ranges START:END[:STEP]; others are interpolated")
	f.BoolVar(&c.json, "json", false, "print the baseline as JSON")
	inGroup(f, groupCommon, "pairs", "shuffle", "t")
	inGroup(f, groupOutput, "json")
	return cmd
}

func (c *baselineCmd) build(cmd *cobra.Command, dir string) error {
	if c.pairs < 0 {
		return usagef("--pairs %d: want a positive count", c.pairs)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return usagef("%s: %v", dir, pathReason(err))
	}
	if !fi.IsDir() {
		return usagef("%s is not a folder (baseline build DIR)", dir)
	}
	ts, err := session.ParseTimesteps(c.tList)
	if err != nil {
		return err
	}
	files, unreadable, err := imagefile.ImageFiles(dir)
	if err != nil {
		return err
	}
	for p, e := range unreadable {
		fmt.Fprintf(c.stderr, "diffsim: skipped %s: %v\n", p, e)
	}
	if len(files) < 2 {
		return usagef("%s has %d image(s): a baseline needs at least two unrelated images, better dozens", dir, len(files))
	}
	n := c.pairs
	if n == 0 {
		n = len(files)
	}
	pairs := baseline.RandomPairs(len(files), n, c.shuffle)
	if len(pairs) < n && !c.quiet {
		fmt.Fprintf(c.stderr, "diffsim: %d images make %d different pairs; scoring those\n", len(files), len(pairs))
	}
	s, err := c.scorer(cmd, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	info := s.Info()
	key, err := c.baselineKey(info.Size)
	if err != nil {
		return err
	}
	if !info.Timesteps {
		ts = []int{0}
	}
	bar := c.newProgress("baseline", len(ts)*len(pairs), 0)
	b, err := baseline.Build(cmd.Context(), s, len(files), func(i int) (*api.Image, error) { return s.Load(files[i]) }, baseline.Options{
		Pairs: pairs, Timesteps: ts, Key: key, Source: dir, Model: c.model,
		Prompt: c.conditioning().prompt, CFG: c.conditioning().cfg, Now: time.Now,
		Progress: func(done, _ int) { bar.Add(1) },
	})
	bar.Close()
	if err != nil {
		return err
	}
	path, err := baseline.Save(baseline.Dir(), b)
	if err != nil {
		return err
	}
	if c.json {
		data, err := b.Encode()
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(data)
		return err
	}
	fmt.Fprintf(c.stdout, "baseline %s for %s (%d px, seed %d): %d pairs of %d images from %s, %d layers × %d t × %d metrics\n",
		b.ShortKey(), b.Model, b.Size, b.Seed, b.Pairs, b.Images, dir, len(b.Layers), len(b.Timesteps), len(b.Metrics))
	writeStability(c.stdout, b, info.DefaultLayer, info.DefaultT, info)
	fmt.Fprintf(c.stdout, "saved to %s; score, sweep, rank and the explorer use it for this model and settings\n", path)
	return nil
}

// writeStability says how stable the baseline is at one layer and t: its mean's standard
// error beside its spread.
func writeStability(w io.Writer, b *calibration.Baseline, layer, t int, info api.ModelInfo) {
	for _, m := range b.Metrics {
		c, ok := b.At(layer, t, m)
		if !ok {
			continue
		}
		name := fmt.Sprint(layer)
		if layer < len(b.Layers) {
			name = b.Layers[layer]
		}
		when := ""
		if info.Timesteps {
			when = fmt.Sprintf(" t=%d", t)
		}
		fmt.Fprintf(w, "  %-3s at %s%s: mean %.4f ± %.4f (standard error), spread %.4f\n", m, name, when, c.Mean, c.StdErr(), c.Std)
	}
}

// baselineKey is the key of the model the flags choose (its spec), at the working size it
// runs at.
func (c *scoring) baselineKey(size int) (string, error) { return baseline.SpecKey(c.spec(), size) }

func newBaselineListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "The baselines kept, and the ones diffsim ships",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := baseline.Dir()
			es, bad, err := baseline.List(dir)
			if err != nil {
				return err
			}
			for p, e := range bad {
				fmt.Fprintf(a.stderr, "diffsim: skipped %s: %v\n", p, oneLine(e))
			}
			if asJSON {
				type entry struct {
					Key     string `json:"key"`
					Model   string `json:"model"`
					Size    int    `json:"size"`
					Seed    int64  `json:"seed"`
					Prompt  string `json:"prompt"`
					Pairs   int    `json:"pairs"`
					Images  int    `json:"images"`
					Source  string `json:"source"`
					Path    string `json:"path"`
					Shipped bool   `json:"shipped"`
				}
				out := []entry{}
				for _, e := range es {
					out = append(out, entry{e.Key, e.Model, e.Size, e.Seed, e.Prompt, e.Pairs, e.Images, e.Source, e.Path, e.Shipped})
				}
				return json.NewEncoder(a.stdout).Encode(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tMODEL\tSIZE\tSEED\tPAIRS\tBUILT\tFROM")
			for _, e := range es {
				built := "shipped"
				if e.Created != nil {
					built = e.Created.Local().Format(time.DateOnly)
				}
				model := e.Model
				if e.Prompt != "" {
					model += fmt.Sprintf(" (prompt %q)", e.Prompt)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", e.ShortKey(), model, e.Size, e.Seed, e.Pairs, built, e.Source)
			}
			tw.Flush()
			fmt.Fprintf(a.stdout, "%d baseline(s); built ones are kept in %s\n", len(es), dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON list")
	inGroup(cmd.Flags(), groupOutput, "json")
	return cmd
}

func newBaselineShowCmd(a *app) *cobra.Command {
	c := &baselineCmd{scoring: scoring{app: a, diff: &diffusionFlags{}}}
	cmd := &cobra.Command{
		Use:   "show [KEY]",
		Short: "A baseline's mean and spread at every layer and timestep",
		Long: `show prints a baseline as a table: for each layer (rows) and timestep (columns), the mean
score of unrelated pairs and its spread, for one metric (--metric). KEY is a key or its
start, as baseline list prints it; without one, the baseline of the model the flags choose.`,
		Example: `  diffsim baseline show
  diffsim baseline show 3f2a91c0 --metric mse
  diffsim baseline show --model sd15 --size 256`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := ""
			if len(args) == 1 {
				key = args[0]
			}
			return c.show(cmd, key)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.model, "model", "builtin", "the model whose baseline to show (without KEY)")
	f.IntVar(&c.size, "size", 0, "its working size (default: the model's)")
	f.Int64Var(&c.seed, "seed", api.DefaultSeed, "its noise seed")
	f.StringVar(&c.metric, "metric", "aas", "aas, cos or mse")
	f.BoolVar(&c.json, "json", false, "print the baseline as JSON")
	inGroup(f, groupCommon, "model", "size", "seed", "metric")
	inGroup(f, groupOutput, "json")
	return cmd
}

func (c *baselineCmd) show(cmd *cobra.Command, key string) error {
	switch c.metric {
	case "aas", "cos", "mse":
	default:
		return usagef("--metric %q: want aas, cos or mse", c.metric)
	}
	var b *calibration.Baseline
	if key != "" {
		e, err := baseline.Lookup(baseline.Dir(), key)
		if err != nil {
			return usageError{err}
		}
		b = e.Baseline
	} else {
		fam, src, err := families.All().Resolve(c.model)
		if err != nil {
			return usageError{err}
		}
		// The working size without loading the model: the family describes it.
		d, err := fam.Describe(src, features.OpenOptions{Size: c.size})
		if err != nil {
			return usageError{err}
		}
		k, err := baseline.Key(baseline.Spec{Source: src, Size: d.Size, Seed: c.seed})
		if err != nil {
			return err
		}
		if b, err = baseline.Find(baseline.Dir(), k); err != nil {
			return err
		}
		if b == nil {
			return usagef("no baseline for %s at %d px, seed %d: diffsim baseline build DIR --model %s makes one", c.model, d.Size, c.seed, c.model)
		}
	}
	if c.json {
		data, err := b.Encode()
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(data)
		return err
	}
	return writeBaseline(c.stdout, b, c.metric)
}

// writeBaseline prints the baseline's means ± spreads for one metric, layers × timesteps.
func writeBaseline(w io.Writer, b *calibration.Baseline, metric string) error {
	fmt.Fprintf(w, "baseline %s for %s (%d px, seed %d", b.ShortKey(), b.Model, b.Size, b.Seed)
	if b.Prompt != "" {
		fmt.Fprintf(w, ", prompt %q", b.Prompt)
	}
	fmt.Fprintf(w, "): %d pairs of %d images from %s\n", b.Pairs, b.Images, b.Source)
	dir := "higher = more similar"
	if metric == "mse" {
		dir = "lower = more similar"
	}
	fmt.Fprintf(w, "%s of unrelated pairs (%s): mean ± spread; the mean's standard error is spread/√%d\n", metric, dir, b.Pairs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := []string{"layer"}
	for _, t := range b.Timesteps {
		head = append(head, fmt.Sprintf("t=%d", t))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for l, name := range b.Layers {
		row := []string{name}
		any := false
		for _, t := range b.Timesteps {
			c, ok := b.At(l, t, metric)
			if !ok {
				row = append(row, "n/a")
				continue
			}
			any = true
			row = append(row, fmt.Sprintf("%.4f ± %.4f", c.Mean, c.Std))
		}
		if any {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	return tw.Flush()
}

// calibrationLine is what the baseline says about a record, for people: "rescaled 0.31 ·
// more similar than 72% of unrelated pairs (baseline: …)"; "" without one.
func calibrationLine(rec api.Record) string {
	if rec.Baseline == nil {
		return ""
	}
	var parts []string
	if rec.Rescaled != nil {
		parts = append(parts, fmt.Sprintf("rescaled %.2f", *rec.Rescaled))
	}
	if rec.Percentile != nil {
		parts = append(parts, calibration.PercentileWords(*rec.Percentile))
	}
	where := ""
	if rec.Baseline.Interpolated {
		where = ", between the timesteps built"
	}
	return fmt.Sprintf("%s (baseline %.8s: %s, %d pairs%s)", strings.Join(parts, " · "), rec.Baseline.Key, rec.Baseline.Source, rec.Baseline.Pairs, where)
}
