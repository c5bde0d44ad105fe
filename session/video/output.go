package video

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/diffsim/diffsim/api"
)

// WriteCSV writes one row per frame; the first frame's to_previous is empty.
func WriteCSV(w io.Writer, r Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"index", "frame", "name", "to_first", "to_previous"})
	for _, f := range r.Frames {
		prev := ""
		if f.ToPrevious != nil {
			prev = strconv.FormatFloat(float64(*f.ToPrevious), 'g', -1, 64)
		}
		_ = cw.Write([]string{strconv.Itoa(f.Index), strconv.Itoa(f.Frame), f.Name, strconv.FormatFloat(float64(f.ToFirst), 'g', -1, 64), prev})
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes the frames as aligned columns, then the clip's consistency.
func WriteTable(w io.Writer, r Result, m api.Metric) error {
	nameW := len("name")
	for _, f := range r.Frames {
		nameW = max(nameW, len(f.Name))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%5s  %6s  %-*s  %9s  %11s\n", "index", "frame", nameW, "name", "to first", "to previous")
	for _, f := range r.Frames {
		prev := "-"
		if f.ToPrevious != nil {
			prev = value(*f.ToPrevious)
		}
		fmt.Fprintf(&b, "%5d  %6d  %-*s  %9s  %11s\n", f.Index, f.Frame, nameW, f.Name, value(f.ToFirst), prev)
	}
	word := "lowest"
	if !m.HigherIsMoreSimilar() {
		word = "highest"
	}
	fmt.Fprintf(&b, "\nconsistency over %d frames (%s, frames 1…%d):\n", len(r.Frames), m, len(r.Frames)-1)
	for _, c := range []struct {
		what string
		s    Summary
	}{{"to first", r.ToFirst}, {"to previous", r.ToPrevious}} {
		worst := c.s.Worst(m)
		where := fmt.Sprintf("frame %d", worst.Frame)
		if worst.Name != where {
			where += " (" + worst.Name + ")"
		}
		fmt.Fprintf(&b, "  %-11s  mean %s, %s %s at %s\n", c.what, value(c.s.Mean), word, value(worst.Score), where)
	}
	if r.Meaningless != "" {
		fmt.Fprintf(&b, "note: %s\n", r.Meaningless)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// value prints a score with four decimals, or in exponent form when that would print zero.
func value(v api.Float) string {
	if v != 0 && -1e-3 < v && v < 1e-3 {
		return strconv.FormatFloat(float64(v), 'e', 3, 64)
	}
	return strconv.FormatFloat(float64(v), 'f', 4, 64)
}
