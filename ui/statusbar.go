package ui

import (
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// statusBar is the bottom line: background work, cache, and the last error or note.
type statusBar struct {
	st      Styles
	width   int
	spinner string
	working string // what is running, "" when idle
	cache   string
	err     error
	notice  string
}

func (p *statusBar) SetSize(w, _ int) { p.width = w }

func (p statusBar) View() string {
	st := p.st
	var left string
	if p.working != "" {
		left = p.spinner + " " + st.Warn.Render(p.working)
	} else {
		left = st.OK.Render("● ready")
	}
	right := st.Dim.Render(p.cache)
	mid := ""
	switch {
	case p.err != nil:
		mid = st.Error.Render("✗ " + oneLine(p.err.Error()))
	case p.notice != "":
		mid = st.Notice.Render(p.notice)
	}
	gap := p.width - lipgloss.Width(left) - lipgloss.Width(right) - 2
	mid = ansi.Truncate(mid, max(gap-2, 0), "…")
	pad := max(gap-lipgloss.Width(mid)-1, 0)
	return block(" "+left+"  "+mid+strings.Repeat(" ", pad)+right, p.width, 1)
}
