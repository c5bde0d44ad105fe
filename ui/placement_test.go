package ui

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi/kitty"

	"github.com/diffsim/diffsim/heatmap"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/ui/internal/fake"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// recordingPlacer remembers what is on screen.
type recordingPlacer struct {
	shown   map[string]termgfx.Area
	payload map[string][]byte
	remove  map[string][]byte
	flushes int
}

func (p *recordingPlacer) PlaceRemovable(id string, a termgfx.Area, payload, remove []byte) {
	p.shown[id], p.payload[id] = a, payload
	if p.remove == nil {
		p.remove = map[string][]byte{}
	}
	p.remove[id] = remove
}

func (p *recordingPlacer) Place(id string, a termgfx.Area, payload []byte) {
	p.shown[id], p.payload[id] = a, payload
}
func (p *recordingPlacer) Transmit(id string, payload, _ []byte) {
	p.shown[id], p.payload[id] = termgfx.Area{}, payload
}
func (p *recordingPlacer) Remove(id string) { delete(p.shown, id); delete(p.payload, id) }
func (p *recordingPlacer) Flush() error     { p.flushes++; return nil }

func TestSixelPlacement(t *testing.T) {
	f := fake.New()
	opts := DefaultOptions()
	opts.Caps = &termgfx.Caps{Protocol: termgfx.Sixel, CellW: 6, CellH: 12}
	m := New(t.Context(), testBackend{f}, "fake:a", "fake:b", opts)
	m.now = func() time.Time { return fixedNow }
	rp := &recordingPlacer{shown: map[string]termgfx.Area{}, payload: map[string][]byte{}}
	m.pv.placer = rp
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	drive(m, m.loadCmd("fake:a", "fake:b"))

	if len(rp.shown) != int(numPanes) {
		t.Fatalf("%d images placed, want %d", len(rp.shown), numPanes)
	}
	for p := range numPanes {
		a, r := rp.shown[paneID(p)], m.pv.panes[p]
		if a != (termgfx.Area{Row: r.Y, Col: r.X, Rows: r.H, Cols: r.W}) {
			t.Errorf("pane %d placed at %+v, laid out at %+v", p, a, r)
		}
		if pl := rp.payload[paneID(p)]; !bytes.HasPrefix(pl, []byte("\x1bP")) {
			t.Errorf("pane %d payload is not sixel: %q", p, pl[:min(len(pl), 8)])
		}
	}
	// The view keeps the images' cells blank.
	lines := m.content()
	if bytes.Contains([]byte(lines), []byte("▀")) {
		t.Error("half-blocks drawn in sixel mode")
	}
	// The help page covers the images; folding it brings them back where they were.
	send(m, press("?"))
	if len(rp.shown) != 0 {
		t.Errorf("with the help page open, images at %v", rp.shown)
	}
	send(m, press("esc"))
	if len(rp.shown) != int(numPanes) || rp.shown[paneID(paneA)].Rows != m.pv.panes[paneA].H {
		t.Errorf("with the help folded, images at %v, laid out at %+v", rp.shown, m.pv.panes[paneA])
	}
	// The sweep takes the images off; Esc brings them back.
	send(m, press("w"))
	if len(rp.shown) != 0 {
		t.Errorf("in the sweep, %d images still placed", len(rp.shown))
	}
	send(m, press("esc"))
	if len(rp.shown) != int(numPanes) {
		t.Errorf("after closing the sweep, %d images placed", len(rp.shown))
	}
	// Too small: no images.
	send(m, tea.WindowSizeMsg{Width: 60, Height: 20})
	if len(rp.shown) != 0 {
		t.Errorf("too small, %d images still placed", len(rp.shown))
	}
	send(m, tea.WindowSizeMsg{Width: 100, Height: 30})
	if len(rp.shown) != int(numPanes) || rp.shown[paneID(paneA)].Cols != m.pv.panes[paneA].W {
		t.Errorf("after resize: %v", rp.shown)
	}
}

// TestKittyDirectPlacement: a kitty without Unicode placeholders (kitty < 0.28) gets each
// pane's image placed directly at its cells, like sixel: the payload deletes the pane's
// previous image and transmits the new one with a=T, C=1 (cursor stays) and the pane's
// cells as c= and r=, never a virtual placement; the View holds no placeholder cells; the
// sweep removes the images and Esc brings them back.
func TestKittyDirectPlacement(t *testing.T) {
	f := fake.New()
	opts := DefaultOptions()
	opts.Caps = &termgfx.Caps{Protocol: termgfx.Kitty, Kitty: true, Terminal: "kitty(0.26.5)", CellW: 6, CellH: 12}
	m := New(t.Context(), testBackend{f}, "fake:a", "fake:b", opts)
	m.now = func() time.Time { return fixedNow }
	rp := &recordingPlacer{shown: map[string]termgfx.Area{}, payload: map[string][]byte{}}
	m.pv.placer = rp
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	drive(m, m.loadCmd("fake:a", "fake:b"))
	if len(rp.shown) != int(numPanes) {
		t.Fatalf("%d images placed, want %d", len(rp.shown), numPanes)
	}
	for p := range numPanes {
		a, r := rp.shown[paneID(p)], m.pv.panes[p]
		if a != (termgfx.Area{Row: r.Y, Col: r.X, Rows: r.H, Cols: r.W}) {
			t.Errorf("pane %d placed at %+v, laid out at %+v", p, a, r)
		}
		del := heatmap.KittyDelete(kittyID(p))
		pl := string(rp.payload[paneID(p)])
		keys := fmt.Sprintf("i=%d,C=1,c=%d,r=%d", kittyID(p), r.W, r.H)
		if !strings.HasPrefix(pl, del+"\x1b_Ga=T,") || !strings.Contains(pl, keys) || strings.Contains(pl, "U=1") {
			t.Errorf("pane %d payload %q…: want the delete, then a=T with %s and no U=1", p, pl[:min(len(pl), 120)], keys)
		}
		if string(rp.remove[paneID(p)]) != del {
			t.Errorf("pane %d remove = %q, want %q", p, rp.remove[paneID(p)], del)
		}
	}
	if v := m.content(); strings.ContainsRune(v, kitty.Placeholder) {
		t.Error("placeholder cells in the View of a kitty without placeholders")
	}
	send(m, press("w"))
	if len(rp.shown) != 0 {
		t.Errorf("in the sweep, %d images still placed", len(rp.shown))
	}
	send(m, press("esc"))
	if len(rp.shown) != int(numPanes) {
		t.Errorf("after the sweep, %d images placed", len(rp.shown))
	}
}
