package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// SetDescription says what a decision set asks, for reports.
func SetDescription(set string) string {
	switch set {
	case SetStyle:
		return "A shares the reference's style, B does not; A and B share a content"
	case SetContent:
		return "A shares the reference's content, B does not; A and B share a style"
	}
	return "every decision of the benchmark"
}

// metricTitle names a metric with its direction.
func metricTitle(m string) string {
	switch m {
	case "aas":
		return "AAS"
	case "cos":
		return "feature cosine (no alignment)"
	case "mse":
		return "MSE (lower = more similar)"
	}
	return m
}

// TimestepLabel is a column's heading: t and the reference's step index.
func TimestepLabel(t, step int) string {
	if step == 0 {
		return fmt.Sprintf("t=%d", t)
	}
	return fmt.Sprintf("t=%d (step %d)", t, step)
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) }

// CellText is a cell's accuracy and interval in percent: "87.5 [84.1, 90.3]"; "n/a" without
// decisions or where the layer carries no image information.
func CellText(c CellReport) string {
	if c.N == 0 || c.Meaningless {
		return "n/a"
	}
	return fmt.Sprintf("%s [%s, %s]", pct(float64(c.Accuracy)), pct(float64(c.Low)), pct(float64(c.High)))
}

// WriteText prints the report for people: per decision set and metric, the accuracy matrix
// (layers down, timesteps across) with 95% Wilson intervals, the best cell marked * and the
// cells not distinguishable from it marked =; for the grid layout, then style − content.
func (r Report) WriteText(w io.Writer) error {
	g := r.Settings
	var b strings.Builder
	fmt.Fprintf(&b, "%s: model %s, %d px, seed %d; %d decisions × %d timesteps", g.Layout, g.Model, g.Size, g.Seed, g.Total, len(g.T))
	if r.Complete() {
		b.WriteString(" (complete)\n")
	} else {
		fmt.Fprintf(&b, " (INCOMPLETE: %d of %d recorded)\n", r.Records, r.Expected)
	}
	b.WriteString("accuracy % [95% Wilson interval]; * best of the table, = not distinguishable from it (McNemar's exact test on the same decisions, p ≥ 0.05)\n")
	for s, set := range g.Sets {
		for mi, m := range g.Metrics {
			n := 0
			for _, c := range r.Cells {
				if c.Set == set && c.Metric == m {
					n = max(n, c.N+c.Skipped)
				}
			}
			fmt.Fprintf(&b, "\n%s · %s · %d decisions: %s\n", set, metricTitle(m), n, SetDescription(set))
			r.table(&b, func(li, ti int) string {
				c := r.At(s, mi, li, ti)
				mark := " "
				switch {
				case c.Best:
					mark = "*"
				case c.Indistinguishable:
					mark = "="
				}
				return mark + CellText(c)
			})
			r.writeBest(&b, s, mi)
		}
	}
	if d, ok := r.StyleContentSets(); ok {
		for mi, m := range g.Metrics {
			fmt.Fprintf(&b, "\nstyle − content · %s · accuracy points [95%% Newcombe interval]; > 0: the cell follows style more than content\n", metricTitle(m))
			r.table(&b, func(li, ti int) string {
				return " " + DifferenceText(r.At(d[0], mi, li, ti), r.At(d[1], mi, li, ti))
			})
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// StyleContentSets returns the style and content sets' positions when the report has both
// (the grid layout), whose difference it shows.
func (r Report) StyleContentSets() ([2]int, bool) {
	s, c := -1, -1
	for i, set := range r.Settings.Sets {
		switch set {
		case SetStyle:
			s = i
		case SetContent:
			c = i
		}
	}
	return [2]int{s, c}, s >= 0 && c >= 0
}

// DifferenceOf is style − content at one cell, in [−1, 1], with its interval; NaNs when a side
// has no decisions.
func DifferenceOf(style, content CellReport) (d, lo, hi float64) {
	if style.N == 0 || content.N == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	return Difference(style.Correct, style.N, content.Correct, content.N)
}

// DifferenceText is style − content in accuracy points with its interval: "+25.0 [+18.2, +31.5]".
func DifferenceText(style, content CellReport) string {
	if style.Meaningless {
		return "n/a"
	}
	d, lo, hi := DifferenceOf(style, content)
	if math.IsNaN(d) {
		return "n/a"
	}
	sp := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) }
	sign := func(v float64) string {
		if v >= 0 {
			return "+" + sp(v)
		}
		return sp(v)
	}
	return fmt.Sprintf("%s [%s, %s]", sign(d), sign(lo), sign(hi))
}

func (r Report) table(b *strings.Builder, cell func(li, ti int) string) {
	g := r.Settings
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "layer")
	for ti, t := range g.T {
		fmt.Fprint(tw, "\t "+TimestepLabel(t, g.Step[ti]))
	}
	fmt.Fprintln(tw)
	for li, l := range g.Layers {
		fmt.Fprint(tw, l.Label)
		for ti := range g.T {
			fmt.Fprint(tw, "\t"+cell(li, ti))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func (r Report) writeBest(b *strings.Builder, s, mi int) {
	g := r.Settings
	var best *CellReport
	var like []string
	for li, l := range g.Layers {
		for ti, t := range g.T {
			c := r.At(s, mi, li, ti)
			switch {
			case c.Best:
				best = &c
			case c.Indistinguishable:
				like = append(like, fmt.Sprintf("%s %s", l.Label, TimestepLabel(t, g.Step[ti])))
			}
		}
	}
	if best == nil {
		b.WriteString("best: none (no decisions made)\n")
		return
	}
	ti := g.TIndex(best.T)
	fmt.Fprintf(b, "best: %s %s, %s%% [%s, %s], %d of %d", best.LayerLabel, TimestepLabel(best.T, g.Step[ti]),
		pct(float64(best.Accuracy)), pct(float64(best.Low)), pct(float64(best.High)), best.Correct, best.N)
	if len(like) == 0 {
		b.WriteString("; every other cell is distinguishable from it\n")
		return
	}
	if len(like) > 6 {
		fmt.Fprintf(b, "; %d other cells are not distinguishable from it (marked =)\n", len(like))
		return
	}
	fmt.Fprintf(b, "; not distinguishable from it: %s\n", strings.Join(like, "; "))
}

// WriteJSON prints one JSON object per cell, one per line.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, c := range r.Cells {
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	return nil
}

// WriteCSV prints one row per cell, with a header; empty fields where a value does not apply.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"set", "layer", "layer_index", "layer_label", "t", "step", "metric", "accuracy", "ci_low", "ci_high", "n", "correct", "skipped", "best", "indistinguishable", "p_vs_best", "meaningless"})
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	for _, c := range r.Cells {
		cw.Write([]string{c.Set, c.Layer, strconv.Itoa(c.LayerIndex), c.LayerLabel, strconv.Itoa(c.T), strconv.Itoa(c.Step), c.Metric,
			f(float64(c.Accuracy)), f(float64(c.Low)), f(float64(c.High)), strconv.Itoa(c.N), strconv.Itoa(c.Correct), strconv.Itoa(c.Skipped),
			strconv.FormatBool(c.Best), strconv.FormatBool(c.Indistinguishable), f(float64(c.PBest)), strconv.FormatBool(c.Meaningless)})
	}
	cw.Flush()
	return cw.Error()
}
