package cli

import (
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diffsim/diffsim/engine/enginetest"

	"github.com/diffsim/diffsim/ui/termtest"

	"github.com/charmbracelet/x/vt"
)

// TestVideoExplore runs `diffsim video DIR --explore` on a pseudo-terminal read by a
// terminal emulator: the clip is scored, the explorer opens on the first frame beside the
// second with the curves, → moves the frame cursor and loads that frame as image B, and
// q ends the command cleanly.
func TestVideoExplore(t *testing.T) {
	enginetest.Runtime(t) // the clip is scored before the explorer starts
	dir := panClip(t, "astronaut.png", "")
	pts, ptmx := termtest.Open(t, 120, 40, 0, 0)

	emu := vt.NewEmulator(120, 40)
	go io.Copy(io.Discard, emu) // answers to queries: not needed
	var mu sync.Mutex
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 64<<10)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			emu.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	screen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return emu.String()
	}
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			s := screen()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
			}
		}
	}

	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- Run(videoArgs(dir, "--explore", "--graphics", "halfblock"), pts, pts, &syncWriter{w: &stderr})
	}()
	s := waitFor("the explorer on frame 1", func(s string) bool {
		return strings.Contains(s, "to first") && strings.Contains(s, "frame 1") && strings.Contains(s, "● ready")
	})
	if !strings.Contains(s, "A frame0.png") || !strings.Contains(s, "B frame1.png") {
		t.Errorf("want frame0 ⇄ frame1 in the title:\n%s", s)
	}
	ptmx.Write([]byte("\x1b[C")) // →
	waitFor("frame 2 as image B", func(s string) bool {
		return strings.Contains(s, "B frame2.png") && strings.Contains(s, "frame 2") && strings.Contains(s, "● ready")
	})
	ptmx.Write([]byte("q"))
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q did not end the command")
	}
}
