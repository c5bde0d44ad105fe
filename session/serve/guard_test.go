package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
)

// rawHTTP is an HTTP client that reaches c's server as c does, for requests Client does not make.
func rawHTTP(c *testClient) *http.Client {
	if c.socket == "" {
		return http.DefaultClient
	}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", c.socket)
	}}}
}

// send makes one raw request through c's transport (socket or TCP) with the given Host and
// headers, and returns the status, the headers and the body.
func send(t *testing.T, c *testClient, method, path, host string, header map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := rawHTTP(c).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// oneLineError checks an answer is {"error": "one line"} saying says.
func oneLineError(t *testing.T, body, says string) {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || strings.Contains(e.Error, "\n") {
		t.Fatalf("answer %q is not {\"error\": one line}", body)
	}
	if !strings.Contains(e.Error, says) {
		t.Errorf("error %q does not say %q", e.Error, says)
	}
}

// TestGuardRefusesWhatAWebPageSends: each request a browser page (or another machine) could
// make is refused before any handler runs, with a one-line error; what this user's own
// clients send passes.
func TestGuardRefusesWhatAWebPageSends(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	unix, tcp, _ := startServer(t, Config{AllowOrigins: []string{"http://localhost:3000"}}, fk)
	imgs := images(t, 2)
	score := `{"model":"m","image_a":"` + imgs[0] + `","image_b":"` + imgs[1] + `"}`
	result := `{"model":"m","a":{"path":"` + imgs[0] + `"},"b":{"path":"` + imgs[1] + `"},"layer":0,"t":1}`
	port := strconv.Itoa(tcp.port(t))
	json := map[string]string{"Content-Type": "application/json"}
	with := func(kv ...string) map[string]string {
		h := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	for _, tc := range []struct {
		name         string
		c            *testClient
		method, path string
		host         string
		header       map[string]string
		body         string
		status       int
		says         string
	}{
		// DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
		{"rebinding score", tcp, "POST", "/v1/score", "evil.example:" + port, json, score, 421, `Host "evil.example:` + port + `" is not this server's`},
		{"rebinding result (maps of a private image)", tcp, "POST", "/v1/result", "evil.example:" + port, json, result, 421, "is not this server's"},
		{"rebinding models", tcp, "GET", "/v1/models", "evil.example", nil, "", 421, "is not this server's"},
		{"rebinding health", tcp, "GET", "/v1/health", "evil.example:" + port, nil, "", 421, "is not this server's"},
		{"another port", tcp, "GET", "/v1/health", "127.0.0.1:1", nil, "", 421, "is not this server's"},
		// A cross-site form: text/plain, an Origin, no preflight.
		{"cross-site form", tcp, "POST", "/v1/score", "", with("Origin", "http://evil.example", "Content-Type", "text/plain"), score, 403, "cross-origin request from http://evil.example refused; start diffsim serve with --allow-origin"},
		{"cross-site JSON", tcp, "POST", "/v1/score", "", with("Origin", "http://evil.example", "Content-Type", "application/json"), score, 403, "cross-origin"},
		{"cross-site preflight", tcp, "OPTIONS", "/v1/score", "", with("Origin", "http://evil.example", "Access-Control-Request-Method", "POST"), "", 403, "cross-origin"},
		{"cross-site over the socket", unix, "POST", "/v1/score", "", with("Origin", "null", "Content-Type", "application/json"), score, 403, "cross-origin request from null"},
		{"form body", tcp, "POST", "/v1/score", "", with("Content-Type", "application/x-www-form-urlencoded"), score, 415, "Content-Type is application/x-www-form-urlencoded; send the body as application/json"},
		{"text body", unix, "POST", "/v1/score", "", with("Content-Type", "text/plain"), score, 415, "application/json"},
		{"no content type", tcp, "POST", "/v1/score", "", nil, score, 415, "Content-Type is missing"},
		{"a GET with a form body", tcp, "GET", "/v1/health", "", with("Content-Type", "text/plain"), "x", 415, "application/json"},
		// What this user's clients send.
		{"loopback address", tcp, "GET", "/v1/health", "127.0.0.1:" + port, nil, "", 200, ""},
		{"localhost", tcp, "GET", "/v1/health", "LocalHost:" + port, nil, "", 200, ""},
		{"socket with any Host", unix, "GET", "/v1/health", "diffsim", nil, "", 200, ""},
		{"JSON with a charset", tcp, "POST", "/v1/score", "", with("Content-Type", "application/json; charset=utf-8"), score, 200, ""},
		{"allowed origin", tcp, "POST", "/v1/score", "", with("Origin", "http://localhost:3000", "Content-Type", "application/json"), score, 200, ""},
		{"allowed preflight", tcp, "OPTIONS", "/v1/score", "", with("Origin", "http://localhost:3000", "Access-Control-Request-Method", "POST"), "", 204, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loads := fk.loads.Load()
			status, h, body := send(t, tc.c, tc.method, tc.path, tc.host, tc.header, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.status >= 400 {
				oneLineError(t, body, tc.says)
				if fk.loads.Load() != loads {
					t.Error("a refused request loaded a model")
				}
				if h.Get("Access-Control-Allow-Origin") != "" {
					t.Errorf("refused request answered with CORS headers %v", h)
				}
			}
			if origin := tc.header["Origin"]; tc.status < 400 && origin != "" && h.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("allowed origin answered without Access-Control-Allow-Origin: %v", h)
			}
		})
	}
}

// TestRemoteHTTPNeedsConsentAndToken: --http on an address other machines reach is refused
// unless allowed, and then a request that does not come over loopback needs the token.
func TestRemoteHTTPNeedsConsentAndToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0"} {
		ln, err := ListenHTTP(addr, false)
		if err == nil {
			ln.Close()
			t.Errorf("ListenHTTP(%s) without --allow-remote listened", addr)
			continue
		}
		if !errors.Is(err, ErrRemote) && !strings.Contains(err.Error(), "address") { // [::] where IPv6 is off
			t.Errorf("ListenHTTP(%s): %v, want ErrRemote", addr, err)
		}
		if errors.Is(err, ErrRemote) && (!strings.Contains(err.Error(), "--allow-remote") || strings.Contains(err.Error(), "\n")) {
			t.Errorf("ListenHTTP(%s): %q, want one line naming --allow-remote", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "0"} {
		ln, err := ListenHTTP(addr, false)
		if err != nil {
			t.Errorf("ListenHTTP(%s): %v", addr, err)
			continue
		}
		if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Errorf("ListenHTTP(%s) listens on %v", addr, ip)
		}
		ln.Close()
	}

	lan := nonLoopbackIP(t)
	ln, err := ListenHTTP(net.JoinHostPort(lan.String(), "0"), true)
	if err != nil {
		t.Fatal(err)
	}
	const token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	fk := &fakes{byName: map[string]*fakeModel{}}
	srv := New(Config{Open: fk.open, Token: token})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	c := &testClient{api.NewHTTPClient(ln.Addr().String()), "http://" + ln.Addr().String(), ""}
	status, h, body := send(t, c, "GET", "/v1/models", "", nil, "")
	if status != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: status %d %v, want 401 with WWW-Authenticate", status, h)
	}
	oneLineError(t, body, "bearer token")
	status, _, body = send(t, c, "GET", "/v1/models", "", map[string]string{"Authorization": "Bearer " + token[:63] + "0"}, "")
	if status != http.StatusUnauthorized {
		t.Fatalf("a wrong token: status %d: %s", status, body)
	}
	c.SetToken(token)
	if _, err := c.Models(context.Background()); err != nil {
		t.Fatalf("with the token: %v", err)
	}
}

// nonLoopbackIP is an address of this machine that is not loopback, as other machines would
// reach it; the test is skipped on a machine with none.
func nonLoopbackIP(t *testing.T) net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP
		}
	}
	t.Skip("no network address other than loopback")
	return nil
}

func (c *testClient) port(t *testing.T) int {
	_, p, err := net.SplitHostPort(strings.TrimPrefix(c.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}
