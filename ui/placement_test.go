package ui

import (
	"bytes"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/ui/internal/fake"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// recordingPlacer remembers what is on screen.
type recordingPlacer struct {
	shown   map[string]termgfx.Area
	payload map[string][]byte
	flushes int
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
	m.placer = rp
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	drive(m, m.loadCmd("fake:a", "fake:b"))

	if len(rp.shown) != int(numPanes) {
		t.Fatalf("%d images placed, want %d", len(rp.shown), numPanes)
	}
	for p := range numPanes {
		a, r := rp.shown[paneID(p)], m.lay.panes[p]
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
	// The expanded help keeps the images, in the smaller body it leaves.
	send(m, press("?"))
	if len(rp.shown) != int(numPanes) || rp.shown[paneID(paneA)].Rows != m.lay.panes[paneA].H {
		t.Errorf("with the help expanded, images at %v, laid out at %+v", rp.shown, m.lay.panes[paneA])
	}
	send(m, press("esc"))
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
	if len(rp.shown) != int(numPanes) || rp.shown[paneID(paneA)].Cols != m.lay.panes[paneA].W {
		t.Errorf("after resize: %v", rp.shown)
	}
}
