package ui

import (
	"strings"
	"testing"
	"time"
)

// A network run that takes long at a large working size on the CPU gets a hint in the
// status line; a short one, a small size or a GPU does not.
func TestSlowRunSuggestsASmallerSize(t *testing.T) {
	for _, c := range []struct {
		size   int
		device string
		after  time.Duration
		hint   bool
	}{
		{512, "cpu", 6 * time.Second, true},
		{512, "cpu", 2 * time.Second, false},
		{256, "cpu", 30 * time.Second, false},
		{512, "cuda:0", 30 * time.Second, false},
	} {
		m, _ := readyModel(t, 120, 40)
		m.info.Size, m.info.Device = c.size, c.device
		m.rq.fg = job{busy: true, req: m.rq.fg.req, since: fixedNow.Add(-c.after)}
		sb := m.statusData()
		got := strings.Contains(sb.working, "--size 256")
		if got != c.hint {
			t.Errorf("size %d on %s after %v: hint %v, want %v (%q)", c.size, c.device, c.after, got, c.hint, sb.working)
		}
		if got && !strings.Contains(sb.working, "~4×") {
			t.Errorf("512 px against 256 px is 4× the pixels: %q", sb.working)
		}
	}
}
