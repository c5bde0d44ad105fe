package ui

import (
	"fmt"
	"math"
	"strings"

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
func shortName(l api.Layer) string {
	if l.Short != "" {
		suffix := ""
		if i := strings.LastIndex(l.Name, "."); i >= 0 {
			suffix = " " + l.Name[i+1:]
		}
		return l.Short + suffix
	}
	r := strings.NewReplacer("down_blocks.", "down", "up_blocks.", "up", "mid_block.", "mid.",
		".attentions.", ".", "attentions.", "", ".transformer_blocks.", ".", "encoder.layers.", "L", "encoder.layer.", "L",
		".self_attn", "", ".attention", "")
	return r.Replace(l.Name)
}

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
