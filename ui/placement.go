package ui

import (
	"fmt"

	"github.com/diffsim/diffsim/ui/termgfx"
)

// imagePlacer draws encoded images at cell positions after Bubble Tea's frames;
// *termgfx.Writer is the real one.
type imagePlacer interface {
	Place(id string, area termgfx.Area, payload []byte)
	Remove(id string)
	Flush() error
}

func paneID(p pane) string { return fmt.Sprintf("pane%d", p) }

// place hands the current pictures to the placer (sixel only): the panes on screen are
// placed, the others removed, so the placer blanks cells that no longer hold an image.
func (m *Model) place() {
	if m.placer == nil || m.proto != termgfx.Sixel {
		return
	}
	show := m.showImages()
	for p := range numPanes {
		pic := m.pics.panes[p]
		r := pic.rect
		if show && len(pic.sixel) > 0 && r == m.lay.panes[p] && !r.empty() {
			m.placer.Place(paneID(p), termgfx.Area{Row: r.Y, Col: r.X, Rows: r.H, Cols: r.W}, pic.sixel)
		} else {
			m.placer.Remove(paneID(p))
		}
	}
	// The View may not change with the pictures, and then no frame would carry them.
	m.placer.Flush()
}
