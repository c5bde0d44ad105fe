package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
)

// rankCmd is `diffsim rank`: the images in a folder most similar to a query.
type rankCmd struct {
	scoring
	top  int
	json bool
}

// rankJSON is `rank --json`: the setup and point once, then one score record per image.
type rankJSON struct {
	Query string `json:"query"`
	Dir   string `json:"dir"`
	api.Setup
	api.Point
	Images  int           `json:"images"` // images scored
	Results []api.Ranked  `json:"results"`
	Skipped []api.Skipped `json:"skipped"`
}

func newRankCmd(a *app) *cobra.Command {
	c := &rankCmd{scoring: scoring{app: a, diff: &diffusionFlags{}}}
	cmd := &cobra.Command{
		Use:   "rank QUERY DIR",
		Short: "The images in DIR (recursive) most similar to QUERY",
		Long: `rank scores every image under DIR (PNG, JPEG, WebP, BMP, TIFF, GIF; recursive; hidden files
and folders left out) against QUERY at one layer and timestep, and prints the -k most
similar, most similar first (for --metric mse: the lowest first). The query's features are
computed once; the others run through the network two at a time. Files that cannot be read
are listed as skipped and do not stop the ranking.`,
		Example: `  diffsim rank query.png photos/ -k 5
  diffsim rank query.png photos/ --layer coarse --t 500 --json`,
		Args: exactArgs(2, "a query image and a folder"),
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, args[0], args[1]) },
	}
	f := cmd.Flags()
	c.modelFlags.register(f, true)
	c.diff.register(f)
	c.registerNoServer(f)
	f.IntVarP(&c.top, "top", "k", 10, "how many to print; 0 for all")
	f.BoolVar(&c.json, "json", false, "print one JSON object: the setup, and a score record per image")
	inGroup(f, groupOutput, "json")
	return cmd
}

func (c *rankCmd) run(cmd *cobra.Command, queryPath, dir string) error {
	if c.top < 0 {
		return usagef("-k %d: want a positive count, or 0 for all", c.top)
	}
	if err := checkImages(cmd.Context(), c.images.limits(), queryPath); err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err != nil {
		return usagef("%s: %v", dir, pathReason(err))
	} else if !fi.IsDir() {
		return usagef("%s is not a folder (rank QUERY DIR)", dir)
	}
	files, unreadable, err := imagefile.ImageFiles(dir)
	if err != nil {
		return err
	}
	var skipped []api.Skipped
	for p, e := range unreadable {
		skipped = append(skipped, api.Skipped{Path: p, Error: e.Error()})
	}
	files = slices.DeleteFunc(files, func(p string) bool { return samePath(p, queryPath) })
	if len(files) == 0 {
		return usagef("%s has no images to rank %s against (diffsim reads PNG, JPEG, WebP, BMP, TIFF and GIF files, in sub-folders too; hidden ones are skipped)", dir, queryPath)
	}
	rk, err := c.rank(cmd, queryPath, files)
	if err != nil {
		return err
	}
	results, skip := rk.Results, rk.Skipped
	skipped = append(skipped, skip...)
	api.SortSkipped(skipped)
	for _, sk := range skipped {
		fmt.Fprintf(c.stderr, "diffsim: skipped %s\n", sk.Error)
	}
	out := rankJSON{
		Query: queryPath, Dir: dir, Setup: rk.Setup, Point: rk.Point,
		Images: len(results), Results: results, Skipped: skipped,
	}
	if out.Skipped == nil {
		out.Skipped = []api.Skipped{}
	}
	if out.Results == nil {
		out.Results = []api.Ranked{}
	}
	if c.top > 0 && len(out.Results) > c.top {
		out.Results = out.Results[:c.top]
	}
	if c.json {
		return json.NewEncoder(c.stdout).Encode(out)
	}
	dirWord := "higher = more similar"
	if !out.HigherIsMoreSimilar {
		dirWord = "lower = more similar"
	}
	when := "no timesteps"
	if out.T != nil {
		when = fmt.Sprintf("t=%d", *out.T)
	}
	fmt.Fprintf(c.stdout, "%d most similar of %d images to %s (%s at %s, %s; %s)\n", len(out.Results), out.Images, queryPath, out.Metric, rk.LayerLabel, when, dirWord)
	if rk.meaningless != "" {
		fmt.Fprintln(c.stdout, "note:", rk.meaningless)
	}
	calibrated := len(out.Results) > 0 && out.Results[0].Baseline != nil
	if calibrated {
		b := out.Results[0].Baseline
		fmt.Fprintf(c.stdout, "rescaled against baseline %.8s (%s, %d pairs); pct: unrelated pairs less similar\n", b.Key, b.Source, b.Pairs)
	}
	for _, r := range out.Results {
		if calibrated {
			fmt.Fprintf(c.stdout, "%3d  %s  rescaled %s  pct %s  %s\n", r.Rank, value(r.Score), column(r.Rescaled, 2), column(r.Percentile, 0), r.ImageB)
			continue
		}
		fmt.Fprintf(c.stdout, "%3d  %s  %s\n", r.Rank, value(r.Score), r.ImageB)
	}
	return nil
}

// samePath reports whether two paths name the same file, so the query is not ranked against
// itself when it lies inside DIR.
func samePath(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	aa, _ := filepath.Abs(a)
	ab, _ := filepath.Abs(b)
	return aa == ab
}

// ranking is what rank prints.
type ranking struct {
	api.Setup
	api.Point
	LayerLabel  string
	meaningless string // why every score of the layer is 1; "" when it means something
	Results     []api.Ranked
	Skipped     []api.Skipped
}

// rank scores files against the query with the command's one scorer (here or served).
func (c *rankCmd) rank(cmd *cobra.Command, queryPath string, files []string) (ranking, error) {
	sc, err := c.scorer(cmd, nil)
	if err != nil {
		return ranking{}, err
	}
	defer sc.Close()
	tg, err := sc.Resolve(c.selection())
	if err != nil {
		return ranking{}, err
	}
	query, err := sc.Load(queryPath)
	if err != nil {
		return ranking{}, err
	}
	bar := c.newProgress("rank", len(files), 0)
	results, skip, err := sc.Rank(cmd.Context(), query, files, tg.Layer, tg.T, tg.Metric, func() { bar.Add(1) })
	bar.Close()
	if err != nil {
		return ranking{}, err
	}
	info := sc.Info()
	layer := info.Layers[tg.Layer]
	return ranking{
		Setup: api.SetupOf(sc, tg.Metric), Point: api.NewPoint(info, tg.Layer, tg.T),
		LayerLabel: layer.Label(), meaningless: layer.Meaningless(), Results: results, Skipped: skip,
	}, nil
}
