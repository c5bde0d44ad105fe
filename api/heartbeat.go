package api

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultStall is how long a client waits for a server that answers no heartbeat before it
// gives up on a request. A computation may take any time (a sweep of Stable Diffusion on a CPU
// takes minutes); a server that is alive answers /v1/health within milliseconds meanwhile.
const DefaultStall = 30 * time.Second

// ErrStalled means the server stopped answering while a request was in flight: stopped
// (SIGSTOP, a debugger) or stuck, as opposed to computing.
var ErrStalled = errors.New("the diffsim server stopped answering")

// SetStall sets how long a request waits for a server that answers no heartbeat (0: forever).
func (c *Client) SetStall(d time.Duration) { c.stall = d }

// watch returns ctx for a request, cancelled with ErrStalled when the server answers no
// /v1/health for c.stall while the request runs; stop ends the watch. Health answers come from
// the server's own goroutines, not the computation's, so a long forward keeps them coming.
func (c *Client) watch(ctx context.Context, path string) (context.Context, func()) {
	if path == "/v1/health" || c.stall <= 0 {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		interval := max(c.stall/6, 10*time.Millisecond)
		t := time.NewTicker(interval)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			left := c.stall - time.Since(last)
			hctx, hcancel := context.WithTimeout(ctx, max(left, interval))
			_, err := c.Health(hctx)
			hcancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				last = time.Now()
				continue
			}
			if time.Since(last) >= c.stall {
				cancel(kindError{fmt.Sprintf("%s answered no heartbeat for %v while computing (stopped with SIGSTOP, or stuck); restart `diffsim serve`, or pass --no-server", c.where(), c.stall), ErrStalled})
				return
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// where names the server for messages: its socket and process, or its address.
func (c *Client) where() string {
	if c.socket == "" {
		return "the diffsim server at " + c.base
	}
	if pid := c.Peer().PID; pid > 0 {
		return fmt.Sprintf("the diffsim server on %s (pid %d)", c.socket, pid)
	}
	return "the diffsim server on " + c.socket
}
