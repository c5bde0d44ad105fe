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

// Place hands the current pictures to the placer. Sixel: the panes on screen are placed,
// the others removed, so the placer blanks cells that no longer hold an image. Kitty:
// every picture is transmitted (the placer sends it only when its bytes changed) and the
// View shows it, or not, through placeholder cells; the images are deleted on exit.
//
// flush writes the images at once: for new pictures, whose View may not change (and then
// no frame would carry them). A change of screen or layout brings its own frame; flushing
// before it would draw each image twice, once under the frame that erases it.
func (p *pairView) Place(flush bool) {
	if p.placer == nil {
		return
	}
	switch {
	case p.caps.Protocol == termgfx.Sixel:
		show := p.d.show
		for pn := range numPanes {
			pic := p.pics.panes[pn]
			r := pic.rect
			if ok, _ := p.paneCurrent(pn); show && ok && len(pic.sixel) > 0 && r == p.panes[pn] && !r.empty() {
				p.placer.Place(paneID(pn), termgfx.Area{Row: r.Y, Col: r.X, Rows: r.H, Cols: r.W}, pic.sixel)
			} else {
				p.placer.Remove(paneID(pn))
			}
		}
	case p.caps.Protocol == termgfx.Kitty && !p.caps.KittyPlaceholders:
		// Direct placement (kitty < 0.28): like sixel, but blank cells do not erase a
		// kitty image, so each carries the delete that takes it off.
		show := p.d.show
		for pn := range numPanes {
			pic := p.pics.panes[pn]
			r := pic.rect
			if ok, _ := p.paneCurrent(pn); show && ok && len(pic.kitty) > 0 && r == p.panes[pn] && !r.empty() {
				p.placer.PlaceRemovable(paneID(pn), termgfx.Area{Row: r.Y, Col: r.X, Rows: r.H, Cols: r.W}, pic.kitty,
					p.caps.Wrap([]byte(heatmap.KittyDelete(kittyID(pn)))))
			} else {
				p.placer.Remove(paneID(pn))
			}
		}
	case p.caps.Protocol == termgfx.Kitty:
		for pn := range numPanes {
			if pic := p.pics.panes[pn]; len(pic.kitty) > 0 {
				p.placer.Transmit(paneID(pn), pic.kitty, []byte(heatmap.KittyDelete(kittyID(pn))))
			}
		}
	default:
		return
	}
	if flush {
		p.placer.Flush()
	}
}
