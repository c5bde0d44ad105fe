package termgfx

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"

	"github.com/diffsim/diffsim/heatmap"
)

// imageModel reserves a blank 4×2 area at row 2, column 3 and quits on quitMsg.
type imageModel struct {
	w     *Writer
	label string
}

type labelMsg string
type quitMsg struct{}

func (m imageModel) Init() tea.Cmd { return nil }

func (m imageModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case labelMsg:
		m.label = string(msg)
	case quitMsg:
		m.w.Clear()
		return m, tea.Quit
	}
	return m, nil
}

func (m imageModel) View() tea.View {
	v := tea.NewView("title " + m.label + "\n\n   " + strings.Repeat(" ", 4) + " right\n   " + strings.Repeat(" ", 4) + " right\nstatus " + m.label)
	v.AltScreen = true
	return v
}

// TestWriterWithBubbleTea runs a real Bubble Tea v2 program on a pseudo-terminal whose
// output goes through the Writer into a terminal emulator. The image must land at its
// cell after the first frame; a frame that changes text elsewhere must not resend it; a
// clear screen must bring it back; nothing may be drawn once the program has quit.
func TestWriterWithBubbleTea(t *testing.T) {
	// A pseudo-terminal, so Bubble Tea sees a real tty and puts it in raw mode: then "\n"
	// is a bare line feed, as on a user's screen.
	pw, pr := openPTY(t)
	// A plain Emulator behind our own lock: SafeEmulator would deadlock when the DCS
	// handler asks for the cursor position during its own Write.
	emu := vt.NewEmulator(40, 12)
	var mu sync.Mutex
	type hit struct{ x, y int }
	var hits []hit
	emu.RegisterDcsHandler(ansi.Command(0, 0, 'q'), func(_ ansi.Params, _ []byte) bool {
		p := emu.CursorPosition() // called inside emu.Write, which holds mu
		hits = append(hits, hit{p.X, p.Y})
		return true
	})
	copied := make(chan struct{})
	var all []byte
	go func() {
		defer close(copied)
		buf := make([]byte, 64<<10)
		for {
			n, err := pr.Read(buf)
			mu.Lock()
			all = append(all, buf[:n]...)
			_, _ = emu.Write(buf[:n])
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

	w := NewWriter(pw)
	var sixel strings.Builder
	if err := (&heatmap.SixelEncoder{}).Encode(&sixel, heatmap.Render(heatmap.Grid{W: 1, H: 1, Values: []float32{1}}, heatmap.Viridis(), 0, 1, 4, 6)); err != nil {
		t.Fatal(err)
	}
	w.Place("img", Area{Row: 2, Col: 3, Rows: 2, Cols: 4}, []byte(sixel.String()))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := tea.NewProgram(imageModel{w: w}, tea.WithOutput(w), tea.WithInput(nil),
		tea.WithWindowSize(40, 12), tea.WithContext(ctx), tea.WithoutSignals())
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()

	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(hits)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; screen:\n%s", what, screen()+fmt.Sprintf("%q", all))
			}
		}
	}
	waitFor("the first image", func() bool { return count() >= 1 })
	mu.Lock()
	first := hits[0]
	mu.Unlock()
	if first.x != 3 || first.y != 2 {
		t.Errorf("image drawn at column %d row %d, want column 3 row 2", first.x, first.y)
	}
	p.Send(labelMsg("changed"))
	waitFor("the frame with the new label", func() bool { return strings.Contains(screen(), "status changed") })
	time.Sleep(50 * time.Millisecond)
	if n := count(); n != 1 {
		t.Errorf("a frame that changed only text away from the image resent it (%d draws)", n)
	}
	// A full repaint (as on resize) erases the screen: the image must come back.
	p.Send(tea.ClearScreen())
	waitFor("the image after a clear", func() bool { return count() == 2 })
	mu.Lock()
	if h := hits[1]; h != first {
		t.Errorf("redrawn at %v, want %v", h, first)
	}
	mu.Unlock()
	p.Send(quitMsg{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close() // the terminal side now reads what is left, then EIO
	<-copied
	if n := count(); n != 2 {
		t.Errorf("%d images drawn in total, want 2 (nothing after quitting)", n)
	}
	if mu.Lock(); emu.IsAltScreen() {
		t.Error("program did not leave the alternate screen")
	}
}
