package sshserve

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"charm.land/ssh"
	"github.com/creack/pty"

	"github.com/diffsim/diffsim/ui"
)

// terminal is a session's pty. The server allocates it here rather than with the library's
// AllocatePty so that this package does the copying between the channel and the pty: then
// the session can wait until the client has been sent the explorer's last bytes (the
// terminal restored, the closing line) before it closes the channel, and it is the one reader
// of the client's window changes (the library's resizer would otherwise race it for them).
type terminal struct {
	master, slave *os.File
	term          string // the client's TERM
	win           ssh.Window
	closeOnce     sync.Once
}

type terminalKey struct{}

// allocatePty is the server's PtyHandler: a real pty for every session that asks for one.
func allocatePty(ctx ssh.Context, _ ssh.Session, req ssh.Pty) (func() error, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, err
	}
	t := &terminal{master: m, slave: s, term: req.Term, win: req.Window}
	if err := t.resize(req.Window); err != nil {
		t.close()
		return nil, err
	}
	ctx.SetValue(terminalKey{}, t)
	return t.close, nil
}

// terminalOf is the session's pty, or nil when the client asked for none.
func terminalOf(sess ssh.Session) *terminal {
	t, _ := sess.Context().Value(terminalKey{}).(*terminal)
	return t
}

func (t *terminal) resize(w ssh.Window) error {
	return pty.Setsize(t.master, &pty.Winsize{Rows: uint16(w.Height), Cols: uint16(w.Width)})
}

func (t *terminal) close() error {
	var err error
	t.closeOnce.Do(func() { err = errors.Join(t.master.Close(), t.slave.Close()) })
	return err
}

// connect copies between the session's channel and the pty and follows the client's window
// changes, sending each new size to resized. flush, called when the explorer is done with the
// pty, waits until everything it wrote has been sent to the client (or, for a client that
// stopped reading, a short while) and closes the pty.
func (t *terminal) connect(ctx context.Context, sess ssh.Session, resized chan<- ui.WindowSize) (flush func()) {
	go func() { _, _ = io.Copy(t.master, sess) }()
	sent := make(chan struct{})
	go func() {
		_, _ = io.Copy(sess, t.master) // until the slave is closed and its output read (EIO)
		close(sent)
	}()
	_, winch, _ := sess.Pty()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case w, ok := <-winch:
				if !ok {
					return
				}
				if err := t.resize(w); err != nil {
					continue
				}
				select {
				case resized <- ui.WindowSize{Cols: w.Width, Rows: w.Height}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return func() {
		t.slave.Close()
		select {
		case <-sent:
		case <-time.After(2 * time.Second):
		}
		t.close()
	}
}
