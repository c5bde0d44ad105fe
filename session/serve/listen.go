package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// ListenUnix listens on the socket at path. Its folder is made (mode 0700) when missing and
// must be this user's own and closed to others, or nothing listens (ErrUnsafeSocket). A
// socket left behind by a server that died is replaced; one a live server answers on is an
// error; anything else at path (a file, a folder, a link) is left alone and refused.
func ListenUnix(path string) (net.Listener, error) {
	if err := makeSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket but %s; diffsim serve removes only sockets: give --socket another path", path, fileKind(fi.Mode()))
		}
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

// ErrRemote means --http names an address other machines can reach, which needs
// --allow-remote (and then the bearer token on every request that comes from another machine).
var ErrRemote = errors.New("not a loopback address")

// ListenHTTP listens on addr for HTTP; a missing host means loopback (127.0.0.1). An address
// other machines can reach (0.0.0.0, [::], a LAN address or a name that resolves to one) is
// refused unless allowRemote: the server reads any file its user can read.
func ListenHTTP(addr string, allowRemote bool) (net.Listener, error) {
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
	// An IP address is judged before anything listens on it; a name only once it resolved.
	if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() && !allowRemote {
		return nil, remoteRefused(addr, ip)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() && !allowRemote {
		ln.Close()
		return nil, remoteRefused(addr, ip)
	}
	return ln, nil
}

func remoteRefused(addr string, ip net.IP) error {
	where := ip.String()
	if ip.IsUnspecified() {
		where = "every interface"
	}
	return fmt.Errorf("--http %s: %w (%s): other machines could reach the API, which reads any file you can; use 127.0.0.1, or add --allow-remote to require a bearer token", addr, ErrRemote, where)
}

// Serve answers on every listener until ctx ends, then stops accepting, lets requests in
// flight finish (up to a grace period), unloads the models and removes Unix sockets.
func (s *Server) Serve(ctx context.Context, listeners ...net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: s.cfg.Timeouts.Header, IdleTimeout: s.cfg.Timeouts.Idle,
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

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a file"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}
