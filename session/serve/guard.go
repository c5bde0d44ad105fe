package serve

import (
	"crypto/subtle"
	"fmt"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// guard admits only requests a user of this machine made on purpose, before any handler runs.
// The server reads any file its user can read, so a request it should not answer is one that
// a web page made (a cross-site form, a DNS-rebinding page whose name now points at loopback)
// or one from another machine:
//
//   - on a loopback TCP connection, the Host must be the listener's own loopback name and port
//     (127.0.0.1:P, localhost:P, [::1]:P): a rebinding page sends its own name (421);
//   - a request carrying an Origin (browsers add it to cross-origin requests and to every POST)
//     is refused unless the origin is allowed with --allow-origin (403), which also answers
//     CORS preflights for it;
//   - a request with a body must say Content-Type: application/json, which a page cannot send
//     cross-origin without a preflight (415);
//   - a connection that did not come over loopback (--http on another address, which
//     --allow-remote permits) must carry the bearer token (401).
//
// Unix socket connections skip the Host check (no browser reaches a socket; the socket's
// folder keeps other users out) and need no token.
//
// It also arms the deadlines of Timeouts that http.Server cannot: the body's, and the answer's
// (from the moment it starts, however long it took to compute).
type guard struct {
	next     http.Handler
	origins  []string // allowed Origin values, exactly as browsers send them
	token    string   // required on connections from other machines; "" refuses them all
	timeouts Timeouts
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w = &deadlineWriter{ResponseWriter: w, timeout: g.timeouts.Write}
	if hasBody(r) {
		// The body must arrive in time (a slow body holds a connection otherwise), whether a
		// handler reads it or the server discards it after a refusal; decodeRequest lifts the
		// deadline once the body is in.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.timeouts.Body))
	}
	if !g.allowed(w, r) {
		return
	}
	g.next.ServeHTTP(w, r)
}

// allowed answers a request the guard refuses (and closes its connection) or a CORS
// preflight, and reports whether the handler should run.
func (g *guard) allowed(w http.ResponseWriter, r *http.Request) bool {
	refuse := func(code int, err error) bool {
		w.Header().Set("Connection", "close")
		writeError(w, code, err)
		return false
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	tcp, isTCP := local.(*net.TCPAddr)
	switch {
	case isTCP && tcp.IP.IsLoopback():
		if !loopbackHost(r.Host, tcp) {
			return refuse(http.StatusMisdirectedRequest, fmt.Errorf("Host %q is not this server's (%s): refused, as a web page reaching loopback under another name would be", r.Host, hostsOf(tcp)))
		}
	case isTCP:
		if !g.bearer(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="diffsim"`)
			return refuse(http.StatusUnauthorized, fmt.Errorf("requests from other machines need the bearer token: send Authorization: Bearer <token>, the token in %s on the server", TokenPath()))
		}
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !slices.Contains(g.origins, origin) {
			return refuse(http.StatusForbidden, fmt.Errorf("cross-origin request from %s refused; start diffsim serve with --allow-origin %s to allow that page", origin, origin))
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return false
		}
	}
	if hasBody(r) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			ct := r.Header.Get("Content-Type")
			if ct == "" {
				ct = "missing"
			}
			return refuse(http.StatusUnsupportedMediaType, fmt.Errorf("%s %s: Content-Type is %s; send the body as application/json (curl: -H 'Content-Type: application/json', or --json)", r.Method, r.URL.Path, ct))
		}
	}
	return true
}

// hasBody reports a request that carries (or may carry) a body: every POST, and anything with
// a length or a chunked body.
func hasBody(r *http.Request) bool {
	return r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch ||
		r.ContentLength > 0 || len(r.TransferEncoding) > 0
}

func (g *guard) bearer(r *http.Request) bool {
	if g.token == "" {
		return false
	}
	auth := r.Header.Get("Authorization")
	got, ok := strings.CutPrefix(auth, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(g.token)) == 1
}

// loopbackHost reports whether host names the loopback listener at local: its address, or
// localhost, with its port (the port may be left out only when it is 80, as clients do).
func loopbackHost(host string, local *net.TCPAddr) bool {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, "80"
	}
	if port != strconv.Itoa(local.Port) {
		return false
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.Equal(local.IP)
}

func hostsOf(local *net.TCPAddr) string {
	return net.JoinHostPort(local.IP.String(), strconv.Itoa(local.Port)) + " or " + net.JoinHostPort("localhost", strconv.Itoa(local.Port))
}

// deadlineWriter arms the connection's write deadline when the answer starts: a client that
// stops reading (stopped, or gone without closing) holds the connection for the write timeout
// at most.
type deadlineWriter struct {
	http.ResponseWriter
	timeout time.Duration
	armed   bool
}

func (d *deadlineWriter) WriteHeader(code int) {
	if !d.armed && code >= 200 {
		d.armed = true
		_ = http.NewResponseController(d.ResponseWriter).SetWriteDeadline(time.Now().Add(d.timeout))
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	if !d.armed {
		d.WriteHeader(http.StatusOK)
	}
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
