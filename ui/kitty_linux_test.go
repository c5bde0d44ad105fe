package ui

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/diffsim/diffsim/ui/termtest"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/ansi/kitty"
	"github.com/charmbracelet/x/vt"

	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/ui/internal/fake"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// openPTY returns a pseudo-terminal of 120×40 cells: the program's side and the
// terminal's.
func openPTY(t *testing.T) (tty, term *os.File) { return termtest.Open(t, 120, 40, 0, 0) }

// kittyTransmit is one image transmission seen in the output.
type kittyTransmit struct {
	id         uint32
	cols, rows int
	at         int // offset in the output
}

var kittyKeys = regexp.MustCompile(`\x1b_Ga=T,([^;]*);`)

// transmissions finds every kitty a=T (the first chunk of each image) in out.
func transmissions(out []byte) []kittyTransmit {
	var ts []kittyTransmit
	for _, m := range kittyKeys.FindAllSubmatchIndex(out, -1) {
		tr := kittyTransmit{at: m[0]}
		for kv := range bytes.SplitSeq(out[m[2]:m[3]], []byte(",")) {
			k, v, _ := bytes.Cut(kv, []byte("="))
			n, _ := strconv.Atoi(string(v))
			switch string(k) {
			case "i":
				tr.id = uint32(n)
			case "c":
				tr.cols = n
			case "r":
				tr.rows = n
			}
		}
		ts = append(ts, tr)
	}
	return ts
}

// TestKittyPlacement runs the explorer with --graphics kitty on a pseudo-terminal whose
// output feeds a terminal emulator. Each pane's image is transmitted once with a virtual
// placement of its cells, under an id that never changes; the screen holds placeholder
// cells whose colour is that id and whose diacritics number their row and column; a
// frame that changes only text does not send the images again, a changed picture is sent
// again under the same id, and the images are deleted on exit.
func TestKittyPlacement(t *testing.T) {
	pts, ptmx := openPTY(t)
	emu := vt.NewEmulator(120, 40)
	go io.Copy(io.Discard, emu) // its answers to queries; the program's input is the pipe below
	var mu sync.Mutex
	var out []byte
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 64<<10)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out = append(out, buf[:n]...)
			_, _ = emu.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	snapshot := func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return bytes.Clone(out)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				mu.Lock()
				screen := emu.String()
				mu.Unlock()
				t.Fatalf("timed out waiting for %s; screen:\n%s", what, screen)
			}
		}
	}

	keys, typeKeys := io.Pipe()
	defer typeKeys.Close()
	opts := DefaultOptions()
	opts.Graphics = termgfx.Kitty
	// The terminal claims nothing (kitty is forced) but to have placeholders (kitty ≥ 0.28).
	opts.Caps = &termgfx.Caps{Protocol: termgfx.HalfBlock, CellW: 6, CellH: 12, KittyPlaceholders: true}
	opts.Input, opts.Output = keys, pts
	dark := true
	opts.Dark = &dark
	opts.programOptions = []tea.ProgramOption{tea.WithWindowSize(120, 40), tea.WithoutSignals()}
	done := make(chan error, 1)
	go func() { done <- Run(t.Context(), testBackend{fake.New()}, "fake:a", "fake:b", opts) }()

	lay := computeLayout(120, 40)
	pv := newPairView(NewStyles(true), pairKeys(DefaultKeyMap()), capsFor(opts), nil, nil)
	pv.SetOrigin(lay.left.X, lay.left.Y)
	pv.SetSize(lay.left.W, lay.left.H)
	waitFor("every pane's image", func() bool { return len(transmissions(snapshot())) >= int(numPanes) })
	waitFor("the placeholders", func() bool {
		mu.Lock()
		defer mu.Unlock()
		c := emu.CellAt(pv.panes[paneAttn].X, pv.panes[paneAttn].Y)
		return c != nil && c.Content != "" && []rune(c.Content)[0] == kitty.Placeholder
	})
	// Background work and re-renders done: the status line says ready and nothing more is
	// sent for a while.
	settled := func(what string) {
		t.Helper()
		waitFor(what+": ready", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return bytes.Contains([]byte(emu.String()), []byte("● ready"))
		})
		n, quiet := -1, 0
		waitFor(what+": nothing more sent", func() bool {
			if m := len(transmissions(snapshot())); m != n {
				n, quiet = m, 0
				return false
			}
			quiet++
			return quiet >= 10 // ten polls, 100 ms, without a new image
		})
	}
	settled("first frame")
	first := transmissions(snapshot())
	t.Logf("%d images transmitted: %+v", len(first), first)
	sent := map[uint32]int{}
	for _, tr := range first {
		sent[tr.id]++
	}
	for p := range numPanes {
		id, r := kittyID(p), pv.panes[p]
		// Once, or twice when a render without the scores landed before the first score
		// (on a loaded machine the two race): never more for one state of the view.
		if sent[id] < 1 || sent[id] > 2 {
			t.Errorf("pane %d (id %d) transmitted %d times, want once (twice if drawn before the first score)", p, id, sent[id])
		}
		for _, tr := range first {
			if tr.id == id && (tr.cols != r.W || tr.rows != r.H) {
				t.Errorf("pane %d placed as %d×%d cells, laid out %d×%d", p, tr.cols, tr.rows, r.W, r.H)
			}
		}
		mu.Lock()
		for _, cell := range [][2]int{{0, 0}, {r.W - 1, 0}, {0, r.H - 1}, {r.W - 1, r.H - 1}} {
			c := emu.CellAt(r.X+cell[0], r.Y+cell[1])
			want := string([]rune{kitty.Placeholder, kitty.Diacritic(cell[1]), kitty.Diacritic(cell[0])})
			if c == nil || c.Content != want || c.Width != 1 {
				t.Errorf("pane %d cell %v = %+v, want placeholder row %d col %d", p, cell, c, cell[1], cell[0])
				continue
			}
			// The renderer must not turn the index into 24-bit colour: kitty would then
			// read the id from the RGB value.
			if fg, ok := c.Style.Fg.(ansi.IndexedColor); !ok || uint32(fg) != id {
				t.Errorf("pane %d cell %v foreground %#v, want 256-colour %d (the image id)", p, cell, c.Style.Fg, id)
			}
		}
		// The cells beside the pane are text, not placeholders.
		if c := emu.CellAt(r.X+r.W, r.Y); c != nil && c.Content != "" && []rune(c.Content)[0] == kitty.Placeholder {
			t.Errorf("pane %d: placeholder past its right edge", p)
		}
		mu.Unlock()
	}

	// m changes the metric: text only, the pictures are the same bytes.
	typeKeys.Write([]byte("m"))
	waitFor("the metric change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return bytes.Contains([]byte(emu.String()), []byte("feature cos"))
	})
	settled("the metric change")
	if n := len(transmissions(snapshot())); n != len(first) {
		t.Errorf("a text-only change sent %d images again", n-len(first))
	}
	// l moves the token cursor, drawn on photo A: its picture changes, same id.
	typeKeys.Write([]byte("l"))
	waitFor("photo A sent again", func() bool {
		for _, tr := range transmissions(snapshot())[len(first):] {
			if tr.id == kittyID(paneA) {
				return true
			}
		}
		return false
	})
	for _, tr := range transmissions(snapshot()) {
		if tr.id < kittyID(0) || tr.id >= kittyID(numPanes) {
			t.Errorf("image id %d is not a pane's", tr.id)
		}
	}

	typeKeys.Write([]byte("q"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("q did not quit")
	}
	pts.Close()
	<-copied
	all := snapshot()
	last := transmissions(all)
	tail := all[last[len(last)-1].at:]
	for p := range numPanes {
		if !bytes.Contains(tail, []byte(heatmap.KittyDelete(kittyID(p)))) {
			t.Errorf("pane %d's image (id %d) not deleted on exit", p, kittyID(p))
		}
	}
	if bytes.Contains(all, []byte("\x1bP")) || bytes.Contains(all, []byte("▀")) {
		t.Error("sixel or half-blocks written in kitty mode")
	}
}
