package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/bench"
)

// benchCmd is `diffsim bench` with `bench merge` and `bench status`: flags, help and wiring;
// session/bench runs the benchmark.
type benchCmd struct {
	scoring
	grid gridFlags
	json bool
}

func newBenchCmd(app *app) *cobra.Command {
	a := &benchCmd{scoring: scoring{app: app}}
	var out, shard, split string
	var sampleSeed uint64
	var maxN, minVotes, shards, logEvery int
	cmd := &cobra.Command{
		Use:   "bench LAYOUT PATH",
		Short: "Accuracy on a benchmark (triplet, grid, 2afc, nights, tid2013), one cell or a layer × t grid; resumable, shardable",
		Long: `bench makes every decision of a benchmark (is A or B more similar to the reference?) at one
layer, timestep and metric, and prints the accuracy with its 95% Wilson confidence interval.

Grids: --layers all|LIST, a list of timesteps (--t 101,301,501 or --step 900,500) or of metrics
(--metric aas,cos,mse or all) make every decision at every cell of the grid from the same
forwards: at each t each image runs through the network once (--batch images per forward), and
that forward scores every layer and metric. Each cell's decisions are the ones a single-cell
run at that layer, t and metric makes. The report is the accuracy matrix (layers × t) per
metric with 95% Wilson intervals, the best cell and the cells McNemar's test cannot tell from
it; 'diffsim bench report RESULTS' prints it again, as a PNG heatmap, --json or --csv.
--layers all leaves out cross-attention layers on text (every pair scores 1 there).

Layouts:
  triplet  PATH/CLASS/…images: each ordered pair of one class (anchor, positive) against a
           negative drawn from another class; --sample-seed fixes the draw and the order,
           --max N keeps the first N decisions (a fair sample).
  grid     PATH/STYLE/CONTENT.ext, one image per style and content (diffsim bench synth writes
           one): two decision sets, always run as a grid. style: A has the reference's style
           and another content, B another style with A's content; content: A has the
           reference's content and another style, B another content with A's style. The
           report shows both matrices and style − content: which layers and t follow style.
  2afc     a CSV with reference, A, B and the human choice, columns found by name
           (ref/reference, a/left, b/right, choice/human/winner; a|b, left|right, 0|1, a
           vote fraction for B, or the chosen path); paths relative to the CSV.
  nights   NIGHTS (DreamSim): PATH/data.csv with ref_path, left_path, right_path, left_vote,
           right_vote, votes, split. The human choice is the side with more votes (ties left
           out); --split test|val|train|all; --min-votes 6 as DreamSim's loader (0: all rows).
  tid2013  TID2013: iXX_YY_Z.bmp distorted images and IXX.BMP references anywhere under PATH;
           one decision per reference and distortion: level 2 is closer than level 3.

--out FILE.jsonl records each decision as one JSON line the moment it is made; running the
same command again resumes, skipping the decisions already there. --out DIR/ (a trailing
slash, or an existing folder) writes DIR/shard-I-of-N.jsonl instead, one file per shard.

Shards: --shard I/N makes only the decisions whose index mod N is I. Without it, a Slurm
array task takes its shard from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (an array
numbered 0..N-1), a Kubernetes Indexed Job from JOB_COMPLETION_INDEX with --shards N (or
$DIFFSIM_SHARDS); the line on stderr says which. With --shards N the task index is the shard
index as is, so rerunning one task (sbatch --array=2 … --shards 4) resumes its own shard.
'diffsim bench merge DIR' combines the shards into exactly the single run's result, and
'diffsim bench status DIR' shows how far each has got.

Progress: a bar on a terminal; otherwise (a job's log) one line every --log-every decisions
with the rate and the time left. Ctrl-C or SIGTERM (scancel) stops after the decision in
flight (a second one abandons it); what was made is kept.

While 'diffsim serve' runs, it scores the pairs with its warm model (the results are the
same, byte for byte); --no-server computes in this process.`,
		Example: `  diffsim bench triplet styles/ --t 101 --out sref.jsonl
  diffsim bench grid toy/ --layers all --t 101,301,501,801 --out grid.jsonl
  diffsim bench nights nights/ --model sd15 --layers Down0,Down1,Down2,Mid,Up0,Up1,Up2 --step 900,700,500 --out nights/
  diffsim bench nights nights/ --step 500 --layer Up0 --shard 0/8 --out results/
  SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 diffsim bench tid2013 tid2013/ --out results/
  diffsim bench merge results/ --out nights.jsonl
  diffsim bench status results/`,
		Args: exactArgs(2, "a layout and a path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sh, err := a.benchShard(cmd, shard, shards)
			if err != nil {
				return err
			}
			if maxN < 0 {
				return usagef("--max %d: want a positive count, or 0 for all", maxN)
			}
			if logEvery < 0 {
				return usagef("--log-every %d: want a count of decisions, or 0 for about every 5%%", logEvery)
			}
			grid, err := a.grid.parse(cmd, a, args[0])
			if err != nil {
				return err
			}
			ds, err := bench.Load(args[0], args[1], bench.Options{SampleSeed: sampleSeed, Max: maxN, Split: split, MinVotes: minVotes})
			if err != nil {
				if errors.Is(err, bench.ErrLayout) {
					return usageError{err}
				}
				return err
			}
			// A results folder: created on first use, by whichever task of the array comes first.
			if out != "" && bench.IsDirOut(out) {
				dir := out
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				if err := bench.CheckSplit(dir, sh.Shard, sh.from); err != nil {
					return usageError{err}
				}
				out = filepath.Join(dir, bench.FileName(sh.Shard))
			}
			if grid {
				return a.runGrid(cmd, ds, sh.Shard, out, logEvery)
			}
			return a.runBench(cmd, ds, sh.Shard, out, logEvery)
		},
	}
	f := cmd.Flags()
	a.modelFlags.register(f, false)
	a.grid.register(f)
	a.registerNoServer(f)
	f.StringVar(&out, "out", "", "record every decision in this JSONL file, or DIR/ for one file per shard; a rerun resumes from it")
	f.StringVar(&shard, "shard", "", "make only shard I of N (decision index mod N = I); default: from a Slurm array or an Indexed Job, else all")
	f.IntVar(&shards, "shards", 0, "shard count when the task index comes from the engine (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID); default $DIFFSIM_SHARDS")
	f.IntVar(&logEvery, "log-every", 0, "without a terminal, one progress line every N decisions (0: about every 5%, at most 100)")
	f.Uint64Var(&sampleSeed, "sample-seed", 1, "triplet: seed of the negatives drawn and of the decision order")
	f.IntVar(&maxN, "max", 0, "make at most this many decisions (the first N; triplet: a seeded sample); 0 = all")
	f.StringVar(&split, "split", "test", "nights: the split to evaluate: test, val, train or all")
	f.IntVar(&minVotes, "min-votes", 6, "nights: keep triplets with at least this many votes (DreamSim's filter); 0 = all")
	f.BoolVar(&a.json, "json", false, "print the summary as one JSON object")
	inGroup(f, groupOutput, "json", "out", "log-every")
	cmd.AddCommand(a.benchMergeCommand(), a.benchStatusCommand(), a.benchReportCommand(), a.benchSynthCommand())
	return cmd
}

// benchShard is the shard a bench run makes, and where it came from.
type benchShard struct {
	bench.Shard
	from string // the engine variables it came from; "" for --shard or none
}

// benchShard resolves --shard, --shards and the batch engine's environment, and says on
// stderr which engine's index it used.
func (a *benchCmd) benchShard(cmd *cobra.Command, shard string, shards int) (benchShard, error) {
	if cmd.Flags().Changed("shard") {
		if cmd.Flags().Changed("shards") {
			return benchShard{}, usagef("give --shard I/N or --shards N, not both")
		}
		sh, err := bench.ParseShard(shard)
		if err != nil {
			return benchShard{}, usageError{err}
		}
		return benchShard{Shard: sh}, nil
	}
	if !cmd.Flags().Changed("shards") {
		if v := os.Getenv(bench.ShardsVar); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return benchShard{}, usagef("$%s=%q: want a shard count", bench.ShardsVar, v)
			}
			shards = n
		}
	}
	sh, from, ok, err := bench.FromEnv(os.Getenv, shards)
	if err != nil {
		return benchShard{}, usageError{err}
	}
	if ok && !a.quiet {
		fmt.Fprintf(a.stderr, "diffsim: shard %s from the %s\n", sh, from)
	}
	return benchShard{sh, from}, nil
}

func (a *benchCmd) benchMergeCommand() *cobra.Command {
	var out string
	var partial bool
	cmd := &cobra.Command{
		Use:   "merge DIR | FILE.jsonl…",
		Short: "Combine the results of bench shards into one result",
		Long: `merge reads the results of bench shards (a torn last line is ignored), checks that they
were made with the same settings, and prints the summary a single run would have printed.
--out writes the decisions sorted by index: byte for byte the single run's results file.

Given a folder (bench --out DIR/), it refuses a shard that is missing, present twice, from
another split, or unfinished (--partial merges what is there).

Grid results (bench with several layers, timesteps or metrics) merge the same way, streamed,
and print the grid's report.`,
		Example: `  diffsim bench merge results/ --out nights.jsonl --json
  diffsim bench merge nights-*.jsonl --out nights.jsonl`,
		Args: minArgs(1, "a results folder or results files"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if grid, err := isGridResults(args[0]); err != nil {
				return err
			} else if grid {
				return a.mergeGrid(args, out, partial)
			}
			var recs []bench.Record
			var settings bench.Settings
			var err error
			if fi, statErr := os.Stat(args[0]); statErr == nil && fi.IsDir() {
				if len(args) > 1 {
					return usagef("merge takes one results folder or a list of files, not both")
				}
				recs, settings, err = bench.MergeDir(args[0], partial)
			} else {
				recs, settings, err = bench.Merge(args)
			}
			if err != nil {
				if errors.Is(err, bench.ErrMismatch) || errors.Is(err, bench.ErrIncomplete) {
					return usageError{err}
				}
				return err
			}
			ds := make([]bench.Decision, len(recs))
			var buf bytes.Buffer
			for i, r := range recs {
				ds[i] = r.Decision
				buf.Write(r.Line)
				buf.WriteByte('\n')
			}
			if out != "" {
				if err := renameio.WriteFile(out, buf.Bytes(), 0o644); err != nil {
					return err
				}
			}
			sum := bench.Summarize(settings, ds)
			if !sum.Complete {
				fmt.Fprintf(a.stderr, "diffsim: %d of %d decisions are missing: a shard is missing or unfinished\n", settings.Total-sum.Made-sum.Skipped, settings.Total)
			}
			return a.printSummary(sum)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the merged decisions, sorted by index, to this JSONL file")
	cmd.Flags().BoolVar(&partial, "partial", false, "merge a results folder with shards missing or unfinished (the summary says INCOMPLETE)")
	cmd.Flags().BoolVar(&a.json, "json", false, "print the summary as one JSON object")
	return cmd
}

func (a *benchCmd) benchStatusCommand() *cobra.Command {
	var stale time.Duration
	cmd := &cobra.Command{
		Use:   "status DIR",
		Short: "How far every shard in a results folder has got",
		Long: `status reads a results folder (bench --out DIR/) and prints, per shard, the decisions
recorded of the shard's total, when its file was last written, and its state: done, running
(written in the last --stale), stopped, empty, or missing (no file yet). It reads only; it
can run while the shards do. A grid's shards count decisions × timesteps.`,
		Example: `  diffsim bench status results/
  watch -n 30 diffsim bench status results/`,
		Args: exactArgs(1, "a results folder"),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			if grid, err := isGridResults(args[0]); err != nil {
				return err
			} else if grid {
				sts, g, err := bench.GridStatus(args[0], now, stale)
				if err != nil {
					if errors.Is(err, bench.ErrMismatch) {
						return usageError{err}
					}
					return err
				}
				if a.json {
					return json.NewEncoder(a.stdout).Encode(struct {
						bench.GridSettings
						Shards []bench.ShardStatus `json:"shards"`
					}{g, sts})
				}
				return bench.WriteGridStatus(a.stdout, g, sts, now)
			}
			sts, settings, err := bench.Status(args[0], now, stale)
			if err != nil {
				if errors.Is(err, bench.ErrMismatch) {
					return usageError{err}
				}
				return err
			}
			if a.json {
				return json.NewEncoder(a.stdout).Encode(struct {
					bench.Settings
					Shards []bench.ShardStatus `json:"shards"`
				}{settings, sts})
			}
			return bench.WriteStatus(a.stdout, settings, sts, now)
		},
	}
	cmd.Flags().DurationVar(&stale, "stale", 2*time.Minute, "a shard whose file was written within this long counts as running")
	cmd.Flags().BoolVar(&a.json, "json", false, "print the settings and every shard as one JSON object")
	return cmd
}

// isGridResults reports whether a results file, or the first shard file of a results folder,
// was written by a grid run. Anything it cannot tell about is left to the reader that follows.
func isGridResults(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, nil
	}
	if fi.IsDir() {
		files, _, err := bench.ListDir(path)
		if err != nil {
			return false, nil
		}
		path = files[0].Path
	}
	return bench.IsGridFile(path)
}

func (a *benchCmd) printSummary(sum bench.Summary) error {
	if a.json {
		return json.NewEncoder(a.stdout).Encode(sum)
	}
	return sum.WriteText(a.stdout)
}

// runBench opens the session and makes the shard's decisions (session/bench does the work;
// this wires flags, stderr and progress to it).
func (a *benchCmd) runBench(cmd *cobra.Command, ds *bench.Dataset, sh bench.Shard, out string, logEvery int) error {
	stderr := &syncWriter{w: a.stderr}
	bt, err := a.benchTarget(cmd)
	if err != nil {
		return err
	}
	defer bt.close()
	settings := bt.settings
	settings.Layout, settings.Metric, settings.Total = ds.Layout, a.metric, len(ds.Tasks)
	if bt.meaningless != "" {
		fmt.Fprintf(stderr, "diffsim: warning: layer %s: %s\n", bt.layerLabel, bt.meaningless)
	}
	run := &bench.Run{
		Scorer: bt.scorer, Dataset: ds, Settings: settings, Layer: settings.LayerIndex, T: settings.T, Metric: bt.metric,
		Shard: sh, Out: out, Log: stderr,
	}
	if bt.local != nil {
		run.PrefetchLayers = bt.local.PrefetchLayers
	}
	label := ds.Layout
	if sh.N > 1 {
		label += " shard " + sh.String()
	}
	var finish func()
	run.Progress, finish = a.benchProgress(stderr, label, "", logEvery, func(done, total int) {
		a.benchStart(stderr, ds, sh, out, done, total)
	})
	before := bt.scorer.Stats()
	start := time.Now()
	res, err := run.Do(cmd.Context())
	finish()
	if res.Made > 0 && !a.quiet {
		after := bt.scorer.Stats()
		where := "here"
		if bt.scorer.Info().Caps.Served {
			where = "on the server"
		}
		fmt.Fprintf(stderr, "diffsim: made %d decisions in %s; %d images through the network in %d batched forwards %s\n",
			res.Made, roundTook(time.Since(start)), after.Extracted-before.Extracted, after.Forwards-before.Forwards, where)
	}
	if err != nil && !res.Interrupted {
		if errors.Is(err, bench.ErrMismatch) {
			return usageError{err}
		}
		if out != "" && res.Resumed+res.Made > 0 {
			fmt.Fprintf(stderr, "diffsim: %d decisions are saved in %s; run the same command again to resume\n", res.Resumed+res.Made, out)
		}
		return err
	}
	if sh.N > 1 && !res.Interrupted && !a.quiet {
		fmt.Fprintf(stderr, "diffsim: shard %s of %s done; combine the shards with: diffsim bench merge DIR (or FILES…)\n", sh, ds.Layout)
	}
	if err := a.printSummary(res.Summary); err != nil {
		return err
	}
	if res.Interrupted {
		kept := res.Resumed + res.Made
		if out != "" {
			fmt.Fprintf(stderr, "diffsim: interrupted after %d of %d decisions; they are saved in %s; run the same command again to resume\n", kept, res.InShard, out)
		} else {
			fmt.Fprintf(stderr, "diffsim: interrupted after %d of %d decisions; nothing was saved (give --out FILE.jsonl to make runs resumable)\n", kept, res.InShard)
		}
		return err
	}
	return nil
}

// benchProgress shows a run's progress: a bar where a person watches, lines (one every
// logEvery units) where a job log collects them. start is called once, before the first
// update, with where the run starts; finish removes the bar.
func (a *benchCmd) benchProgress(w io.Writer, label, unit string, logEvery int, start func(done, total int)) (update func(done, total int), finish func()) {
	var bar *progress
	var lines *bench.ProgressLines
	started, shown := false, 0
	update = func(done, total int) {
		if !started {
			started, shown = true, done
			start(done, total)
			switch {
			case a.quiet:
			case a.stderrIsTerminal():
				bar = a.newProgress(label, total, done)
			default:
				lines = &bench.ProgressLines{W: w, Label: label, Unit: unit, Every: logEvery}
			}
		}
		if bar != nil {
			bar.Add(done - shown)
			shown = done
		}
		if lines != nil {
			lines.Update(done, total)
		}
	}
	finish = func() {
		if bar != nil {
			bar.Close()
		}
	}
	return update, finish
}

// benchTarget is what a bench run scores with: the command's one scorer (here or served),
// and the settings its results file records.
type benchTarget struct {
	scorer      api.Scorer
	local       *session.Session // the scorer when it computes here; nil when a server does
	settings    bench.Settings   // the model's part: model, layer, t, step, size, seed, conditioning
	metric      api.Metric
	layerLabel  string
	meaningless string // why every pair scores 1 at the layer (api.Layer.Meaningless); "" when not
	close       func() error
}

// benchTarget opens the scorer and resolves the layer, t and metric on its model, so the
// results file's settings are the same whether a server scores or this process does.
func (a *benchCmd) benchTarget(cmd *cobra.Command) (benchTarget, error) {
	sc, local, err := a.open(cmd, nil)
	if err != nil {
		return benchTarget{}, err
	}
	tg, err := sc.Resolve(a.selection())
	if err != nil {
		return benchTarget{}, errors.Join(err, sc.Close())
	}
	info, cond := sc.Info(), sc.Conditioning()
	layer := info.Layers[tg.Layer]
	return benchTarget{
		scorer: sc, local: local, metric: tg.Metric, layerLabel: layer.Label(), meaningless: layer.Meaningless(),
		settings: bench.Settings{
			Model: info.Name, Layer: layer.Name, LayerIndex: tg.Layer, T: tg.T, Step: stepOf(info, tg.T),
			Size: info.Size, Seed: info.Seed, Prompt: cond.Prompt, CFG: cond.CFG,
		},
		close: sc.Close,
	}, nil
}

// benchStart says what the run will do, once its results file has been read.
func (a *benchCmd) benchStart(w io.Writer, ds *bench.Dataset, sh bench.Shard, out string, done, inShard int) {
	if a.quiet {
		return
	}
	if len(ds.Notes) > 0 {
		fmt.Fprintf(w, "diffsim: %s: %s\n", ds.Layout, strings.Join(ds.Notes, "; "))
	}
	msg := fmt.Sprintf("diffsim: %s: %d decisions", ds.Layout, len(ds.Tasks))
	if sh.N > 1 {
		msg += fmt.Sprintf(", %d in shard %s", inShard, sh)
	}
	if done > 0 {
		msg += fmt.Sprintf(", %d already in %s, %d to make", done, out, inShard-done)
	}
	fmt.Fprintln(w, msg)
}

// stderrIsTerminal reports whether progress can be a bar (redrawn in place) rather than lines.
func (a *benchCmd) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stepOf is the reference's step index for t, 0 for models without timesteps (as score prints).
func stepOf(info api.ModelInfo, t int) int {
	if !info.Timesteps {
		return 0
	}
	return schedule.TToStep(t)
}
