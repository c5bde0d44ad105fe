package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrNoServer means no server answered: the caller works without one.
var ErrNoServer = errors.New("no diffsim server running")

// APIError is an error the server answered with.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// BadRequest reports whether the server blamed the request (a 4xx): the CLI's exit code 2.
func (e *APIError) BadRequest() bool { return e.Status >= 400 && e.Status < 500 }

// Client talks to a server.
type Client struct {
	http   *http.Client
	base   string
	socket string // the Unix socket, when the client uses one
	token  string // sent as a bearer token, when set
	// stall is how long a request may go without the server answering a heartbeat before the
	// client gives up on it (DefaultStall; tests shorten it).
	stall time.Duration

	mu   sync.Mutex
	peer Peer // the server process, from the socket's peer credentials
}

// Peer is the process at the other end of a Unix socket, as the kernel reports it.
type Peer struct {
	PID, UID int
}

// NewClient talks to the server on the Unix socket at path. Every connection is checked with
// the socket's peer credentials: a server run by another user is refused (ErrUnsafeSocket),
// whatever it answers.
func NewClient(path string) *Client {
	c := &Client{base: "http://diffsim", socket: path, stall: DefaultStall}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, err
		}
		p, err := peerCred(conn.(*net.UnixConn))
		if err == nil && p.UID != os.Getuid() {
			err = unsafeSocket("the diffsim server on %s runs as uid %d (pid %d), not as you (uid %d)", path, p.UID, p.PID, os.Getuid())
		}
		if err != nil {
			conn.Close()
			return nil, err
		}
		c.mu.Lock()
		c.peer = p
		c.mu.Unlock()
		return conn, nil
	}}
	c.http = &http.Client{Transport: tr}
	return c
}

// NewHTTPClient talks to the server at an HTTP address such as 127.0.0.1:11435.
func NewHTTPClient(addr string) *Client {
	return &Client{http: &http.Client{}, base: "http://" + addr, stall: DefaultStall}
}

// SetToken makes the client send token as its bearer token, which a server listening for
// other machines (--allow-remote) requires.
func (c *Client) SetToken(token string) { c.token = token }

// Peer is the server process the last connection reached (Unix sockets only).
func (c *Client) Peer() Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
}

// Socket is the Unix socket the client uses; "" over HTTP.
func (c *Client) Socket() string { return c.socket }

// dialWait bounds Dial: a server that does not answer its health in this time is stalled (or
// stopped), and the command computes itself.
const dialWait = 2 * time.Second

// Dial finds the server on the Unix socket at path, checking that it is safe to use (its
// folder is this user's alone, and so is the process: ErrUnsafeSocket), that it speaks this
// API, and, when version is not empty, that it is this build of diffsim (ErrOtherVersion; a
// server that does not say its version is not compared). ErrNoServer when none is there.
func Dial(ctx context.Context, path, version string) (*Client, error) {
	c, _, err := dial(ctx, path, version)
	return c, err
}

// ServerInfo is what a client learns of the server on a socket: the process (from the socket's
// peer credentials), and what it says of itself.
type ServerInfo struct {
	Socket  string
	PID     int
	Version string
	API     int
	Models  int
}

// Probe is Dial for `diffsim doctor`: what is known of the server on path, and why a command
// would not use it (nil when it would; ErrNoServer when none runs).
func Probe(ctx context.Context, path, version string) (ServerInfo, error) {
	_, info, err := dial(ctx, path, version)
	return info, err
}

func dial(ctx context.Context, path, version string) (*Client, ServerInfo, error) {
	info := ServerInfo{Socket: path}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, info, ErrNoServer
	}
	if err := checkSocketDir(filepath.Dir(path)); err != nil {
		return nil, info, err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return nil, info, unsafeSocket("%s is not a socket", path)
	}
	c := NewClient(path)
	ctx, cancel := context.WithTimeout(ctx, dialWait)
	defer cancel()
	h, err := c.Health(ctx)
	info.PID = c.Peer().PID
	if err != nil {
		var ae *APIError
		switch {
		case errors.As(err, &ae):
			return nil, info, fmt.Errorf("the diffsim server on %s: %w", path, err)
		case errors.Is(err, ErrUnsafeSocket):
			return nil, info, err
		case errors.Is(err, context.DeadlineExceeded):
			return nil, info, fmt.Errorf("the diffsim server on %s does not answer in %v (stopped, or stuck)", path, dialWait)
		}
		return nil, info, fmt.Errorf("%w (%s does not answer: %v)", ErrNoServer, path, err)
	}
	info.Version, info.API, info.Models = h.Version, h.API, h.Models
	if h.API != APIVersion {
		return nil, info, fmt.Errorf("the diffsim server on %s (pid %d) speaks API v%d, this client v%d; restart `diffsim serve` with this version, or pass --no-server", path, info.PID, h.API, APIVersion)
	}
	if version != "" && h.Version != "" && h.Version != version {
		return nil, info, kindError{fmt.Sprintf("the diffsim server on %s (pid %d) is another build of diffsim (%s; this one is %s); restart `diffsim serve` to share its models", path, info.PID, h.Version, version), ErrOtherVersion}
	}
	return c, info, nil
}

// ErrOtherVersion means the server is another build of diffsim: its answers could differ from
// this one's, so the command computes itself.
var ErrOtherVersion = errors.New("another diffsim version")

// Health asks GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
}

// Models asks GET /v1/models.
func (c *Client) Models(ctx context.Context) (ModelsResponse, error) {
	var m ModelsResponse
	return m, c.do(ctx, http.MethodGet, "/v1/models", nil, &m)
}

// Score asks POST /v1/score, with the request's paths made absolute.
func (c *Client) Score(ctx context.Context, req ScoreRequest) (ScoreResponse, error) {
	req.Spec = absSpec(req.Spec)
	req.ImageA, req.ImageB = abs(req.ImageA), abs(req.ImageB)
	var r ScoreResponse
	return r, c.do(ctx, http.MethodPost, "/v1/score", req, &r)
}

// Sweep asks POST /v1/sweep, with the request's paths made absolute.
func (c *Client) Sweep(ctx context.Context, req SweepRequest) (SweepResponse, error) {
	req.Spec = absSpec(req.Spec)
	req.ImageA, req.ImageB = abs(req.ImageA), abs(req.ImageB)
	var r SweepResponse
	return r, c.do(ctx, http.MethodPost, "/v1/sweep", req, &r)
}

// Rank asks POST /v1/rank, with the request's paths made absolute. Result and skipped paths
// come back as sent (absolute).
func (c *Client) Rank(ctx context.Context, req RankRequest) (RankResponse, error) {
	req.Spec = absSpec(req.Spec)
	req.Query = abs(req.Query)
	imgs := make([]string, len(req.Images))
	for i, p := range req.Images {
		imgs[i] = abs(p)
	}
	req.Images = imgs
	var r RankResponse
	return r, c.do(ctx, http.MethodPost, "/v1/rank", req, &r)
}

// Show asks POST /v1/show, with the spec's paths made absolute.
func (c *Client) Show(ctx context.Context, req ShowRequest) (ShowResponse, error) {
	req.Spec = absSpec(req.Spec)
	var r ShowResponse
	return r, c.do(ctx, http.MethodPost, "/v1/show", req, &r)
}

// Info asks POST /v1/info, with the spec's paths made absolute.
func (c *Client) Info(ctx context.Context, req InfoRequest) (InfoResponse, error) {
	req.Spec = absSpec(req.Spec)
	var r InfoResponse
	return r, c.do(ctx, http.MethodPost, "/v1/info", req, &r)
}

// Result asks POST /v1/result, with the request's paths made absolute.
func (c *Client) Result(ctx context.Context, req ResultRequest) (ResultResponse, error) {
	req.Spec = absSpec(req.Spec)
	req.A.Path, req.B.Path = abs(req.A.Path), abs(req.B.Path)
	var r ResultResponse
	return r, c.do(ctx, http.MethodPost, "/v1/result", req, &r)
}

// Layers asks POST /v1/layers, with the request's paths made absolute.
func (c *Client) Layers(ctx context.Context, req LayersRequest) (LayersResponse, error) {
	req.Spec = absSpec(req.Spec)
	req.A.Path, req.B.Path = abs(req.A.Path), abs(req.B.Path)
	var r LayersResponse
	return r, c.do(ctx, http.MethodPost, "/v1/layers", req, &r)
}

// Prefetch asks POST /v1/prefetch, with the request's paths made absolute.
func (c *Client) Prefetch(ctx context.Context, req PrefetchRequest) error {
	req.Spec = absSpec(req.Spec)
	req.A.Path, req.B.Path = abs(req.A.Path), abs(req.B.Path)
	var r PrefetchResponse
	return c.do(ctx, http.MethodPost, "/v1/prefetch", req, &r)
}

// Cached asks POST /v1/cached.
func (c *Client) Cached(ctx context.Context, req CachedRequest) (bool, error) {
	req.Spec = absSpec(req.Spec)
	var r CachedResponse
	return r.Cached, c.do(ctx, http.MethodPost, "/v1/cached", req, &r)
}

// Stats asks POST /v1/stats.
func (c *Client) Stats(ctx context.Context, req StatsRequest) (StatsResponse, error) {
	req.Spec = absSpec(req.Spec)
	var r StatsResponse
	return r, c.do(ctx, http.MethodPost, "/v1/stats", req, &r)
}

// absSpec makes model paths absolute; a model name that is not a local path is left alone.
func absSpec(s Spec) Spec {
	if _, err := os.Stat(s.Model); err == nil && s.Model != "" {
		s.Model = abs(s.Model)
	}
	if s.IPAdapter != "" {
		s.IPAdapter = abs(s.IPAdapter)
	}
	if s.ImageEncoder != "" {
		s.ImageEncoder = abs(s.ImageEncoder)
	}
	return s
}

func abs(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// do sends one request; ctx ending closes the connection, which cancels the work on the
// server. A server that stops answering meanwhile fails the request with ErrStalled.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	ctx, stop := c.watch(ctx, path)
	defer stop()
	stalled := func(err error) error {
		if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
			return cause
		}
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return stalled(ctx.Err())
		}
		if errors.Is(err, ErrUnsafeSocket) {
			return err
		}
		return fmt.Errorf("diffsim server: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return stalled(fmt.Errorf("diffsim server: read answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("diffsim server: %s", resp.Status)
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("diffsim server: bad answer to %s: %w", path, err)
	}
	return nil
}
