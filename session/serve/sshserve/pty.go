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
	"golang.org/x/sys/unix"

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

	mu     sync.Mutex
	inUse  bool // the explorer has the slave: only flush closes it
	closed bool
}

type terminalKey struct{}

// allocatePty is the server's PtyHandler: a real pty for every session that asks for one.
func allocatePty(ctx ssh.Context, _ ssh.Session, req ssh.Pty) (func() error, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, err
	}
	win := sized(req.Window)
	t := &terminal{master: m, slave: s, term: req.Term, win: win}
	if err := t.resize(win); err != nil {
		t.close()
		return nil, err
	}
	ctx.SetValue(terminalKey{}, t)
	return t.hangUp, nil
}

// Window size for a client that reports none: `ssh -tt` with no terminal of its own sends
// 0×0. A pty of 0×0 would make the explorer draw nothing; Bubble Tea falls back to 80×24 for
// the same reason, and the two must agree (the first size the explorer hears is not always
// the last).
const defaultCols, defaultRows = 80, 24

// sized is w with a zero width or height replaced by the default.
func sized(w ssh.Window) ssh.Window {
	if w.Width <= 0 {
		w.Width = defaultCols
	}
	if w.Height <= 0 {
		w.Height = defaultRows
	}
	return w
}

// terminalOf is the session's pty, or nil when the client asked for none.
func terminalOf(sess ssh.Session) *terminal {
	t, _ := sess.Context().Value(terminalKey{}).(*terminal)
	return t
}

// resize sets the pty's window size. Not with pty.Setsize: that takes the file's Fd, which
// puts it in blocking mode (a read blocked then would outlive Close) and races Close.
func (t *terminal) resize(w ssh.Window) error {
	rc, err := t.master.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(w.Height), Col: uint16(w.Width),
			Xpixel: uint16(w.WidthPixels), Ypixel: uint16(w.HeightPixels)}) // the explorer sizes images from the pixels
	})
	return errors.Join(err, ierr)
}

// close closes both ends.
func (t *terminal) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	return errors.Join(t.master.Close(), t.slave.Close())
}

// hangUp is the library's close, when the session's requests end (the client left): the
// master closes, which fails the explorer's writes to the slave at once, but the slave stays
// open while the explorer holds it (closing a file another goroutine is using would hand its
// descriptor number to the next file opened); flush closes it.
func (t *terminal) hangUp() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if !t.inUse {
		t.closed = true
		return errors.Join(t.master.Close(), t.slave.Close())
	}
	return t.master.Close()
}

// connect copies between the session's channel and the pty and follows the client's window
// changes, sending each new size to resized. flush, called when the explorer is done with the
// pty, waits until everything it wrote has been sent to the client (or, for a client that
// stopped reading, a short while) and closes the pty.
func (t *terminal) connect(ctx context.Context, sess ssh.Session, resized chan<- ui.WindowSize) (flush func()) {
	t.mu.Lock()
	t.inUse = true
	t.mu.Unlock()
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
				w = sized(w)
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
