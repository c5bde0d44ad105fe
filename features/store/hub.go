package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// hub speaks the few endpoints of the Hugging Face hub that a download needs.
type hub struct {
	endpoint *url.URL
	token    string
	client   *http.Client
}

func newHub(s settings) (*hub, error) {
	u, err := url.Parse(s.endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid hub endpoint %q (HF_ENDPOINT): want http(s)://host", s.endpoint)
	}
	c := *s.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hub{endpoint: u, token: s.token, client: &c}, nil
}

// statusError is an HTTP answer that is not what was asked for.
type statusError struct {
	url    string
	code   int
	hfCode string // X-Error-Code
	msg    string // X-Error-Message or the start of the body
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", redact(e.url), e.code)
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

func (e *statusError) transient() bool {
	return e.code >= 500 || e.code == http.StatusTooManyRequests || e.code == http.StatusRequestTimeout
}

func newStatusError(resp *http.Response) *statusError {
	e := &statusError{url: resp.Request.URL.String(), code: resp.StatusCode, hfCode: resp.Header.Get("X-Error-Code")}
	e.msg = resp.Header.Get("X-Error-Message")
	if e.msg == "" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		e.msg = strings.TrimSpace(string(b))
		var j struct{ Error string }
		if json.Unmarshal(b, &j) == nil && j.Error != "" {
			e.msg = j.Error
		}
	}
	return e
}

// redact drops the query, where CDNs carry signatures.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.RawQuery = ""
	return u.String()
}

// trusted reports whether a URL is the hub's own origin, the only one that
// may see the token. Go's client would forward it to subdomains too
// (cdn-lfs.huggingface.co); huggingface_hub does not, and neither do we.
func (h *hub) trusted(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, h.endpoint.Scheme) && strings.EqualFold(u.Host, h.endpoint.Host)
}

// do sends a request and follows redirects by hand: the token goes only to
// the hub's origin; leaveHost says whether a redirect may go to another host
// (a HEAD must not, so the CDN's answer never hides the hub's ETag headers).
func (h *hub) do(ctx context.Context, method, rawURL string, header http.Header, leaveHost bool) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	for range 10 {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", "diffsim")
		if h.token != "" && h.trusted(u) {
			req.Header.Set("Authorization", "Bearer "+h.token)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			return nil, transientErr(err)
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return resp, nil
		}
		next, err := u.Parse(loc)
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("%s redirects to a bad location %q", redact(u.String()), loc)
		}
		if !leaveHost && !strings.EqualFold(next.Host, u.Host) {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		u = next
	}
	return nil, fmt.Errorf("%s: too many redirects", redact(rawURL))
}

// repoInfo is what GET /api/models/{repo}/revision/{rev} says.
type repoInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
	} `json:"siblings"`
}

func (h *hub) apiURL(repo, revision string) string {
	return h.endpoint.String() + "/api/models/" + repo + "/revision/" + url.PathEscape(revision)
}

func (h *hub) resolveURL(repo, commit, file string) string {
	parts := strings.Split(file, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return h.endpoint.String() + "/" + repo + "/resolve/" + commit + "/" + strings.Join(parts, "/")
}

// info lists the files of a repository at a revision and pins its commit.
func (h *hub) info(ctx context.Context, repo, revision string) (repoInfo, error) {
	var info repoInfo
	resp, err := h.do(ctx, http.MethodGet, h.apiURL(repo, revision), nil, true)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, h.explain(newStatusError(resp), repo, revision)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return info, transientErr(fmt.Errorf("read the file list of %s: %w", repo, err))
	}
	if !commitHash.MatchString(info.SHA) {
		return info, fmt.Errorf("the hub answered commit %q for %s@%s, not a commit hash", info.SHA, repo, revision)
	}
	return info, nil
}

// explain turns the hub's refusals into what the user should do.
func (h *hub) explain(e *statusError, repo, revision string) error {
	switch {
	case e.transient():
		return e
	case e.hfCode == "RevisionNotFound":
		return fmt.Errorf("revision %q not found in %s: %w", revision, repo, e)
	case e.code == http.StatusUnauthorized || e.hfCode == "RepoNotFound" || e.code == http.StatusNotFound:
		hint := "check the name"
		if h.token == "" {
			hint += "; if it is private or gated, set HF_TOKEN"
		}
		return fmt.Errorf("repository %s not found on %s (%s): %w", repo, h.endpoint.Host, hint, e)
	case e.code == http.StatusForbidden:
		return fmt.Errorf("access to %s refused: it may be gated; accept its terms on the hub and set HF_TOKEN: %w", repo, e)
	}
	return e
}

// fileMeta is what the HEAD of a resolve URL says about one file.
type fileMeta struct {
	etag     string // normalised; sha256 (LFS) or git blob sha1
	size     int64
	commit   string // X-Repo-Commit
	location string // where to GET the bytes (the CDN, for LFS files)
}

func (h *hub) head(ctx context.Context, repo, commit, file string) (fileMeta, error) {
	var m fileMeta
	u := h.resolveURL(repo, commit, file)
	hdr := http.Header{"Accept-Encoding": {"identity"}}
	resp, err := h.do(ctx, http.MethodHead, u, hdr, false)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	redirected := resp.StatusCode >= 300 && resp.StatusCode <= 399
	if resp.StatusCode != http.StatusOK && !redirected {
		return m, h.explain(newStatusError(resp), repo, commit)
	}
	raw := resp.Header.Get("X-Linked-Etag")
	if raw == "" {
		raw = resp.Header.Get("ETag")
	}
	if m.etag, err = normalizeETag(raw); err != nil {
		return m, fmt.Errorf("%s in %s: %w", file, repo, err)
	}
	size := resp.Header.Get("X-Linked-Size")
	if size == "" {
		size = resp.Header.Get("Content-Length")
	}
	if m.size, err = strconv.ParseInt(size, 10, 64); err != nil || m.size < 0 {
		return m, fmt.Errorf("%s in %s: the hub gave no usable size (%q)", file, repo, size)
	}
	m.commit = resp.Header.Get("X-Repo-Commit")
	m.location = u
	if redirected {
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			return m, fmt.Errorf("%s in %s: bad redirect: %w", file, repo, err)
		}
		m.location = next.String()
	}
	return m, nil
}

// transient marks an error worth retrying: the network, not the request, failed.
type transient struct{ err error }

func (t transient) Error() string { return t.err.Error() }
func (t transient) Unwrap() error { return t.err }

func transientErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return transient{err}
}

func isTransient(err error) bool {
	var t transient
	var s *statusError
	switch {
	case errors.As(err, &t):
		return true
	case errors.As(err, &s):
		return s.transient()
	}
	return false
}
