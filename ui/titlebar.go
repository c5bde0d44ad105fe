package ui

import (
	"fmt"
	"path/filepath"

	"charm.land/bubbles/v2/key"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/ui/termgfx"
)

// titleData is what the title line shows.
type titleData struct {
	pathA, pathB string
	cond         string // the conditioning, "" for models that take no prompt
	overlay      overlayMode
	protocol     termgfx.Protocol
}

// titleBar is the top line: the pair, the conditioning, the overlay and the graphics. At
// 80 columns the less needed parts go first (the graphics protocol, then the word
// "overlay"), and long file names are shortened in the middle, so the line is never cut
// mid-word.
type titleBar struct {
	st    Styles
	width int
	d     titleData
}

func newTitleBar(st Styles) titleBar { return titleBar{st: st} }

func (p *titleBar) SetSize(w, _ int)         { p.width = w }
func (p *titleBar) SetStyles(st Styles)      { p.st = st }
func (p *titleBar) SetData(d titleData)      { p.d = d }
func (p titleBar) ShortHelp() []key.Binding  { return nil }
func (p titleBar) FullHelp() [][]key.Binding { return nil }

func (p titleBar) View() string {
	st := p.st
	cond := ""
	if p.d.cond != "" {
		cond = st.TitleDim.Render("   ") + st.Title.Render(p.d.cond)
	}
	tails := []string{
		fmt.Sprintf("   overlay: %s · graphics: %s ", p.d.overlay, p.d.protocol),
		fmt.Sprintf("   overlay: %s ", p.d.overlay),
		fmt.Sprintf("  %s ", p.d.overlay),
		"",
	}
	for _, nameW := range []int{40, 24, 16, 10} {
		name := func(path string) string {
			if path == "" {
				return "—" // not picked yet
			}
			return ellipsize(filepath.Base(path), nameW)
		}
		head := st.Title.Render(" diffsim ") +
			st.TitleDim.Render(" A ") + st.Title.Render(name(p.d.pathA)) +
			st.TitleDim.Render("  ⇄  B ") + st.Title.Render(name(p.d.pathB)) + cond
		for _, tail := range tails {
			if s := head + st.TitleDim.Render(tail); lipgloss.Width(s) <= p.width {
				return st.TitleDim.Width(p.width).Render(s)
			}
		}
	}
	return ansi.Truncate(st.Title.Render(" diffsim "), p.width, "")
}
