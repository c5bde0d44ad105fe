// Package termgfx finds out what a terminal can draw and places images inside a Bubble
// Tea program.
//
// Detect runs before the program starts: it asks the terminal (DA1, XTSMGRAPHICS, cell
// and window size, a kitty graphics query) with a short time-out and no goroutine left
// reading stdin, and reports Caps with the reason for every decision. Writer wraps the
// program's output: View reserves blank cells, and after each frame the Writer writes the
// encoded images at their cell positions, again only when they changed or the frame may
// have erased them. See docs/terminal.md for the measurements behind this.
package termgfx

import (
	"fmt"
	"strings"
)

// Protocol is a way of drawing images in a terminal.
type Protocol int

const (
	// Auto means "detect": the --graphics flag's default.
	Auto Protocol = iota
	// None draws no images (the UI shows text only).
	None
	// HalfBlock draws coloured '▀' cells; works in any colour terminal.
	HalfBlock
	// Sixel draws DEC sixel graphics (xterm -ti vt340, foot, WezTerm, mlterm, …).
	Sixel
	// Kitty uses the kitty graphics protocol: Unicode placeholders where the terminal has
	// them (kitty ≥ 0.28), else images placed directly at their cells.
	Kitty
	// Quadrant draws quadrant block characters ('▚', '▟', …): a 2×2 grid of pixels in two
	// colours per cell, twice half-blocks' horizontal detail, in any colour terminal.
	Quadrant
)

var protocolNames = [...]string{"auto", "none", "halfblock", "sixel", "kitty", "quadrant"}

func (p Protocol) String() string {
	if p < 0 || int(p) >= len(protocolNames) {
		return fmt.Sprintf("Protocol(%d)", int(p))
	}
	return protocolNames[p]
}

// ParseProtocol parses a --graphics value: auto, sixel, kitty, halfblock or none.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "none", "off":
		return None, nil
	case "halfblock", "half-block", "halfblocks", "blocks":
		return HalfBlock, nil
	case "sixel":
		return Sixel, nil
	case "kitty":
		return Kitty, nil
	case "quadrant", "quadrants", "quad":
		return Quadrant, nil
	}
	return Auto, fmt.Errorf("--graphics %q: want auto, sixel, kitty, halfblock, quadrant or none", s)
}

// Set implements flag.Value (and pflag.Value with Type) so Protocol can be a flag.
func (p *Protocol) Set(s string) error {
	v, err := ParseProtocol(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Type names the flag's value type for pflag's help output.
func (p *Protocol) Type() string { return "auto|sixel|kitty|halfblock|quadrant|none" }
