package ui

import (
	"fmt"
	"math"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
)

// block normalises s to exactly w columns × h lines: long lines are cut, short ones padded.
func block(s string, w, h int) string {
	if w <= 0 || h <= 0 {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	pad := strings.Repeat(" ", w)
	for i, l := range lines {
		lw := ansi.StringWidth(l)
		switch {
		case lw > w:
			lines[i] = ansi.Truncate(l, w, "")
		case lw < w:
			lines[i] = l + pad[:w-lw]
		}
	}
	for len(lines) < h {
		lines = append(lines, pad)
	}
	return strings.Join(lines, "\n")
}

// ellipsize shortens s to w columns, cutting the middle: layer names differ at both ends.
func ellipsize(s string, w int) string {
	if ansi.StringWidth(s) <= w || w < 5 {
		return ansi.Truncate(s, max(w, 0), "")
	}
	r := []rune(s)
	head := (w - 1) / 2
	tail := w - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// shortName abbreviates a module path for the layer list:
// down_blocks.0.attentions.1.transformer_blocks.0.attn2 → down0.1.0.attn2.
func shortName(l api.Layer) string { return l.Abbrev() }

func metricName(m api.Metric) string {
	switch m {
	case api.AAS:
		return "AAS"
	case api.Cosine:
		return "feature cos"
	case api.MSE:
		return "MSE"
	}
	return string(m)
}

// directionIn is direction, or its short form when the long one does not fit in w columns.
func directionIn(m api.Metric, w int) string {
	if d := direction(m); ansi.StringWidth(d) <= w {
		return d
	}
	if m.HigherIsMoreSimilar() {
		return "↑ similar"
	}
	return "↓ similar"
}

func direction(m api.Metric) string {
	if m.HigherIsMoreSimilar() {
		return "higher = more similar"
	}
	return "lower = more similar"
}

func fmtMaybe(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.3f", v)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func ansiWidth(s string) int { return ansi.StringWidth(s) }

// Fitting text without cutting it. A panel's content is a list of items, each a run of
// chunks that are never split (a label with its value, a word); an item wraps at chunk
// boundaries, and when the items do not fit in the panel's height the least important go
// first. So a narrow or short terminal loses whole pieces of information, never half a
// name or number.

// seg is a piece of text in one style.
type seg struct {
	text string
	st   lipgloss.Style
}

// chunk is text that stays on one line: a word, or a label with its value.
type chunk []seg

func (c chunk) width() int {
	n := 0
	for _, s := range c {
		n += ansi.StringWidth(s.text)
	}
	return n
}

func (c chunk) render() string {
	var b strings.Builder
	for _, s := range c {
		b.WriteString(s.st.Render(s.text))
	}
	return b.String()
}

// item is one piece of information: chunks joined by sep, wrapped as a paragraph.
// Lower prio is more important; indent starts its continuation lines.
type item struct {
	prio   int
	sep    string
	chunks []chunk
	indent int
}

// words makes an item of the words of text in style st, joined by spaces.
func words(prio int, st lipgloss.Style, text string) item {
	var cs []chunk
	for _, w := range strings.Fields(text) {
		cs = append(cs, chunk{{w, st}})
	}
	return item{prio: prio, sep: " ", chunks: cs}
}

// lines wraps the item to w columns. A chunk wider than w is broken where a path or a
// module name allows (after / . _ -), and only as a last resort anywhere.
func (it item) lines(w int) []string {
	if w <= 0 {
		return nil
	}
	var out []string
	var cur strings.Builder
	used, has := 0, false // columns used on the current line; whether it holds a chunk
	sepW := ansi.StringWidth(it.sep)
	indent := min(it.indent, w/2)
	flush := func() {
		out = append(out, cur.String())
		cur.Reset()
		cur.WriteString(strings.Repeat(" ", indent))
		used, has = indent, false
	}
	for _, c := range it.chunks {
		cw := c.width()
		if cw == 0 {
			continue
		}
		if has {
			if used+sepW+cw <= w {
				cur.WriteString(it.sep)
				used += sepW
			} else {
				flush()
			}
		}
		if used+cw <= w {
			cur.WriteString(c.render())
			used += cw
			has = true
			continue
		}
		// Too wide for any line: break it at the places a path or a name allows.
		for _, s := range c {
			for _, piece := range breakable(s.text, w-used, w-indent) {
				if piece == "" {
					flush()
					continue
				}
				if used+ansi.StringWidth(piece) > w && has {
					flush()
				}
				cur.WriteString(s.st.Render(piece))
				used += ansi.StringWidth(piece)
				has = true
			}
		}
	}
	if has || len(out) == 0 {
		out = append(out, cur.String())
	}
	return out
}

// breakable splits s into pieces that fit: the first in first columns, the others in
// rest, breaking after / . _ - where it can, else anywhere.
func breakable(s string, first, rest int) []string {
	var out []string
	room := max(first, 1)
	r := []rune(s)
	for len(r) > 0 {
		if ansi.StringWidth(string(r)) <= room {
			out = append(out, string(r))
			break
		}
		cut := -1
		w := 0
		for i, c := range r {
			w += ansi.StringWidth(string(c))
			if w > room {
				break
			}
			if strings.ContainsRune("/._-", c) {
				cut = i + 1
			}
		}
		if cut <= 0 {
			if room < rest && len(out) == 0 && first < rest {
				// Nothing breaks well in what is left of this line: start the next one.
				out = append(out, "")
				room = max(rest, 1)
				continue
			}
			cut = 0
			w = 0
			for i, c := range r {
				w += ansi.StringWidth(string(c))
				if w > room {
					break
				}
				cut = i + 1
			}
			cut = max(cut, 1)
		}
		out = append(out, string(r[:cut]))
		r = r[cut:]
		room = max(rest, 1)
	}
	return out
}

// fitItems wraps items to w columns and drops the least important until they fit in h
// lines, keeping their order. An item with prio < 0 is never dropped (it may be cut at
// the bottom when it alone is taller than h).
func fitItems(items []item, w, h int) []string {
	wrapped := make([][]string, len(items))
	total := 0
	for i, it := range items {
		wrapped[i] = it.lines(w)
		total += len(wrapped[i])
	}
	dropped := make([]bool, len(items))
	for total > h {
		worst := -1
		for i, it := range items {
			if !dropped[i] && it.prio >= 0 && (worst < 0 || it.prio > items[worst].prio ||
				(it.prio == items[worst].prio && i > worst)) {
				worst = i
			}
		}
		if worst < 0 {
			break
		}
		dropped[worst] = true
		total -= len(wrapped[worst])
	}
	var out []string
	for i := range items {
		if !dropped[i] {
			out = append(out, wrapped[i]...)
		}
	}
	if len(out) > h {
		out = out[:max(h, 0)]
	}
	return out
}

// firstFit is the first of choices that fits in w columns, or "".
func firstFit(w int, choices ...string) string {
	for _, c := range choices {
		if ansi.StringWidth(c) <= w {
			return c
		}
	}
	return ""
}

// shortenLeft shortens a path to w columns by dropping leading folders ("…/b/c.png"),
// keeping the file name whole when it fits at all.
func shortenLeft(p string, w int) string {
	if ansi.StringWidth(p) <= w {
		return p
	}
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		s := "…/" + strings.Join(parts[i:], "/")
		if ansi.StringWidth(s) <= w {
			return s
		}
	}
	return p // the name alone is too long: the caller wraps it
}
