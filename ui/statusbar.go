package ui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// statusData is what the status line says.
type statusData struct {
	spinner string
	working string // what is running, "" when idle
	cache   string
	err     error  // the last error, until the next action
	notice  string // the last note (an export's paths), until the next action
}

// statusBar is the bottom line: background work, the cache, and the last error or note.
// A message too long for the line is never cut: it wraps onto lines of its own above the
// status line (the root lends it the timeline's rows until the next action clears it).
type statusBar struct {
	st    Styles
	width int
	d     statusData
}

func newStatusBar(st Styles) statusBar { return statusBar{st: st} }

func (p *statusBar) SetSize(w, _ int)     { p.width = w }
func (p *statusBar) SetStyles(st Styles)  { p.st = st }
func (p *statusBar) SetData(d statusData) { p.d = d }

// The status line has no keys of its own.
func (p statusBar) ShortHelp() []key.Binding  { return nil }
func (p statusBar) FullHelp() [][]key.Binding { return nil }

// maxMessageLines bounds a wrapped message: the timeline's rows.
const maxMessageLines = timelineH

func (p statusBar) left() string {
	if p.d.working != "" {
		return p.d.spinner + " " + p.st.Warn.Render(p.d.working)
	}
	return p.st.OK.Render("● ready")
}

func (p statusBar) message() (string, lipgloss.Style) {
	switch {
	case p.d.err != nil:
		return "✗ " + oneLine(p.d.err.Error()), p.st.Error
	case p.d.notice != "":
		return p.d.notice, p.st.Notice
	}
	return "", lipgloss.Style{}
}

// Lines draws the status: one line when the message fits beside the work in progress
// (the cache's counters go first), else the message's own lines and then the status line.
func (p statusBar) Lines() []string {
	left := p.left()
	msg, style := p.message()
	right := p.st.Dim.Render(p.d.cache)
	lw, rw, mw := lipgloss.Width(left), lipgloss.Width(right), ansi.StringWidth(msg)
	one := func(mid string, withRight bool) string {
		s := " " + left + "  " + mid
		if withRight {
			gap := p.width - lipgloss.Width(s) - rw
			s += strings.Repeat(" ", max(gap, 1)) + right
		}
		return block(s, p.width, 1)
	}
	switch {
	case msg == "":
		return []string{one("", lw+rw+3 <= p.width)}
	case 1+lw+2+mw+2+rw <= p.width:
		return []string{one(style.Render(msg), true)}
	case 1+lw+2+mw <= p.width:
		return []string{one(style.Render(msg), false)}
	}
	it := words(0, style, msg)
	it.indent = 2
	wrapped := it.lines(p.width - 2)
	if len(wrapped) > maxMessageLines {
		// Beyond the rows it may take, the message ends at a whole word.
		wrapped = wrapped[:maxMessageLines]
		last := ansi.Strip(wrapped[maxMessageLines-1])
		wrapped[maxMessageLines-1] = style.Render(fitWords(last, p.width-4) + " …")
	}
	out := make([]string, 0, len(wrapped)+1)
	for _, l := range wrapped {
		out = append(out, block(" "+l, p.width, 1))
	}
	return append(out, one("", lw+rw+3 <= p.width))
}

// View is the status in as many lines as it takes (see Lines).
func (p statusBar) View() string { return strings.Join(p.Lines(), "\n") }
