package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// SocketPath is where the server listens and clients look: $DIFFSIM_SOCKET when set, else
// $XDG_RUNTIME_DIR/diffsim/serve.sock, else a private folder in the temporary directory.
func SocketPath() string {
	if p := os.Getenv("DIFFSIM_SOCKET"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "diffsim", "serve.sock")
	}
	return filepath.Join(os.TempDir(), "diffsim-"+strconv.Itoa(os.Getuid()), "serve.sock")
}

// ListenUnix listens on the socket at path, in a folder only this user can enter. A socket
// left behind by a server that died is replaced; one a live server answers on is an error.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("a server already listens on %s; stop it, or give this one --socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("socket permissions: %w", err), ln.Close())
	}
	return ln, nil
}

// ListenHTTP listens on addr for HTTP; a missing host means loopback (127.0.0.1), so the API
// is not offered to the network unless a host says so.
func ListenHTTP(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// A bare port ("11435") is the common shorthand.
		if _, perr := strconv.Atoi(addr); perr == nil {
			host, port, err = "", addr, nil
		} else {
			return nil, fmt.Errorf("--http %q: want HOST:PORT or :PORT (e.g. 127.0.0.1:11435)", addr)
		}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	return ln, nil
}

// Serve answers on every listener until ctx ends, then stops accepting, lets requests in
// flight finish (up to a grace period), unloads the models and removes Unix sockets.
func (s *Server) Serve(ctx context.Context, listeners ...net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, len(listeners))
	for _, ln := range listeners {
		go func() { errc <- hs.Serve(ln) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := hs.Shutdown(shut); serr != nil {
		hs.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, s.Close())
}
