package termgfx

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/diffsim/diffsim/ui/termtest"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair: the program side (a real tty for Detect) and
// the terminal side, where the test plays the terminal.
func openPTY(t *testing.T) (tty, term *os.File) { return termtest.Open(t, 120, 40, 720, 520) }

// playTerminal answers like xterm -ti vt340 once the DA1 query arrives, and returns what
// the program sent.
func playTerminal(term *os.File, reply string) <-chan string {
	got := make(chan string, 1)
	go func() {
		var seen []byte
		buf := make([]byte, 512)
		for !bytes.Contains(seen, []byte("\x1b[c")) {
			n, err := term.Read(buf)
			if err != nil {
				break
			}
			seen = append(seen, buf[:n]...)
		}
		if reply != "" {
			_, _ = term.WriteString(reply)
		}
		got <- string(seen)
	}()
	return got
}

func TestDetectOnPTY(t *testing.T) {
	tty, term := openPTY(t)
	sent := playTerminal(term, "\x1b[?1;0;1024S\x1b[?2;0;600;520S\x1b[6;13;6t\x1b[4;520;720t\x1b[?63;1;2;4;6;9;15;16;22;28c")
	start := time.Now()
	c, err := Detect(context.Background(), tty, tty, 2*time.Second, envOf("TERM", "xterm", "COLORTERM", "truecolor"))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Detect took %v although DA1 came at once: it should stop at the sentinel", took)
	}
	if c.Protocol != Sixel || c.CellW != 6 || c.CellH != 13 || c.ColorRegisters != 1024 || c.MaxW != 600 || !c.TrueColor {
		t.Errorf("caps %+v", c)
	}
	q := <-sent
	if !strings.HasSuffix(q, "\x1b[c") || !strings.Contains(q, "\x1b[16t") || !strings.Contains(q, "\x1b_Gi=31,") {
		t.Errorf("queries sent %q: want all of them, DA1 last", q)
	}
	// the tty is back in canonical mode
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ICANON == 0 || tio.Lflag&unix.ECHO == 0 {
		t.Error("Detect left the tty in raw mode")
	}
}

func TestDetectSilentTerminalTimesOut(t *testing.T) {
	tty, term := openPTY(t)
	_ = playTerminal(term, "")
	start := time.Now()
	c, err := Detect(context.Background(), tty, tty, 150*time.Millisecond, envOf("TERM", "xterm"))
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took < 150*time.Millisecond || took > time.Second {
		t.Errorf("Detect returned after %v, want about the 150 ms time-out", took)
	}
	// nothing answered: the kernel's pixel size gives the cell size
	if c.Protocol != HalfBlock || c.CellW != 6 || c.CellH != 13 {
		t.Errorf("caps %+v", c)
	}
	if !strings.Contains(strings.Join(c.Reason, "\n"), "no reply to DA1") {
		t.Errorf("reasons %q do not say the terminal was silent", c.Reason)
	}
}

func TestDetectCancelled(t *testing.T) {
	tty, term := openPTY(t)
	_ = playTerminal(term, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Detect(ctx, tty, tty, 5*time.Second, envOf("TERM", "xterm"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("cancelled Detect took %v", took)
	}
}
