package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/serve"
)

// registerNoServer adds --no-server to a command that a running `diffsim serve` can answer.
func (c *scoring) registerNoServer(f *pflag.FlagSet) {
	f.BoolVar(&c.noServer, "no-server", false, "compute in this process even when diffsim serve is running")
	inGroup(f, groupCommon, "no-server")
}

// server returns a client of the running `diffsim serve`, or nil when the command computes
// itself: --no-server, an explicit --ort-lib (the server has its own library), or no server
// answering. A server that answers but cannot be used is said so on stderr. The flags are
// checked first either way, so bad usage reads the same with and without a server.
func (c *scoring) server(cmd *cobra.Command) (*serve.Client, error) {
	if err := c.checkFlags(cmd); err != nil {
		return nil, err
	}
	if c.noServer || cmd.Flags().Changed("ort-lib") {
		return nil, nil
	}
	cl, err := serve.Dial(cmd.Context(), serve.SocketPath(), buildID())
	if err != nil {
		if !errors.Is(err, serve.ErrNoServer) && !c.quiet {
			fmt.Fprintf(c.stderr, "diffsim: %v; computing here\n", oneLine(err))
		}
		return nil, nil
	}
	if v := os.Getenv("DIFFSIM_SERVER_STALL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, usagef("DIFFSIM_SERVER_STALL=%q: want a duration such as 30s (0: wait forever)", v)
		}
		cl.SetStall(d)
	}
	return cl, nil
}

// spec is the model the flags choose, as the server names it.
func (c *scoring) spec(cmd *cobra.Command) serve.Spec {
	seed := c.seed
	d := c.conditioning()
	s := serve.Spec{Model: c.model, Size: c.size, Seed: &seed, Device: c.device, Prompt: d.prompt, CFG: d.cfg,
		IPAdapter: d.ipAdapter, ImageEncoder: d.imageEncoder}
	if cmd.Flags().Changed("ip-scale") {
		v := d.ipScale
		s.IPScale = &v
	}
	return s
}

// selection is --layer, --t or --step, and --metric, as the server takes them.
func (c *scoring) selection() serve.Select {
	sel := serve.Select{Layer: c.layer, Metric: c.metric}
	switch {
	case c.step.set:
		sel.Step = c.step.v
	case c.t.set:
		t := c.t.v
		sel.T = &t
	}
	return sel
}

// remoteErr gives a server's answer the exit code the same failure has without a server.
func remoteErr(err error) error {
	var ae *serve.APIError
	if errors.As(err, &ae) && ae.BadRequest() {
		return usageError{err}
	}
	return err
}

// paths maps the absolute paths a server answers with back to the paths the user typed, so
// output through a server reads exactly as without one.
type paths map[string]string

func (p paths) add(typed string) {
	if abs, err := filepath.Abs(typed); err == nil {
		p[abs] = typed
	}
}

func (p paths) typed(abs string) string {
	if t, ok := p[abs]; ok {
		return t
	}
	return abs
}

func (p paths) record(r *session.Record) {
	r.ImageA, r.ImageB = p.typed(r.ImageA), p.typed(r.ImageB)
}

// scoreRemote is `score` answered by the server.
func (c *scoreCmd) scoreRemote(ctx context.Context, cmd *cobra.Command, cl *serve.Client, pathA, pathB string) error {
	r, err := cl.Score(ctx, serve.ScoreRequest{Spec: c.spec(cmd), Select: c.selection(), ImageA: pathA, ImageB: pathB})
	if err != nil {
		return remoteErr(err)
	}
	if r.Notice != "" && !c.quiet {
		fmt.Fprintln(c.stderr, "diffsim:", r.Notice)
	}
	p := paths{}
	p.add(pathA)
	p.add(pathB)
	p.record(&r.Record)
	if c.json {
		return json.NewEncoder(c.stdout).Encode(r.Record)
	}
	return writeScore(c.stdout, r.Record, r.LayerLabel)
}

// sweepRemote is `sweep` answered by the server.
func (c *sweepCmd) sweepRemote(ctx context.Context, cmd *cobra.Command, cl *serve.Client, pathA, pathB string, ts []int) (session.Sweep, error) {
	sw, err := cl.Sweep(ctx, serve.SweepRequest{Spec: c.spec(cmd), Layer: c.layer, Timesteps: ts, Metric: c.metric, ImageA: pathA, ImageB: pathB})
	if err != nil {
		return sw, remoteErr(err)
	}
	p := paths{}
	p.add(pathA)
	p.add(pathB)
	sw.ImageA, sw.ImageB = p.typed(sw.ImageA), p.typed(sw.ImageB)
	for i := range sw.Scores {
		p.record(&sw.Scores[i])
	}
	return sw, nil
}

// rankRemote is the ranking of `rank` answered by the server.
func (c *rankCmd) rankRemote(ctx context.Context, cmd *cobra.Command, cl *serve.Client, query string, files []string) (serve.RankResponse, error) {
	r, err := cl.Rank(ctx, serve.RankRequest{Spec: c.spec(cmd), Select: c.selection(), Query: query, Images: files})
	if err != nil {
		return r, remoteErr(err)
	}
	p := paths{}
	p.add(query)
	for _, f := range files {
		p.add(f)
	}
	for i := range r.Results {
		p.record(&r.Results[i].Record)
	}
	for i := range r.Skipped {
		abs := r.Skipped[i].Path
		r.Skipped[i].Path = p.typed(abs)
		if abs != r.Skipped[i].Path {
			r.Skipped[i].Error = replacePrefix(r.Skipped[i].Error, abs, r.Skipped[i].Path)
		}
	}
	return r, nil
}

func replacePrefix(s, old, repl string) string {
	if len(s) >= len(old) && s[:len(old)] == old {
		return repl + s[len(old):]
	}
	return s
}
