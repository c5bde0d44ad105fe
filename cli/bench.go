package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/bench"
)

// benchCmd is `diffsim bench` and `bench merge`. Its methods keep the receiver name a: the
// bench command moved here from the repository root unchanged, and is being reworked apart.
type benchCmd struct {
	scoring
	json bool
}

func newBenchCmd(app *app) *cobra.Command {
	a := &benchCmd{scoring: scoring{app: app}}
	var out, shard, split string
	var sampleSeed uint64
	var maxN, minVotes int
	cmd := &cobra.Command{
		Use:   "bench LAYOUT PATH",
		Short: "Accuracy on a benchmark (triplet, 2afc, nights, tid2013); resumable, shardable",
		Long: `bench makes every decision of a benchmark (is A or B more similar to the reference?) at one
layer, timestep and metric, and prints the accuracy with its 95% Wilson confidence interval.

Layouts:
  triplet  PATH/CLASS/…images: each ordered pair of one class (anchor, positive) against a
           negative drawn from another class; --sample-seed fixes the draw and the order,
           --max N keeps the first N decisions (a fair sample).
  2afc     a CSV with reference, A, B and the human choice, columns found by name
           (ref/reference, a/left, b/right, choice/human/winner; a|b, left|right, 0|1, a
           vote fraction for B, or the chosen path); paths relative to the CSV.
  nights   NIGHTS (DreamSim): PATH/data.csv with ref_path, left_path, right_path, left_vote,
           right_vote, votes, split. The human choice is the side with more votes (ties left
           out); --split test|val|train|all; --min-votes 6 as DreamSim's loader (0: all rows).
  tid2013  TID2013: iXX_YY_Z.bmp distorted images and IXX.BMP references anywhere under PATH;
           one decision per reference and distortion: level 2 is closer than level 3.

--out FILE.jsonl records each decision as one JSON line the moment it is made; running the
same command again resumes, skipping the decisions already there. --shard I/N makes only
decisions whose index mod N is I (one per job of a Slurm or Kubernetes array); 'diffsim
bench merge' combines the shard files into exactly the single run's result. Ctrl-C stops
after the decision in flight (a second Ctrl-C abandons it); what was made is kept.`,
		Example: `  diffsim bench triplet styles/ --t 101 --out sref.jsonl
  diffsim bench nights nights/ --step 500 --layer Up0 --shard 0/8 --out nights-0.jsonl
  diffsim bench merge nights-*.jsonl --out nights.jsonl
  diffsim bench tid2013 tid2013/ --json`,
		Args: exactArgs(2, "a layout and a path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sh, err := bench.ParseShard(shard)
			if err != nil {
				return usageError{err}
			}
			if maxN < 0 {
				return usagef("--max %d: want a positive count, or 0 for all", maxN)
			}
			ds, err := bench.Load(args[0], args[1], bench.Options{SampleSeed: sampleSeed, Max: maxN, Split: split, MinVotes: minVotes})
			if err != nil {
				if errors.Is(err, bench.ErrLayout) {
					return usageError{err}
				}
				return err
			}
			return a.runBench(cmd, ds, sh, out)
		},
	}
	f := cmd.Flags()
	a.modelFlags.register(f, true)
	f.StringVar(&out, "out", "", "record every decision in this JSONL file; a rerun resumes from it")
	f.StringVar(&shard, "shard", "0/1", "make only shard I of N (decision index mod N = I)")
	f.Uint64Var(&sampleSeed, "sample-seed", 1, "triplet: seed of the negatives drawn and of the decision order")
	f.IntVar(&maxN, "max", 0, "make at most this many decisions (the first N; triplet: a seeded sample); 0 = all")
	f.StringVar(&split, "split", "test", "nights: the split to evaluate: test, val, train or all")
	f.IntVar(&minVotes, "min-votes", 6, "nights: keep triplets with at least this many votes (DreamSim's filter); 0 = all")
	f.BoolVar(&a.json, "json", false, "print the summary as one JSON object")
	inGroup(f, groupOutput, "json")
	cmd.AddCommand(a.benchMergeCommand())
	return cmd
}

func (a *benchCmd) benchMergeCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge FILE.jsonl…",
		Short: "Combine the --out files of bench shards into one result",
		Long: `merge reads the results files of bench shards (a torn last line is ignored), checks that
they were made with the same settings, and prints the summary a single run would have
printed. --out writes the decisions sorted by index: the single run's results file.`,
		Example: `  diffsim bench merge nights-*.jsonl --out nights.jsonl --json`,
		Args:    minArgs(1, "results files"),
		RunE: func(cmd *cobra.Command, args []string) error {
			recs, settings, err := bench.Merge(args)
			if err != nil {
				if errors.Is(err, bench.ErrMismatch) {
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
	cmd.Flags().BoolVar(&a.json, "json", false, "print the summary as one JSON object")
	return cmd
}

func (a *benchCmd) printSummary(sum bench.Summary) error {
	if a.json {
		return json.NewEncoder(a.stdout).Encode(sum)
	}
	return sum.WriteText(a.stdout)
}

// runBench makes the shard's decisions that are not in the results file yet, in index order.
func (a *benchCmd) runBench(cmd *cobra.Command, ds *bench.Dataset, sh bench.Shard, out string) error {
	stderr := &syncWriter{w: a.stderr}
	ctx := cmd.Context()
	tg, err := a.openTarget(cmd, nil)
	if err != nil {
		return err
	}
	defer tg.s.Close()
	s, info, layer, t := tg.s, tg.info, tg.layer, tg.t
	metric := session.Metric(a.metric)
	settings := bench.Settings{
		Layout: ds.Layout, Model: info.Name, Layer: info.Layers[layer].Name, LayerIndex: layer,
		T: t, Step: stepOf(info, t), Metric: a.metric, Size: info.Size, Seed: info.Seed, Total: len(ds.Tasks),
		Prompt: s.Conditioning().Prompt, CFG: s.Conditioning().CFG,
	}
	if !info.Layers[layer].ImageKV {
		fmt.Fprintf(stderr, "diffsim: warning: layer %s is cross-attention on text; every pair scores 1 there\n", info.Layers[layer].Label())
	}
	done := map[int]bench.Decision{}
	var res *bench.Results
	if out != "" {
		res, done, err = bench.OpenResults(out, settings, ds.Tasks)
		if err != nil {
			if errors.Is(err, bench.ErrMismatch) {
				return usageError{err}
			}
			return err
		}
		defer res.Close()
	}
	var todo []bench.Task
	inShard := 0
	for _, task := range ds.Tasks {
		if !sh.Has(task.Index) {
			continue
		}
		inShard++
		if _, ok := done[task.Index]; !ok {
			todo = append(todo, task)
		}
	}
	if !a.quiet {
		if len(ds.Notes) > 0 {
			fmt.Fprintf(stderr, "diffsim: %s: %s\n", ds.Layout, strings.Join(ds.Notes, "; "))
		}
		msg := fmt.Sprintf("diffsim: %s: %d decisions", ds.Layout, len(ds.Tasks))
		if sh.N > 1 {
			msg += fmt.Sprintf(", %d in shard %s", inShard, sh)
		}
		if len(done) > 0 {
			msg += fmt.Sprintf(", %d already in %s, %d to make", len(done), out, len(todo))
		}
		fmt.Fprintln(stderr, msg)
	}

	// A first signal lets the decision in flight finish; a second abandons it.
	scoreCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	finished := make(chan struct{})
	var watcher sync.WaitGroup
	defer func() { close(finished); watcher.Wait() }() // nothing writes to stderr after we return
	watcher.Go(func() {
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(sig)
		fmt.Fprintln(stderr, "diffsim: stopping after the decision in flight (interrupt again to abandon it)")
		select {
		case <-sig:
			abandon()
		case <-finished:
		}
	})

	bar := a.newProgress(ds.Layout, inShard, inShard-len(todo))
	defer bar.Close()
	images := imageCache{s: s, m: map[string]*session.Image{}}
	made := 0
	var runErr error
	for _, task := range todo {
		if ctx.Err() != nil {
			break
		}
		d, err := decide(scoreCtx, s, &images, ds, task, layer, t, metric, settings)
		if err != nil {
			if scoreCtx.Err() == nil {
				runErr = fmt.Errorf("decision %d (%s): %w", task.Index, task.ID, err)
			}
			break
		}
		if d.Skipped != "" {
			fmt.Fprintf(stderr, "diffsim: skipped decision %d: %s\n", task.Index, d.Skipped)
		}
		if res != nil {
			if err := res.Write(d); err != nil {
				runErr = err
				break
			}
		}
		done[task.Index] = d
		made++
		bar.Add(1)
		if hook, ok := ctx.Value(afterDecisionKey{}).(func(made int)); ok {
			hook(made)
		}
	}
	bar.Close()
	if err := res.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		if out != "" {
			fmt.Fprintf(stderr, "diffsim: %d decisions are saved in %s; run the same command again to resume\n", len(done), out)
		}
		return runErr
	}

	mine := make([]bench.Decision, 0, len(done))
	for _, task := range ds.Tasks {
		if d, ok := done[task.Index]; ok && sh.Has(task.Index) {
			mine = append(mine, d)
		}
	}
	sum := bench.Summarize(settings, mine)
	interrupted := ctx.Err() != nil && made < len(todo)
	if sh.N > 1 && !interrupted {
		fmt.Fprintf(stderr, "diffsim: shard %s of %s done; combine the shards with: diffsim bench merge FILES… (this summary covers this shard only)\n", sh, ds.Layout)
	}
	if err := a.printSummary(sum); err != nil {
		return err
	}
	if interrupted {
		if out != "" {
			fmt.Fprintf(stderr, "diffsim: interrupted after %d of %d decisions; they are saved in %s; run the same command again to resume\n", len(mine), inShard, out)
		} else {
			fmt.Fprintf(stderr, "diffsim: interrupted after %d of %d decisions; nothing was saved (give --out FILE.jsonl to make runs resumable)\n", len(mine), inShard)
		}
		return ctx.Err()
	}
	return nil
}

// afterDecisionKey carries, in tests, a func(made int) called after each decision is saved:
// the way to interrupt a run at an exact point.
type afterDecisionKey struct{}

// decide scores one task. Unreadable images make a skipped decision; other errors end the run.
func decide(ctx context.Context, s *session.Session, images *imageCache, ds *bench.Dataset, task bench.Task, layer, t int, m session.Metric, st bench.Settings) (bench.Decision, error) {
	var imgs [3]*session.Image
	for i, p := range []string{task.Ref, task.A, task.B} {
		img, err := images.load(ds.Path(p))
		if err != nil {
			if session.IsUnreadable(err) {
				return bench.Skip(task, oneLine(err), st), nil
			}
			return bench.Decision{}, err
		}
		imgs[i] = img
	}
	ref, a, b := imgs[0], imgs[1], imgs[2]
	// The three images' missing features come from one batched run.
	if err := s.PrefetchImages(ctx, t, ref, a, b); err != nil {
		return bench.Decision{}, err
	}
	ra, err := s.Score(ctx, session.Request{A: ref, B: a, Layer: layer, T: t, Metric: m, Token: -1})
	if err != nil {
		return bench.Decision{}, err
	}
	rb, err := s.Score(ctx, session.Request{A: ref, B: b, Layer: layer, T: t, Metric: m, Token: -1})
	if err != nil {
		return bench.Decision{}, err
	}
	return bench.Decide(task, ra.Score, rb.Score, m.HigherIsMoreSimilar(), st), nil
}

// imageCache keeps the last few decoded images: references repeat across neighbouring
// decisions (TID2013 asks 24 in a row about one reference).
type imageCache struct {
	s *session.Session
	m map[string]*session.Image
}

func (c *imageCache) load(path string) (*session.Image, error) {
	if img, ok := c.m[path]; ok {
		return img, nil
	}
	img, err := c.s.Load(path)
	if err != nil {
		return nil, err
	}
	if len(c.m) >= 8 {
		clear(c.m)
	}
	c.m[path] = img
	return img, nil
}

// stepOf is the reference's step index for t, 0 for models without timesteps (as score prints).
func stepOf(info session.ModelInfo, t int) int {
	if !info.Timesteps {
		return 0
	}
	return features.TToStep(t)
}
