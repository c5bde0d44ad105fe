package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/bench"
)

// gridFlags are bench's lists: several layers, timesteps or metrics make a grid run, whose
// every cell comes from the same forwards.
type gridFlags struct {
	layers  string
	t, step listFlag
	metrics []api.Metric
	batch   int
}

// listFlag is --t or --step as a list with ranges (100,400 or 0:999:100), checked when parsed;
// vals are DDPM timesteps either way.
type listFlag struct {
	raw   string
	vals  []int
	parse func(string) ([]int, error)
	name  string
}

func (l *listFlag) String() string { return l.raw }

func (l *listFlag) Set(s string) error {
	v, err := l.parse(s)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), l.name+": "))
	}
	l.raw, l.vals = s, v
	return nil
}

func (l *listFlag) Type() string { return "list" }

func (g *gridFlags) register(f *pflag.FlagSet) {
	g.t = listFlag{parse: session.ParseTimesteps, name: "--t"}
	g.step = listFlag{parse: session.ParseSteps, name: "--step"}
	f.Var(&g.t, "t", "DDPM timestep 0–999, or a list and ranges for a grid (101,501 or 0:999:100); default: the model's")
	f.Var(&g.step, "step", "the reference code's step index 1–1000 instead of --t (t = 1001 − step); a list makes a grid")
	f.StringVar(&g.layers, "layers", "", "a grid over these layers: all (every layer whose keys and values depend on the image), or a list of indices and names")
	f.IntVar(&g.batch, "batch", bench.DefaultBatch, "grid: images per batched forward (on a GPU, 8 or more)")
	if m := f.Lookup("metric"); m != nil {
		m.Usage = "aas (Aligned Attention Score), cos (pixel-aligned feature cosine), mse (lower = more similar), a list of them, or all (a grid)"
	}
	inGroup(f, groupCommon, "t", "step", "layers")
	inGroup(f, groupOutput, "batch")
}

// parse reads --metric as a list and the single --t or --step into the shared flags, and says
// whether the run is a grid: several layers, timesteps or metrics, or the grid layout.
func (g *gridFlags) parse(cmd *cobra.Command, a *benchCmd, layout string) (bool, error) {
	changed := cmd.Flags().Changed
	if changed("t") && changed("step") {
		return false, usagef("give --t or --step, not both")
	}
	if changed("layer") && changed("layers") {
		return false, usagef("give --layer (one layer) or --layers (a grid), not both")
	}
	if g.batch < 1 {
		return false, usagef("--batch %d: want at least one image per forward", g.batch)
	}
	ts := g.t.vals
	if changed("step") {
		ts = g.step.vals
	}
	if len(ts) == 1 {
		a.t = rangedInt{v: ts[0], set: true, lo: 0, hi: schedule.Timesteps - 1}
	}
	g.metrics = nil
	for m := range strings.SplitSeq(a.metric, ",") {
		m = strings.ToLower(strings.TrimSpace(m))
		if m == "all" {
			g.metrics = append(g.metrics, api.Metrics...)
			continue
		}
		if !slices.Contains(api.Metrics, api.Metric(m)) {
			return false, usagef("--metric %q: want aas, cos or mse, a list of them, or all", m)
		}
		g.metrics = append(g.metrics, api.Metric(m))
	}
	g.metrics = slices.Compact(g.metrics)
	a.metric = string(g.metrics[0])
	return strings.EqualFold(layout, "grid") || changed("layers") || len(ts) > 1 || len(g.metrics) > 1, nil
}

// settings resolves the grid on the model: the layers, timesteps and metrics of the cells.
func (g *gridFlags) settings(a *benchCmd, info api.ModelInfo, cond api.Conditioning, ds *bench.Dataset) (bench.GridSettings, error) {
	gs := bench.GridSettings{
		Format: bench.GridFormat, Layout: ds.Layout, Model: info.Name, Size: info.Size, Seed: info.Seed,
		Prompt: cond.Prompt, CFG: cond.CFG, Sets: ds.Sets(), Total: len(ds.Tasks),
	}
	var idx []int
	switch strings.ToLower(strings.TrimSpace(g.layers)) {
	case "":
		li, err := info.ResolveLayer(a.layer)
		if err != nil {
			return gs, err
		}
		idx = []int{li}
	case "all":
		var left []string
		for _, l := range info.Layers {
			if l.ImageKV {
				idx = append(idx, l.Index)
			} else {
				left = append(left, l.Abbrev())
			}
		}
		if len(left) > 0 && !a.quiet {
			which := strings.Join(left, ", ")
			if len(left) > 4 {
				which = strings.Join(left[:3], ", ") + ", …"
			}
			fmt.Fprintf(a.stderr, "diffsim: --layers all leaves out the %d cross-attention layers on text (%s): every pair scores 1 there; name them in --layers to include them\n", len(left), which)
		}
	default:
		for arg := range strings.SplitSeq(g.layers, ",") {
			li, err := info.ResolveLayer(strings.TrimSpace(arg))
			if err != nil {
				return gs, err
			}
			idx = append(idx, li)
		}
		slices.Sort(idx)
		idx = slices.Compact(idx)
	}
	for _, li := range idx {
		gs.Layers = append(gs.Layers, bench.NewGridLayer(info.Layers[li]))
	}
	ts := g.t.vals
	if len(g.step.vals) > 0 {
		ts = g.step.vals
	}
	switch {
	case !info.Timesteps:
		if len(ts) > 1 && !a.quiet {
			fmt.Fprintf(a.stderr, "diffsim: %s has no timesteps: the grid has one column\n", info.Name)
		}
		ts = []int{0}
	case len(ts) == 0:
		ts = []int{info.DefaultT}
	}
	gs.T = ts
	for _, t := range ts {
		gs.Step = append(gs.Step, stepOf(info, t))
	}
	for _, m := range g.metrics {
		gs.Metrics = append(gs.Metrics, string(m))
	}
	return gs, nil
}

// gridTarget is what a grid run scores with: the command's one scorer, here or served.
type gridTarget struct {
	scorer bench.PairScorer
	info   api.ModelInfo
	cond   api.Conditioning
	where  string // "here" or "on the server"
	close  func() error
}

func (a *benchCmd) gridTarget(cmd *cobra.Command) (gridTarget, error) {
	sc, local, err := a.open(cmd, nil)
	if err != nil {
		return gridTarget{}, err
	}
	var ps bench.PairScorer = bench.Local{S: local}
	where := "here"
	if local == nil {
		ps, where = &bench.Served{S: sc}, "on the server"
	}
	return gridTarget{scorer: ps, info: sc.Info(), cond: sc.Conditioning(), where: where, close: sc.Close}, nil
}

// runGrid makes the shard's decisions at every cell of the grid and prints the report.
func (a *benchCmd) runGrid(cmd *cobra.Command, ds *bench.Dataset, sh bench.Shard, out string, logEvery int) error {
	stderr := &syncWriter{w: a.stderr}
	gt, err := a.gridTarget(cmd)
	if err != nil {
		return err
	}
	defer gt.close()
	g, err := a.grid.settings(a, gt.info, gt.cond, ds)
	if err != nil {
		return err
	}
	run := &bench.GridRun{Scorer: gt.scorer, Dataset: ds, Settings: g, Shard: sh, Out: out, Batch: a.grid.batch, Log: stderr}
	label := ds.Layout + " grid"
	if ds.Layout == "grid" {
		label = "grid"
	}
	if sh.N > 1 {
		label += " shard " + sh.String()
	}
	var finish func()
	run.Progress, finish = a.benchProgress(stderr, label, "decisions × t", logEvery, func(done, total int) {
		a.gridStart(stderr, ds, g, sh, out, done, total)
	})
	start := time.Now()
	res, err := run.Do(cmd.Context())
	finish()
	if err != nil && !res.Interrupted {
		if errors.Is(err, bench.ErrMismatch) {
			return usageError{err}
		}
		if out != "" && res.Resumed+res.Made > 0 {
			fmt.Fprintf(stderr, "diffsim: %d decisions × t are saved in %s; run the same command again to resume\n", res.Resumed+res.Made, out)
		}
		return err
	}
	if !a.quiet {
		a.gridWork(stderr, g, res, time.Since(start), gt.where)
	}
	if sh.N > 1 && !res.Interrupted && !a.quiet {
		fmt.Fprintf(stderr, "diffsim: shard %s of %s done; combine the shards with: diffsim bench merge DIR (or FILES…), then diffsim bench report\n", sh, ds.Layout)
	}
	rep := res.Tally.Report()
	if a.json {
		err = rep.WriteJSON(a.stdout)
	} else {
		err = rep.WriteText(a.stdout)
	}
	if err != nil {
		return err
	}
	if res.Interrupted {
		kept := res.Resumed + res.Made
		if out != "" {
			fmt.Fprintf(stderr, "diffsim: interrupted after %d of %d decisions × t; they are saved in %s; run the same command again to resume\n", kept, res.InShard, out)
		} else {
			fmt.Fprintf(stderr, "diffsim: interrupted after %d of %d decisions × t; nothing was saved (give --out FILE.jsonl to make runs resumable)\n", kept, res.InShard)
		}
		return cmd.Context().Err()
	}
	return nil
}

// gridStart says what the grid run will do, once its results file has been read.
func (a *benchCmd) gridStart(w io.Writer, ds *bench.Dataset, g bench.GridSettings, sh bench.Shard, out string, done, inShard int) {
	if a.quiet {
		return
	}
	if len(ds.Notes) > 0 {
		fmt.Fprintf(w, "diffsim: %s: %s\n", ds.Layout, strings.Join(ds.Notes, "; "))
	}
	msg := fmt.Sprintf("diffsim: %s: %d decisions", ds.Layout, len(ds.Tasks))
	if sh.N > 1 {
		msg += fmt.Sprintf(", %d in shard %s", inShard/len(g.T), sh)
	}
	msg += fmt.Sprintf(" × %d t, each at %s × %s (%d cells) from one forward per image and t", len(g.T), count(len(g.Layers), "layer"), count(len(g.Metrics), "metric"), g.Cells())
	if done > 0 {
		msg += fmt.Sprintf("; %d of %d already in %s", done, inShard, out)
	}
	fmt.Fprintln(w, msg)
}

// gridWork says what the run cost, against the same grid made one cell at a time.
func (a *benchCmd) gridWork(w io.Writer, g bench.GridSettings, res bench.GridOutcome, took time.Duration, where string) {
	if res.Made == 0 {
		return
	}
	line := fmt.Sprintf("diffsim: made %d decisions × t in %s", res.Made, roundTook(took))
	perCell := len(g.Layers) * len(g.Metrics)
	line += fmt.Sprintf("; %d images through the network in %d batched forwards %s; cell by cell (%d single-cell runs) they would be %d images",
		res.Images, res.Forwards, where, g.Cells(), res.Images*perCell)
	fmt.Fprintln(w, line)
}

// count is n and the noun, plural when n is not 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func roundTook(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
