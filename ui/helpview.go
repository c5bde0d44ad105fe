package ui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// helpView is the help: one line of the active view's keys under the screen, and, expanded
// by ?, a page over the body with every key and what each number on screen means. The page
// replaces the body rather than squeezing it, so it fits an 80×23 terminal whole.
type helpView struct {
	st            Styles
	model         help.Model
	width, height int // the page's size: the body's
	open          bool
}

func newHelpView(st Styles, dark bool) helpView {
	h := helpView{st: st, model: help.New()}
	h.SetStyles(st, dark)
	return h
}

func (h *helpView) SetStyles(st Styles, dark bool) {
	h.st = st
	h.model.Styles = help.DefaultStyles(dark)
}

// SetSize sets the page's size; the line takes the width.
func (h *helpView) SetSize(w, ht int) {
	h.width, h.height = w, ht
	h.model.SetWidth(w - 1) // the line starts with a space
}

// Toggle opens or folds the page.
func (h *helpView) Toggle() { h.open = !h.open }

// Open reports whether the page is open.
func (h helpView) Open() bool { return h.open }

// The help has no keys of its own: ? and esc are the root's.
func (h helpView) ShortHelp() []key.Binding  { return nil }
func (h helpView) FullHelp() [][]key.Binding { return nil }

// Line is the one-line help for km.
func (h helpView) Line(km help.KeyMap) string {
	return block(" "+h.model.ShortHelpView(km.ShortHelp()), h.width, 1)
}

// glossary says what each number on the screen means, one line each at 80 columns.
var glossary = [][2]string{
	{"AAS", "cosine: A's attention output vs A's queries over B's keys, values"},
	{"A→B B→A", "the two directions of AAS; the score is their mean"},
	{"cos", "the same attention outputs compared in place, without alignment"},
	{"mse", "mean squared difference of those outputs; lower = more similar"},
	{"global", "cosine of the model's global image embedding (CLS), if it has one"},
	{"rescaled", "(s − b)/(1 − b), b = unrelated pairs' mean: 0 typical, 1 identical"},
	{"percentile", "the share of unrelated pairs less similar than this pair"},
	{"maps", "per token: cosine of its self- and cross-attended features"},
	{"t", fmt.Sprintf("DDPM timestep 0–%d, the noise added (reference step = 1001 − t)", maxT)},
}

// Page draws the expanded help for km in the body's size: the keys in as many columns as
// fit, then the glossary, the longer explanations wrapped.
func (h helpView) Page(km help.KeyMap) string {
	st := h.st
	keys := h.model.FullHelpView(h.fitColumns(km.FullHelp(), h.width-2))
	var lines []string
	for _, l := range strings.Split(keys, "\n") {
		lines = append(lines, " "+l)
	}
	lines = append(lines, "", " "+st.PanelTitle.Render("What the numbers mean"))
	termW := 0
	for _, g := range glossary {
		termW = max(termW, ansi.StringWidth(g[0]))
	}
	var items []item
	for _, g := range glossary {
		it := words(0, st.Dim, g[1])
		it.chunks = append([]chunk{{{padRight(g[0], termW), st.Label}}}, it.chunks...)
		it.indent = termW + 1
		items = append(items, it)
	}
	items = append(items, words(1, st.Dim, "? or esc folds this page · click a photo for a token, a layer, the slider"))
	room := h.height - len(lines)
	for _, l := range fitItems(items, h.width-2, room) {
		lines = append(lines, " "+l)
	}
	return block(strings.Join(lines, "\n"), h.width, h.height)
}

// fitColumns regroups help columns into as many as fit in width (the most that do), so
// that the expanded help never cuts keys off on the right.
func (h helpView) fitColumns(groups [][]key.Binding, width int) [][]key.Binding {
	var all []key.Binding
	for _, g := range groups {
		for _, b := range g {
			if b.Enabled() {
				all = append(all, b)
			}
		}
	}
	for cols := len(groups); cols > 1; cols-- {
		rows := (len(all) + cols - 1) / cols
		var out [][]key.Binding
		for rest := all; len(rest) > 0; {
			n := min(rows, len(rest))
			out = append(out, rest[:n])
			rest = rest[n:]
		}
		if cols == len(groups) {
			out = groups // the groups as they are, when they fit
		}
		measure := h.model
		measure.SetWidth(0) // no limit: the help would cut what does not fit with "…"
		if lipgloss.Width(measure.FullHelpView(out)) <= width {
			return out
		}
	}
	return [][]key.Binding{all}
}
