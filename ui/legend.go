package ui

import (
	"fmt"
	"math"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/heatmap"
)

// colourBar is a one-line legend for a map drawn with the viridis colormap from lo to hi:
// "cos 0.312 ▐ramp▌ 0.921" in exactly w columns. What does not fit goes in order: the
// name, then the ramp (down to three cells), then everything but "lo–hi"; nothing is cut.
func colourBar(st Styles, name string, lo, hi float64, w int) string {
	if w <= 0 {
		return ""
	}
	cm := heatmap.Viridis()
	ramp := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(st.Swatch(cm.At(float64(i) / float64(max(n-1, 1)))).Render(" "))
		}
		return b.String()
	}
	d0 := decimalsFor(lo, hi)
	for _, withName := range []bool{true, false} {
		// Fewer decimals before no ramp: the ends stay apart down to one decimal less.
		for d := d0; d >= max(d0-1, 1); d-- {
			l, h := fmt.Sprintf("%.*f", d, lo), fmt.Sprintf("%.*f", d, hi)
			prefix := ""
			if withName && name != "" {
				prefix = name + " "
			}
			if n := w - len(l) - len(h) - 2 - ansi.StringWidth(prefix); n >= 3 {
				return st.Label.Render(prefix) + st.Value.Render(l) + " " + ramp(n) + " " + st.Value.Render(h)
			}
		}
	}
	if s := fmtRange(lo, hi); ansi.StringWidth(s) <= w {
		return padRight(st.Value.Render(s), w)
	}
	return strings.Repeat(" ", w)
}

// decimalsFor is how many decimals tell lo and hi apart, and a step between them.
func decimalsFor(lo, hi float64) int {
	d := 2
	if span := hi - lo; span > 0 {
		d = min(max(int(math.Ceil(-math.Log10(span)))+1, 2), 5)
	}
	return d
}

// rangeEnds formats lo and hi with enough decimals to tell them apart.
func rangeEnds(lo, hi float64) (string, string) {
	d := decimalsFor(lo, hi)
	return fmt.Sprintf("%.*f", d, lo), fmt.Sprintf("%.*f", d, hi)
}

// fmtRange prints lo–hi with enough decimals to tell them apart.
func fmtRange(lo, hi float64) string {
	l, h := rangeEnds(lo, hi)
	return l + "–" + h
}
