//go:build linux

package termtest

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Open returns a pseudo-terminal of cols × rows cells (and xpix × ypix pixels, 0 for
// unknown): tty is the program's side, term the terminal's. Both close when the test ends.
// A machine without pseudo-terminals skips the test.
func Open(t testing.TB, cols, rows, xpix, ypix int) (tty, term *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		ptmx.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		ptmx.Close()
		t.Fatalf("pty number: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		ptmx.Close()
		t.Fatalf("open pty: %v", err)
	}
	ws := &unix.Winsize{Row: uint16(rows), Col: uint16(cols), Xpixel: uint16(xpix), Ypixel: uint16(ypix)}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		pts.Close()
		ptmx.Close()
		t.Fatalf("set window size: %v", err)
	}
	t.Cleanup(func() { pts.Close(); ptmx.Close() })
	return pts, ptmx
}
