package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/serve"
)

func (a *app) serveCommand() *cobra.Command {
	var socket, httpAddr, maxMemory string
	var keepAlive time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Keep models loaded for score, sweep, rank and other languages (JSON API)",
		Long: `serve keeps models loaded between commands, as ollama does for language models. While it
runs, score, sweep and rank send their work to it (--no-server computes in the command
instead), so a model loads once rather than once per command. Other languages use its
JSON API (v1) over the Unix socket or, with --http, over HTTP on loopback:

  GET /v1/health   GET /v1/models   POST /v1/score   POST /v1/sweep   POST /v1/rank

A model is unloaded after --keep-alive without requests (a request's "keep_alive" overrides
it), and idle models are unloaded, least recently used first, to stay under --max-memory.
Concurrent requests for the same model and timestep share one batched forward.`,
		Example: `  diffsim serve &
  diffsim score a.png b.png --model sd15          # answered by the server
  diffsim serve --http 127.0.0.1:11435 --keep-alive 30m --max-memory 20GB
  curl -s --unix-socket $XDG_RUNTIME_DIR/diffsim/serve.sock http://diffsim/v1/models`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			maxBytes, err := parseBytes(maxMemory)
			if err != nil {
				return usagef("--max-memory %q: %v", maxMemory, err)
			}
			if socket == "" {
				socket = serve.SocketPath()
			}
			ul, err := serve.ListenUnix(socket)
			if err != nil {
				return err
			}
			listeners := []net.Listener{ul}
			where := "unix:" + socket
			if httpAddr != "" {
				hl, err := serve.ListenHTTP(httpAddr)
				if err != nil {
					ul.Close()
					return usageError{err}
				}
				listeners = append(listeners, hl)
				where += ", http://" + hl.Addr().String()
			}
			srv := serve.New(serve.Config{
				Base:      session.Options{Library: a.ortLib, GraphCache: graphCache()},
				KeepAlive: keepAlive, MaxBytes: maxBytes, Version: version,
			})
			if !a.quiet {
				fmt.Fprintf(a.stderr, "diffsim: serving API v%d on %s (keep-alive %v); Ctrl-C stops\n", serve.APIVersion, where, keepAlive)
			}
			err = srv.Serve(cmd.Context(), listeners...)
			if !a.quiet {
				fmt.Fprintln(a.stderr, "diffsim: server stopped")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "socket", "", "Unix socket (default $DIFFSIM_SOCKET, else $XDG_RUNTIME_DIR/diffsim/serve.sock)")
	f.StringVar(&httpAddr, "http", "", "also serve HTTP on ADDR (a bare :PORT means 127.0.0.1:PORT)")
	f.DurationVar(&keepAlive, "keep-alive", serve.DefaultKeepAlive, "how long an idle model stays loaded (negative: until the server stops)")
	f.StringVar(&maxMemory, "max-memory", "0", "memory bound over all loaded models, e.g. 20GB (0: none)")
	return cmd
}

func (a *app) cacheCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache [list | clean]",
		Short: "ONNX Runtime's optimized graphs kept between runs: list them, or clean them out",
		Long: `Large models (Stable Diffusion's U-Net) are optimized by ONNX Runtime once and the result is
kept in diffsim's cache folder, so the next start skips most of the work. Entries are keyed
by the model's bytes and weight files, the runtime version, the device and the CPU; the
least recently used go first beyond $DIFFSIM_GRAPH_CACHE_MAX (default 16GB).
DIFFSIM_GRAPH_CACHE=off turns the cache off.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := engine.DefaultGraphCacheDir()
			if len(args) == 1 && args[0] == "clean" {
				freed, err := engine.CleanGraphCache(dir)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "removed %s of optimized graphs from %s\n", humanBytes(freed), dir)
				return nil
			}
			if len(args) == 1 && args[0] != "list" {
				return usagef("cache %q: want list or clean", args[0])
			}
			entries, err := engine.ListGraphCache(dir)
			if err != nil {
				return err
			}
			var total int64
			for _, e := range entries {
				total += e.Bytes
				fmt.Fprintf(a.stdout, "%s  %9s  used %s  %s %s  %s\n", e.Key[:12], humanBytes(e.Bytes), e.LastUsed.Format(time.DateTime), e.Runtime, e.Device, e.Model)
			}
			limit := int64(engine.DefaultGraphCacheBytes)
			if gc := graphCache(); gc != nil && gc.MaxBytes > 0 {
				limit = gc.MaxBytes
			}
			fmt.Fprintf(a.stdout, "%d optimized graph(s), %s of %s in %s\n", len(entries), humanBytes(total), humanBytes(limit), dir)
			return nil
		},
	}
	return cmd
}

// graphCache is the optimized-graph cache the commands use: on, in diffsim's cache folder,
// unless DIFFSIM_GRAPH_CACHE=off; DIFFSIM_GRAPH_CACHE_MAX bounds it.
func graphCache() *engine.GraphCache {
	switch strings.ToLower(os.Getenv("DIFFSIM_GRAPH_CACHE")) {
	case "off", "0", "false", "no":
		return nil
	}
	gc := &engine.GraphCache{Dir: engine.DefaultGraphCacheDir()}
	if v := os.Getenv("DIFFSIM_GRAPH_CACHE_MAX"); v != "" {
		if n, err := parseBytes(v); err == nil && n > 0 {
			gc.MaxBytes = n
		}
	}
	return gc
}

// parseBytes reads a size: a number of bytes, or with KB/MB/GB/TB (powers of 1000) or
// KiB/MiB/GiB/TiB (powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, errors.New("want a size such as 20GB, 512MiB or 0")
	}
	return int64(v * mult), nil
}

// server returns a client of the running `diffsim serve`, or nil when the command should
// compute itself: --no-server, an explicit --ort-lib (the server has its own library), or no
// server answering. A server that answers but cannot be used is said so on stderr.
func (a *app) server(cmd *cobra.Command) *serve.Client {
	if a.noServer || cmd.Flags().Changed("ort-lib") {
		return nil
	}
	c, err := serve.Dial(cmd.Context(), serve.SocketPath())
	if err != nil {
		if !errors.Is(err, serve.ErrNoServer) && !a.quiet {
			fmt.Fprintf(a.stderr, "diffsim: %v; computing here\n", oneLine(err))
		}
		return nil
	}
	return c
}

// spec is the model the flags choose, as the server names it.
func (a *app) spec(cmd *cobra.Command) serve.Spec {
	seed := a.seed
	s := serve.Spec{Model: a.model, Size: a.size, Seed: &seed, Device: a.device, Prompt: a.prompt, CFG: a.cfg,
		IPAdapter: a.ipAdapter, ImageEncoder: a.imageEncoder}
	if cmd.Flags().Changed("ip-scale") {
		v := a.ipScale
		s.IPScale = &v
	}
	return s
}

func (a *app) selection() serve.Select {
	sel := serve.Select{Layer: a.layer, Step: a.step, Metric: a.metric}
	if a.t >= 0 {
		t := a.t
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

// scoreRemote is `score` answered by the server: the same output, byte for byte.
func (a *app) scoreRemote(ctx context.Context, cmd *cobra.Command, c *serve.Client, args []string) error {
	r, err := c.Score(ctx, serve.ScoreRequest{Spec: a.spec(cmd), Select: a.selection(), ImageA: args[0], ImageB: args[1]})
	if err != nil {
		return remoteErr(err)
	}
	if r.Notice != "" && !a.quiet {
		fmt.Fprintln(a.stderr, "diffsim:", r.Notice)
	}
	nan := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	out := scoreJSON{
		Model: r.Model, ModelDescription: r.ModelDescription, Layer: r.Layer, LayerShort: r.LayerShort, LayerIndex: r.LayerIndex,
		T: r.T, Step: r.Step, Metric: r.Metric, Score: nan(r.Score), AtoB: nan(r.AtoB), BtoA: nan(r.BtoA),
		HigherIsMoreSimilar: r.HigherIsMoreSimilar, Meaningless: r.Meaningless,
		FeatureCosine: r.FeatureCosine, GlobalCosine: r.GlobalCosine,
		Size: r.Size, Seed: r.Seed, Device: r.Device, ImageA: args[0], ImageB: args[1], Prompt: r.Prompt, CFG: r.CFG,
	}
	return a.printScore(out, r.LayerLabel)
}
