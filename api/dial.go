package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

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
	if err := CheckSocketDir(filepath.Dir(path)); err != nil {
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
		var ae *Error
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
	if h.API != Version {
		return nil, info, fmt.Errorf("the diffsim server on %s (pid %d) speaks API v%d, this client v%d; restart `diffsim serve` with this version, or pass --no-server", path, info.PID, h.API, Version)
	}
	if version != "" && h.Version != "" && h.Version != version {
		return nil, info, kindError{fmt.Sprintf("the diffsim server on %s (pid %d) is another build of diffsim (%s; this one is %s); restart `diffsim serve` to share its models", path, info.PID, h.Version, version), ErrOtherVersion}
	}
	return c, info, nil
}

// ErrOtherVersion means the server is another build of diffsim: its answers could differ from
// this one's, so the command computes itself.
var ErrOtherVersion = errors.New("another diffsim version")
