package api

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteCSV writes one row per layer and timestep; a score that is not a number is empty.
func (sw Sweep) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"layer_index", "layer", "layer_short", "t", "step", "metric", "score", "meaningless"})
	for _, r := range sw.Scores {
		_ = cw.Write([]string{
			strconv.Itoa(r.LayerIndex), r.Layer, r.LayerShort, optInt(r.T), optInt(r.Step),
			string(sw.Metric), optFloat(r.Score), strconv.FormatBool(r.Meaningless != nil),
		})
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes the sweep as a table: layers down, timesteps across, a star on scores that
// carry no image information.
func (sw Sweep) WriteTable(w io.Writer) error {
	var b strings.Builder
	dir := "higher = more similar"
	if !sw.HigherIsMoreSimilar {
		dir = "lower = more similar"
	}
	fmt.Fprintf(&b, "%s (%s), %s vs %s, %d px, seed %d\n", sw.Metric, dir, sw.ImageA, sw.ImageB, sw.Size, sw.Seed)
	nameW := len("layer")
	for _, l := range sw.Layers {
		nameW = max(nameW, len(l.Label()))
	}
	var line strings.Builder
	fmt.Fprintf(&line, "%-*s", nameW, "layer")
	for ti := range sw.Columns() {
		col := "score"
		if sw.Timesteps != nil {
			col = "t=" + strconv.Itoa(sw.Timesteps[ti])
		}
		fmt.Fprintf(&line, "  %7s ", col)
	}
	b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	note := ""
	for li, l := range sw.Layers {
		line.Reset()
		fmt.Fprintf(&line, "%-*s", nameW, l.Label())
		for ti := range sw.Columns() {
			r := sw.At(li, ti)
			mark := " "
			if r.Meaningless != nil {
				mark, note = "*", *r.Meaningless
			}
			v := "    n/a"
			if !r.Score.IsNaN() {
				v = fmt.Sprintf("%7.4f", float64(r.Score))
			}
			fmt.Fprintf(&line, "  %s%s", v, mark)
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	if note != "" {
		fmt.Fprintf(&b, "* %s\n", note)
	}
	fmt.Fprintf(&b, "model: %s\n", sw.ModelDescription)
	_, err := io.WriteString(w, b.String())
	return err
}

func optInt(v *int) string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(*v)
}

// optFloat is a CSV cell: empty for NaN, Go's shortest form otherwise ("+Inf" for +Inf).
func optFloat(v Float) string {
	if v.IsNaN() {
		return ""
	}
	return strconv.FormatFloat(float64(v), 'g', -1, 64)
}
