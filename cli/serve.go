package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/serve"
	"github.com/diffsim/diffsim/session/serve/sshserve"
)

// serveCmd is `diffsim serve`: warm models behind a JSON API.
type serveCmd struct {
	*app
	socket, httpAddr, maxMemory, ortLib string
	keepAlive                           time.Duration
	quiet, allowRemote                  bool
	allowOrigins                        []string
	maxQueue                            int
	images                              imageLimit
	ssh                                 sshFlags
}

// sshFlags are serve's SSH front: the explorer for every SSH session.
type sshFlags struct {
	addr, authorizedKeys, images, uploads, quota string
	open                                         bool
	maxSessions, perKey                          int
	idle                                         time.Duration
	model, device                                string
	size                                         int
}

// notices is where notices go: stderr, or nowhere with --quiet.
func (c *serveCmd) notices() io.Writer {
	if c.quiet {
		return nil
	}
	return c.stderr
}

func newServeCmd(a *app) *cobra.Command {
	c := &serveCmd{app: a}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Keep models loaded for the explorer, score, sweep, rank, bench and other languages (JSON API)",
		Long: `serve keeps models loaded between commands, as ollama does for language models. While it
runs, the explorer, score, sweep, rank and bench send their work to it (--no-server computes
in the command instead), so a model loads once rather than once per command. Other languages
use its JSON API (v1) over the Unix socket or, with --http, over HTTP on loopback:

  GET /v1/health   GET /v1/models   POST /v1/score   POST /v1/sweep   POST /v1/rank
  POST /v1/show (the model, layer and t a score would be taken with)
  POST /v1/info /v1/result /v1/layers /v1/prefetch /v1/cached /v1/stats (the explorer's)

A model is unloaded after --keep-alive without requests (a request's "keep_alive" overrides
it), and idle models are unloaded, least recently used first, to stay under --max-memory,
which bounds the models as loaded and run, their feature caches and the images of the
requests in flight; requests that do not fit wait, up to --max-queue of them, and the next is
answered 503 with Retry-After. Concurrent requests for the same model and timestep share one
batched forward.

The API answers only its own user: the socket's folder must be yours alone (mode 0700), HTTP
requests must name the listener's loopback address as their Host, requests from web pages
(an Origin header) are refused unless --allow-origin names the page's origin, and request
bodies must be application/json. --http on an address other machines can reach needs
--allow-remote, and then every request from another machine carries the bearer token kept in
~/.local/state/diffsim/serve-token (printed when it is made).

With --ssh, every SSH session with a terminal gets the explorer on the server's warm model
(--model): ssh -t -p PORT HOST A.png B.png, names inside --images; with no images, a picker.
Public keys from --authorized-keys (default ~/.ssh/authorized_keys) or, on a trusted classroom
network, any key with --ssh-open. scp and sftp upload into each key's own folder.`,
		Example: `  diffsim serve &
  diffsim score a.png b.png --model sd15          # answered by the server
  diffsim serve --http 127.0.0.1:11435 --keep-alive 30m --max-memory 20GB
  diffsim serve --ssh :2222 --images ~/class/images     # then: ssh -t -p 2222 localhost chelsea.png coffee.png
  curl -s --unix-socket $XDG_RUNTIME_DIR/diffsim/serve.sock http://diffsim/v1/models`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&c.socket, "socket", "", "Unix socket (default $DIFFSIM_SOCKET, else $XDG_RUNTIME_DIR/diffsim/serve.sock)")
	f.StringVar(&c.httpAddr, "http", "", "also serve HTTP on ADDR (a bare :PORT means 127.0.0.1:PORT)")
	f.BoolVar(&c.allowRemote, "allow-remote", false, "let --http listen on an address other machines reach (0.0.0.0, a LAN address); they must send the bearer token")
	f.StringSliceVar(&c.allowOrigins, "allow-origin", nil, "web origins whose pages may call the API, e.g. http://localhost:3000 (default: none)")
	f.IntVar(&c.maxQueue, "max-queue", serve.DefaultMaxQueue, "requests that may wait for room (memory, or a turn); more are answered 503 with Retry-After")
	c.images.register(f)
	f.DurationVar(&c.keepAlive, "keep-alive", serve.DefaultKeepAlive, "how long an idle model stays loaded (negative: until the server stops)")
	f.StringVar(&c.maxMemory, "max-memory", "0", "memory bound over all loaded models, e.g. 20GB (0: none)")
	f.StringVar(&c.ortLib, "ort-lib", "", "ONNX Runtime library (default: $ONNXRUNTIME_LIB, then the one scripts/setup-runtime.sh fetched)")
	f.BoolVar(&c.quiet, "quiet", false, "no notices on stderr")
	inGroup(f, groupCommon, "socket", "http", "allow-remote", "allow-origin", "keep-alive", "max-memory", "max-queue", "max-image", "ort-lib")
	c.ssh.register(f)
	inGroup(f, groupOutput, "quiet")
	return cmd
}

func (c *serveCmd) run(cmd *cobra.Command) error {
	socket, httpAddr, maxMemory, keepAlive := c.socket, c.httpAddr, c.maxMemory, c.keepAlive
	maxBytes, err := parseBytes(maxMemory)
	if err != nil {
		return usagef("--max-memory %q: %v", maxMemory, err)
	}
	if c.maxQueue < 1 {
		return usagef("--max-queue %d: want at least 1", c.maxQueue)
	}
	if c.allowRemote && httpAddr == "" {
		return usagef("--allow-remote is for --http: give the address to listen on, e.g. --http 0.0.0.0:11435")
	}
	for _, o := range c.allowOrigins {
		if !strings.Contains(o, "://") || strings.HasSuffix(o, "/") {
			return usagef("--allow-origin %q: want an origin as browsers send it, such as http://localhost:3000 (scheme, host and port, no path)", o)
		}
	}
	if err := c.ssh.check(cmd.Flags()); err != nil {
		return err
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
	var token string
	if httpAddr != "" {
		hl, err := serve.ListenHTTP(httpAddr, c.allowRemote)
		if err != nil {
			ul.Close()
			return usageError{err}
		}
		listeners = append(listeners, hl)
		where += ", http://" + hl.Addr().String()
		if !hl.Addr().(*net.TCPAddr).IP.IsLoopback() {
			var made bool
			path := serve.TokenPath()
			if token, made, err = serve.Token(path); err != nil {
				return errors.Join(err, ul.Close(), hl.Close())
			}
			// Printed once, when it is made: it is the key to every file this user can read.
			if made {
				fmt.Fprintf(c.stderr, "diffsim: requests from other machines need this bearer token (kept in %s):\n%s\n", path, token)
			} else if !c.quiet {
				fmt.Fprintf(c.stderr, "diffsim: requests from other machines need the bearer token in %s\n", path)
			}
		}
	}
	var sshSrv *sshserve.Server
	var sshLn net.Listener
	if c.ssh.addr != "" {
		if sshLn, err = sshserve.Listen(c.ssh.addr); err != nil {
			closeAll(listeners)
			return usageError{err}
		}
	}
	srv := serve.New(serve.Config{
		Base: session.Options{Library: c.ortLib, GraphCache: graphCacheNoticing(c.notices()), Families: families.All(),
			Prune: true, Images: c.images.limits()},
		KeepAlive: keepAlive, MaxBytes: maxBytes, MaxQueue: c.maxQueue, Version: buildID(),
		AllowOrigins: c.allowOrigins, Token: token,
	})
	if sshLn != nil {
		if sshSrv, err = c.ssh.server(srv, c.notices()); err != nil {
			closeAll(append(listeners, sshLn))
			return err
		}
	}
	if !c.quiet {
		fmt.Fprintf(c.stderr, "diffsim: serving API v%d on %s (keep-alive %v); Ctrl-C stops\n", api.Version, where, keepAlive)
		if sshSrv != nil {
			fmt.Fprintf(c.stderr, "diffsim: explorer over SSH on %s, model %s; %s\n", sshLn.Addr(), c.ssh.modelName(), sshSrv.Describe())
			fmt.Fprintf(c.stderr, "diffsim: host key %s; users type: ssh -t -p %s %s A.png B.png\n", sshSrv.Fingerprint(), port(sshLn.Addr()), c.ssh.hostHint(sshLn.Addr()))
		}
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	sshDone := make(chan error, 1)
	if sshSrv != nil {
		go func() {
			err := sshSrv.Serve(ctx, sshLn)
			if err != nil {
				cancel() // the API without its SSH front is not what was asked for
			}
			sshDone <- err
		}()
	} else {
		sshDone <- nil
	}
	err = errors.Join(srv.Serve(ctx, listeners...), func() error { cancel(); return <-sshDone }())
	if !c.quiet {
		fmt.Fprintln(c.stderr, "diffsim: server stopped")
	}
	return err
}

func (f *sshFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.addr, "ssh", "", "also serve the explorer over SSH on ADDR (a bare :PORT means 127.0.0.1:PORT; 0.0.0.0:PORT for the network)")
	fs.StringVar(&f.authorizedKeys, "authorized-keys", "", "public keys let in over SSH (default ~/.ssh/authorized_keys)")
	fs.BoolVar(&f.open, "ssh-open", false, "let any SSH key in: only for a classroom on a trusted network (said at start and in every session)")
	fs.StringVar(&f.images, "images", "", "folder SSH sessions name their images in (ssh -t … A.png B.png, or a picker)")
	fs.StringVar(&f.uploads, "uploads", "", "folder of each SSH key's uploads (default: in $DIFFSIM_STATE, else ~/.local/state/diffsim)")
	fs.StringVar(&f.quota, "upload-quota", "100MB", "bytes each SSH key may upload")
	fs.IntVar(&f.maxSessions, "ssh-max-sessions", sshserve.DefaultMaxSessions, "SSH sessions open at once, at most")
	fs.IntVar(&f.perKey, "ssh-per-key", sshserve.DefaultPerKey, "SSH sessions one key may have open")
	fs.DurationVar(&f.idle, "ssh-idle-timeout", sshserve.DefaultIdleTimeout, "close an SSH session after this long without a key press (negative: never)")
	fs.StringVar(&f.model, "model", "builtin", "the model SSH sessions explore (a name, folder or .onnx file)")
	fs.StringVar(&f.device, "device", "auto", "device for the SSH sessions' model: auto, cpu, cuda[:ID]")
	fs.IntVar(&f.size, "size", 0, "working size of the SSH sessions' model (0: its default)")
	inGroup(fs, groupSSH, "ssh", "authorized-keys", "ssh-open", "images", "uploads", "upload-quota", "ssh-max-sessions", "ssh-per-key", "ssh-idle-timeout", "model", "device", "size")
}

// check refuses SSH flags without --ssh (they would do nothing) and flags that contradict.
func (f *sshFlags) check(fs *pflag.FlagSet) error {
	var given []string
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed && fl.Name != "ssh" && len(fl.Annotations[groupKey]) > 0 && fl.Annotations[groupKey][0] == groupSSH {
			given = append(given, "--"+fl.Name)
		}
	})
	switch {
	case f.addr == "" && len(given) > 0:
		verb := "applies"
		if len(given) > 1 {
			verb = "apply"
		}
		return usagef("%s %s only to the SSH front: add --ssh ADDR (e.g. --ssh :2222)", strings.Join(given, ", "), verb)
	case f.open && fs.Changed("authorized-keys"):
		return usagef("--ssh-open lets any key in, so --authorized-keys would be ignored: give one of them")
	}
	return nil
}

// groupSSH is serve's SSH flags in its help.
const groupSSH = "SSH flags"

func (f *sshFlags) modelName() string {
	if f.model == "" {
		return "builtin"
	}
	return f.model
}

// server builds the SSH front over srv.
func (f *sshFlags) server(srv *serve.Server, log io.Writer) (*sshserve.Server, error) {
	quota, err := parseBytes(f.quota)
	if err != nil {
		return nil, usagef("--upload-quota %q: %v", f.quota, err)
	}
	state, err := sshserve.StateDir()
	if err != nil {
		return nil, err
	}
	model := f.model
	if strings.ContainsRune(model, os.PathSeparator) || strings.HasSuffix(model, ".onnx") {
		if model, err = filepath.Abs(model); err != nil {
			return nil, err
		}
	}
	spec := api.DefaultSpec()
	spec.Model, spec.Size, spec.Device = model, f.size, f.device
	s, err := sshserve.New(srv, sshserve.Config{
		StateDir: state, AuthorizedKeys: f.authorizedKeys, Open: f.open, Images: f.images, Uploads: f.uploads,
		UploadQuota: quota, MaxSessions: f.maxSessions, PerKey: f.perKey, IdleTimeout: f.idle,
		Spec: spec, Log: log,
	})
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// hostHint is the host users type: localhost for loopback, else the address given.
func (f *sshFlags) hostHint(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return "localhost"
	}
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return h
		}
	}
	host, _, _ := net.SplitHostPort(a.String())
	return host
}

func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func newCacheCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache [list | clean]",
		Short: "ONNX Runtime's optimized graphs kept between runs: list them, or clean them out",
		Long: `Large models (Stable Diffusion's U-Net) are optimized by ONNX Runtime once and the result is
kept in diffsim's cache folder, so the next start skips most of the work. Entries are keyed
by the model's bytes and weight files, the runtime version, the device and the CPU; the
least recently used go first beyond $DIFFSIM_GRAPH_CACHE_MAX (default 16GiB).
DIFFSIM_GRAPH_CACHE=off turns the cache off.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s takes list or clean, got %d arguments (see %s)", cmd.CommandPath(), len(args), helpRef(cmd))
			}
			return nil
		},
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
				key := e.Key
				if len(key) > 12 {
					key = key[:12]
				}
				fmt.Fprintf(a.stdout, "%-12s  %9s  used %s  %s %s  %s\n", key, humanBytes(e.Bytes), e.LastUsed.Format(time.DateTime), e.Runtime, e.Device, e.Model)
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

// graphCacheNoticing is graphCache with a notice on w when a model is first optimized and
// written (the one start that takes longer than ONNX Runtime alone); nil w says nothing.
func graphCacheNoticing(w io.Writer) *engine.GraphCache {
	gc := graphCache()
	if gc != nil && w != nil {
		dir := gc.Dir
		gc.OnWrite = func(size int64) {
			fmt.Fprintf(w, "diffsim: first start of this %s model here: optimizing it for this CPU and caching the result in %s (once; later starts load it in seconds)\n", humanBytes(size), dir)
		}
	}
	return gc
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
