package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// ErrNoServer means no server answered: the caller works without one.
var ErrNoServer = errors.New("no diffsim server running")

// Error is an error the server answered with.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// BadRequest reports whether the server blamed the request (a 4xx): the CLI's exit code 2.
func (e *Error) BadRequest() bool { return e.Status >= 400 && e.Status < 500 }

// Unwrap makes a 4xx answer ErrUsage, as the same failure is without a server.
func (e *Error) Unwrap() error {
	if e.BadRequest() {
		return ErrUsage
	}
	return nil
}

// Client talks to a server. It makes the paths it sends absolute (the server reads the files
// from its own working folder); answers carry them so.
type Client struct {
	http   *http.Client
	base   string
	socket string // the Unix socket, when the client uses one
	token  string // sent as a bearer token, when set
	// stall is how long a request may go without the server answering a heartbeat before the
	// client gives up on it (DefaultStall).
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
// other machines (--allow-remote) requires of them.
func (c *Client) SetToken(token string) { c.token = token }

// Peer is the server process the last connection reached (Unix sockets only).
func (c *Client) Peer() Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
}

// Socket is the Unix socket the client uses; "" over HTTP.
func (c *Client) Socket() string { return c.socket }

// Health asks GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	_, err := c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
	return h, err
}

// Models asks GET /v1/models.
func (c *Client) Models(ctx context.Context) (ModelsResponse, error) {
	var m ModelsResponse
	_, err := c.do(ctx, http.MethodGet, "/v1/models", nil, &m)
	return m, err
}

// Scored is /v1/score's answer: the record, and what the server says beside it.
type Scored struct {
	Record
	Cached  bool    // no network ran for this request
	Elapsed float64 // milliseconds the server took; 0 when it did not say
}

// Score asks POST /v1/score.
func (c *Client) Score(ctx context.Context, req ScoreRequest) (Scored, error) {
	req.ModelRef = absModel(req.ModelRef)
	req.ImageA, req.ImageB = Abs(req.ImageA), Abs(req.ImageB)
	var r Scored
	h, err := c.do(ctx, http.MethodPost, "/v1/score", req, &r.Record)
	if err != nil {
		return r, err
	}
	r.Cached, _ = strconv.ParseBool(h.Get(HeaderCached))
	var ms float64
	if _, err := fmt.Sscanf(h.Get(HeaderTiming), "score;dur=%g", &ms); err == nil {
		r.Elapsed = ms
	}
	return r, nil
}

// Sweep asks POST /v1/sweep.
func (c *Client) Sweep(ctx context.Context, req SweepRequest) (Sweep, error) {
	req.ModelRef = absModel(req.ModelRef)
	req.ImageA, req.ImageB = Abs(req.ImageA), Abs(req.ImageB)
	var r Sweep
	_, err := c.do(ctx, http.MethodPost, "/v1/sweep", req, &r)
	return r, err
}

// Rank asks POST /v1/rank. Result and skipped paths come back as sent (absolute).
func (c *Client) Rank(ctx context.Context, req RankRequest) (RankResponse, error) {
	req.ModelRef = absModel(req.ModelRef)
	req.Query = Abs(req.Query)
	imgs := make([]string, len(req.Images))
	for i, p := range req.Images {
		imgs[i] = Abs(p)
	}
	req.Images = imgs
	var r RankResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/rank", req, &r)
	return r, err
}

// Show asks POST /v1/show.
func (c *Client) Show(ctx context.Context, req ShowRequest) (ShowResponse, error) {
	req.ModelRef = absModel(req.ModelRef)
	var r ShowResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/show", req, &r)
	return r, err
}

// Info asks POST /v1/info.
func (c *Client) Info(ctx context.Context, req InfoRequest) (ModelInfo, error) {
	req.ModelRef = absModel(req.ModelRef)
	var r ModelInfo
	_, err := c.do(ctx, http.MethodPost, "/v1/info", req, &r)
	return r, err
}

// Result asks POST /v1/result.
func (c *Client) Result(ctx context.Context, req ResultRequest) (ResultResponse, error) {
	req.ModelRef = absModel(req.ModelRef)
	req.A.Path, req.B.Path = Abs(req.A.Path), Abs(req.B.Path)
	var r ResultResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/result", req, &r)
	return r, err
}

// Layers asks POST /v1/layers.
func (c *Client) Layers(ctx context.Context, req LayersRequest) (LayersResponse, error) {
	req.ModelRef = absModel(req.ModelRef)
	req.A.Path, req.B.Path = Abs(req.A.Path), Abs(req.B.Path)
	var r LayersResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/layers", req, &r)
	return r, err
}

// Prefetch asks POST /v1/prefetch.
func (c *Client) Prefetch(ctx context.Context, req PrefetchRequest) error {
	req.ModelRef = absModel(req.ModelRef)
	imgs := make([]ImageRef, len(req.Images))
	for i, img := range req.Images {
		imgs[i] = ImageRef{Path: Abs(img.Path), Hash: img.Hash}
	}
	req.Images = imgs
	var r PrefetchResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/prefetch", req, &r)
	return err
}

// Cached asks POST /v1/cached.
func (c *Client) Cached(ctx context.Context, req CachedRequest) (bool, error) {
	req.ModelRef = absModel(req.ModelRef)
	var r CachedResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/cached", req, &r)
	return r.Cached, err
}

// Stats asks POST /v1/stats.
func (c *Client) Stats(ctx context.Context, req StatsRequest) (Stats, error) {
	req.ModelRef = absModel(req.ModelRef)
	var r Stats
	_, err := c.do(ctx, http.MethodPost, "/v1/stats", req, &r)
	return r, err
}

// absModel makes model paths absolute; a model name that is not a local path is left alone.
func absModel(m ModelRef) ModelRef {
	if _, err := os.Stat(m.Model); err == nil && m.Model != "" {
		m.Model = Abs(m.Model)
	}
	if m.IPAdapter != "" {
		m.IPAdapter = Abs(m.IPAdapter)
	}
	if m.ImageEncoder != "" {
		m.ImageEncoder = Abs(m.ImageEncoder)
	}
	return m
}

// Abs is p made absolute, as the server wants paths; p itself when it cannot be.
func Abs(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// do sends one request and returns the answer's headers; ctx ending closes the connection,
// which cancels the work on the server. A server that stops answering meanwhile fails the
// request with ErrStalled.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (http.Header, error) {
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
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
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
			return nil, stalled(ctx.Err())
		}
		if errors.Is(err, ErrUnsafeSocket) {
			return nil, err
		}
		return nil, fmt.Errorf("diffsim server: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, stalled(fmt.Errorf("diffsim server: read answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("diffsim server: %s", resp.Status)
		}
		return nil, &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("diffsim server: bad answer to %s: %w", path, err)
	}
	return resp.Header, nil
}
