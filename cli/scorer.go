package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/serve"
)

// registerNoServer adds --no-server to a command that a running `diffsim serve` can answer.
func (c *scoring) registerNoServer(f *pflag.FlagSet) {
	c.servable = true
	f.BoolVar(&c.noServer, "no-server", false, "compute in this process even when diffsim serve is running")
	inGroup(f, groupCommon, "no-server")
}

// scorer checks the flags and opens the one api.Scorer the command scores with, choosing
// once where it computes: a running `diffsim serve` (serve.Remote) when the command may use
// one and one answers, else a session in this process. The device notice is said once, either
// way. progress, when set, hears a local session's network runs.
//
// A server that answers but cannot take the model (out of memory, an internal error, a server
// older than this client) is said on stderr and the command computes here; a model, flag or
// image the server refuses as bad (a 4xx) fails as it would here.
func (c *scoring) scorer(cmd *cobra.Command, progress func(api.Progress)) (api.Scorer, error) {
	sc, _, err := c.open(cmd, progress)
	return sc, err
}

// open is scorer that also returns the session when the command computes in this process
// (nil when a server answers), for work that manages the session's memory itself (a grid
// run drops the features of images it is done with).
func (c *scoring) open(cmd *cobra.Command, progress func(api.Progress)) (api.Scorer, *session.Session, error) {
	if err := c.checkFlags(cmd); err != nil {
		return nil, nil, err
	}
	spec := c.spec()
	if cl := c.server(cmd); cl != nil {
		r, err := serve.OpenRemote(cmd.Context(), cl, spec)
		var ae *api.Error
		switch {
		case err == nil:
			r.Images = c.images.limits()
			c.notice(r.Info())
			return r, nil, nil
		case cmd.Context().Err() != nil:
			return nil, nil, cmd.Context().Err()
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			// A server from before these calls (the same API version, fewer endpoints).
			if !c.quiet {
				what := "`" + cmd.CommandPath() + "`"
				if !cmd.HasParent() {
					what = "explorer"
				}
				fmt.Fprintf(c.stderr, "diffsim: the running diffsim server is older than this %s (no /v1/info); computing here (restart `diffsim serve` to share its models)\n", what)
			}
		case errors.As(err, &ae) && ae.BadRequest():
			return nil, nil, err
		case !c.quiet:
			fmt.Fprintf(c.stderr, "diffsim: the diffsim server could not open the model (%v); computing here\n", oneLine(err))
		}
	}
	s, err := session.Open(cmd.Context(), session.Options{
		Spec: spec, Library: c.ortLib, OnProgress: progress,
		GraphCache: graphCacheNoticing(c.notices()), Images: c.images.limits(),
		Families: families.All(),
		// Headless commands run the network cut down to the layers they score; the explorer
		// (`diffsim A B`, `diffsim explore`) needs every layer for its bars.
		Prune:      cmd.Name() != "explore" && cmd.HasParent(),
		PruneFirst: c.pruneFirst,
		// A benchmark decides by its metric and records no global embedding: a vision model
		// may then run cut down too.
		NoGlobal: isBench(cmd),
	})
	if err != nil {
		if errors.Is(err, engine.ErrNoLibrary) {
			return nil, nil, fmt.Errorf("%v", err)
		}
		return nil, nil, err
	}
	c.notice(s.Info())
	return s, s, nil
}

// notice says once why the device is not the one asked for.
func (c *scoring) notice(info api.ModelInfo) {
	if info.Notice != "" && !c.quiet {
		fmt.Fprintln(c.stderr, "diffsim:", info.Notice)
	}
}

// server returns a client of the running `diffsim serve`, or nil when the command computes
// itself: a command without --no-server, --no-server, an explicit --ort-lib (the server has
// its own library), or no server answering. A server that answers but cannot be used is said
// so on stderr.
func (c *scoring) server(cmd *cobra.Command) *api.Client {
	if !c.servable || c.noServer || cmd.Flags().Changed("ort-lib") {
		return nil
	}
	cl, err := api.Dial(cmd.Context(), serve.SocketPath(), buildID())
	if err != nil {
		if !errors.Is(err, api.ErrNoServer) && !c.quiet {
			fmt.Fprintf(c.stderr, "diffsim: %v; computing here\n", oneLine(err))
		}
		return nil
	}
	if v := os.Getenv("DIFFSIM_SERVER_STALL"); v != "" {
		// How long a request waits for a server that answers no heartbeat (api.DefaultStall).
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			cl.SetStall(d)
		} else if !c.quiet {
			fmt.Fprintf(c.stderr, "diffsim: DIFFSIM_SERVER_STALL=%q is not a duration such as 30s; waiting %v for a stalled server\n", v, api.DefaultStall)
		}
	}
	return cl
}

// isBench reports whether cmd is bench or one of its subcommands.
func isBench(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if c.Name() == "bench" && c.HasParent() && !c.Parent().HasParent() {
			return true
		}
	}
	return false
}
