package ui

import (
	"math"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/internal/fake"
)

// testClip is a clip of n fake frames whose scores fall away from the first frame.
func testClip(n int) *Clip {
	c := &Clip{Metric: api.AAS, Settings: "Up0 t=401"}
	for i := range n {
		f := ClipFrame{Path: "fake:frame" + string(rune('a'+i)), Name: "frame" + string(rune('0'+i%10)) + ".png", Frame: i,
			ToFirst: 1 - 0.05*float64(i), ToPrevious: math.NaN()}
		if i > 0 {
			f.ToPrevious = 0.9 + 0.01*float64(i%3)
		}
		c.Frames = append(c.Frames, f)
	}
	return c
}

// clipModel is a ready model exploring a clip of n frames.
func clipModel(t testing.TB, w, h, n int) *Model {
	t.Helper()
	m, _ := newTestModel(t, w, h, "", "")
	opts := m.opts
	opts.Clip = testClip(n)
	m = New(t.Context(), testBackend{fake.New()}, "ignored", "ignored", opts)
	m.now = func() time.Time { return fixedNow }
	send(m, tea.WindowSizeMsg{Width: w, Height: h})
	drive(m, m.loadCmd(m.pair.pathA, m.pair.pathB))
	drive(m, m.statsCmd())
	return m
}

func TestClipFrameNavigation(t *testing.T) {
	tests := []struct {
		keys      []string
		frame     int
		tokenX    int // the token cursor's column (starts at 2 on the 4×4 grid)
		wantSwapB string
	}{
		{nil, 1, 2, ""},
		{[]string{"right"}, 2, 2, ""},
		{[]string{"]", "]"}, 3, 2, ""},
		{[]string{"left"}, 0, 2, ""},
		{[]string{"left", "left", "["}, 0, 2, ""},
		{[]string{"right", "right", "right", "right", "right", "right"}, 4, 2, ""}, // clamps at the last frame
		{[]string{"l"}, 1, 3, ""}, // h and l still move the token
		{[]string{"h"}, 1, 1, ""},
		{[]string{"s", "p"}, 1, 2, ""}, // swap and open are off: A stays the first frame
	}
	for _, tc := range tests {
		m := clipModel(t, 120, 40, 5)
		for _, k := range tc.keys {
			send(m, press(k))
		}
		c := m.clip.Frames
		if m.frame != tc.frame || m.pair.pathA != c[0].Path || m.pair.pathB != c[tc.frame].Path {
			t.Errorf("%v: frame %d, pair %s ⇄ %s; want frame %d, %s ⇄ %s", tc.keys, m.frame, m.pair.pathA, m.pair.pathB, tc.frame, c[0].Path, c[tc.frame].Path)
		}
		if m.pb.open {
			t.Errorf("%v: a prompt opened", tc.keys)
		}
		if tx, _, _ := m.token(); tx != tc.tokenX {
			t.Errorf("%v: token column %d, want %d", tc.keys, tx, tc.tokenX)
		}
		if !m.current() || m.rq.res.Req.A.Path != c[0].Path || m.rq.res.Req.B.Path != c[tc.frame].Path {
			t.Errorf("%v: the view is not answered for the frame", tc.keys)
		}
	}
}

// TestClipStaleFrameDropped: a frame passed by quickly loads after the one the cursor
// is on, and is dropped.
func TestClipStaleFrameDropped(t *testing.T) {
	m := clipModel(t, 120, 40, 5)
	_, slow := m.Update(press("right")) // frame 2, still loading
	send(m, press("right"))             // frame 3
	drive(m, slow)
	if m.pair.b.Path != m.clip.Frames[3].Path {
		t.Errorf("image B is %s, want frame 3", m.pair.b.Path)
	}
}

func TestClipMouse(t *testing.T) {
	m := clipModel(t, 120, 40, 5)
	p := m.cp
	send(m, tea.MouseClickMsg(tea.Mouse{X: p.column(4), Y: m.lay.timeline.Y, Button: tea.MouseLeft}))
	if m.frame != 4 {
		t.Errorf("click on frame 4's column: frame %d", m.frame)
	}
	send(m, tea.MouseWheelMsg(tea.Mouse{X: 20, Y: m.lay.timeline.Y + 1, Button: tea.MouseWheelDown}))
	if m.frame != 3 {
		t.Errorf("wheel down: frame %d, want 3", m.frame)
	}
}

// Without a clip the frame keys do nothing and ← still moves the token.
func TestFrameKeysNeedAClip(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	send(m, press("]"))
	send(m, press("left"))
	if m.pair.pathB != "fake:b" {
		t.Errorf("] changed image B to %s", m.pair.pathB)
	}
	if tx, _, _ := m.token(); tx != 1 {
		t.Errorf("← moved the token to column %d, want 1", tx)
	}
}
