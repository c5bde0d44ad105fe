package serve

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
}

// NewClient talks to the server on the Unix socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{http: &http.Client{Transport: tr}, base: "http://diffsim", socket: path}
}

// NewHTTPClient talks to the server at an HTTP address such as 127.0.0.1:11435.
func NewHTTPClient(addr string) *Client {
	return &Client{http: &http.Client{}, base: "http://" + addr}
}

// Dial finds the server on the Unix socket at path, checking that it speaks this API;
// ErrNoServer when none is there. It waits at most a fraction of a second.
func Dial(ctx context.Context, path string) (*Client, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, ErrNoServer
	}
	c := NewClient(path)
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	h, err := c.Health(ctx)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("the diffsim server on %s: %w", path, err)
		}
		return nil, fmt.Errorf("%w (%s does not answer: %v)", ErrNoServer, path, err)
	}
	if h.API != APIVersion {
		return nil, fmt.Errorf("the diffsim server on %s speaks API v%d, this client v%d; restart `diffsim serve` with this version, or pass --no-server", path, h.API, APIVersion)
	}
	return c, nil
}

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

// do sends one request; ctx ending closes the connection, which cancels the work on the server.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
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
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("diffsim server: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("diffsim server: read answer: %w", err)
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
