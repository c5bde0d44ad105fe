package ui

import (
	"fmt"

	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// imagePlacer draws encoded images at cell positions after Bubble Tea's frames;
// *termgfx.Writer is the real one.
type imagePlacer interface {
	Place(id string, area termgfx.Area, payload []byte)
	PlaceRemovable(id string, area termgfx.Area, payload, remove []byte)
	Transmit(id string, payload, remove []byte)
	Remove(id string)
	Flush() error
}

func paneID(p pane) string { return fmt.Sprintf("pane%d", p) }

// kittyIDBase numbers the panes' kitty images. The ids stay below 256 so that the
// placeholder cells carry them as a 256-colour index, which survives a renderer that
// downsamples 24-bit colour; a base well above 1 keeps clear of other programs' first
// images in the same window.
const kittyIDBase = 0xd0

// kittyID is pane p's kitty image id: one per pane for the program's life, so the
// placeholders in the View never change and a new picture replaces the old one in place.
func kittyID(p pane) uint32 { return kittyIDBase + uint32(p) }

// place hands the current pictures to the placer. Sixel: the panes on screen are placed,
// the others removed, so the placer blanks cells that no longer hold an image. Kitty:
// every picture is transmitted (the placer sends it only when its bytes changed) and the
// View shows it, or not, through placeholder cells; the images are deleted on exit.
//
// flush writes the images at once: for new pictures, whose View may not change (and then
// no frame would carry them). A change of screen or layout brings its own frame; flushing
// before it would draw each image twice, once under the frame that erases it.
func (m *Model) place(flush bool) {
	if m.placer == nil {
		return
	}
	switch {
	case m.proto == termgfx.Sixel:
		show := m.showImages()
		for p := range numPanes {
			pic := m.pv.pics.panes[p]
			r := pic.rect
			if show && len(pic.sixel) > 0 && r == m.lay.panes[p] && !r.empty() {
				m.placer.Place(paneID(p), termgfx.Area{Row: r.Y, Col: r.X, Rows: r.H, Cols: r.W}, pic.sixel)
			} else {
				m.placer.Remove(paneID(p))
			}
		}
	case m.proto == termgfx.Kitty && !m.caps.KittyPlaceholders:
		// Direct placement (kitty < 0.28): like sixel, but blank cells do not erase a
		// kitty image, so each carries the delete that takes it off.
		show := m.showImages()
		for p := range numPanes {
			pic := m.pv.pics.panes[p]
			r := pic.rect
			if show && len(pic.kitty) > 0 && r == m.lay.panes[p] && !r.empty() {
				m.placer.PlaceRemovable(paneID(p), termgfx.Area{Row: r.Y, Col: r.X, Rows: r.H, Cols: r.W}, pic.kitty,
					m.caps.Wrap([]byte(heatmap.KittyDelete(kittyID(p)))))
			} else {
				m.placer.Remove(paneID(p))
			}
		}
	case m.proto == termgfx.Kitty:
		for p := range numPanes {
			if pic := m.pv.pics.panes[p]; len(pic.kitty) > 0 {
				m.placer.Transmit(paneID(p), pic.kitty, []byte(heatmap.KittyDelete(kittyID(p))))
			}
		}
	default:
		return
	}
	if flush {
		m.placer.Flush()
	}
}
