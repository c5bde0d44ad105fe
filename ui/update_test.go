package ui

import (
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/charmbracelet/x/ansi"
	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/ui/internal/fake"
	"github.com/diffsim/diffsim/ui/termgfx"
)

func TestReadyState(t *testing.T) {
	m, f := readyModel(t, 120, 40)
	if m.pair.a == nil || m.pair.b == nil || m.pair.loading {
		t.Fatalf("pair not loaded: a=%v b=%v loading=%v err=%v", m.pair.a, m.pair.b, m.pair.loading, m.pair.loadErr)
	}
	if !m.current() {
		t.Fatalf("no result for the current view")
	}
	want := fake.ScoreAt(m.sel.layer, m.sel.t, api.AAS)
	if m.rq.res.Score != want {
		t.Errorf("score = %v, want %v", m.rq.res.Score, want)
	}
	// The current timestep and its neighbours are scored in the background.
	for _, tt := range []int{401, 411, 391, 501, 301} {
		if _, ok := m.rq.scores[scoreKey{tt, api.AAS}]; !ok {
			t.Errorf("layer scores for t=%d not computed", tt)
		}
	}
	c := f.Calls()
	if c.Forwards != 5 {
		t.Errorf("forwards = %d, want 5 (one per timestep)", c.Forwards)
	}
	if m.pv.shown == 0 {
		t.Errorf("no pictures rendered")
	}
}

// TestKeys checks what every key does, from the ready state.
func TestKeys(t *testing.T) {
	tests := []struct {
		name  string
		keys  []string
		check func(t *testing.T, m *Model)
	}{
		{"fine forward", []string{"."}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 411) }},
		{"fine back", []string{","}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 391) }},
		{"coarse forward", []string{">"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 501) }},
		{"coarse back", []string{"<"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 301) }},
		{"coarse forward shift+right", []string{"shift+right"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 501) }},
		{"coarse back shift+left", []string{"shift+left"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 301) }},
		{"t clamps at 999", []string{">", ">", ">", ">", ">", ">", ">"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 999) }},
		{"t clamps at 0", []string{"<", "<", "<", "<", "<"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 0) }},
		{"layer down", []string{"J"}, func(t *testing.T, m *Model) { wantInt(t, "layer", m.sel.layer, 6) }},
		{"layer up", []string{"K"}, func(t *testing.T, m *Model) { wantInt(t, "layer", m.sel.layer, 4) }},
		{"layer pgdown", []string{"pgdown"}, func(t *testing.T, m *Model) { wantInt(t, "layer", m.sel.layer, 6) }},
		{"layer pgup", []string{"pgup"}, func(t *testing.T, m *Model) { wantInt(t, "layer", m.sel.layer, 4) }},
		{"layer clamps", []string{"J", "J", "J", "J"}, func(t *testing.T, m *Model) { wantInt(t, "layer", m.sel.layer, 7) }},
		{"token right", []string{"right"}, func(t *testing.T, m *Model) { wantToken(t, m, 3, 2) }},
		{"token left h", []string{"h"}, func(t *testing.T, m *Model) { wantToken(t, m, 1, 2) }},
		{"token up k", []string{"k"}, func(t *testing.T, m *Model) { wantToken(t, m, 2, 1) }},
		{"token down", []string{"down"}, func(t *testing.T, m *Model) { wantToken(t, m, 2, 3) }},
		{"token l and j", []string{"l", "j"}, func(t *testing.T, m *Model) { wantToken(t, m, 3, 3) }},
		{"token clamps", []string{"up", "up", "up", "up"}, func(t *testing.T, m *Model) { wantToken(t, m, 2, 0) }},
		{"metric cycles", []string{"m"}, func(t *testing.T, m *Model) {
			if m.sel.metric != api.Cosine || m.rq.res.Metric != api.Cosine {
				t.Errorf("metric = %v (result %v), want cos", m.sel.metric, m.rq.res.Metric)
			}
		}},
		{"metric wraps", []string{"m", "m", "m"}, func(t *testing.T, m *Model) {
			if m.sel.metric != api.AAS {
				t.Errorf("metric = %v, want aas", m.sel.metric)
			}
		}},
		{"swap", []string{"s"}, func(t *testing.T, m *Model) {
			if m.pair.pathA != "fake:b" || m.pair.a.Path != "fake:b" || m.rq.res.Req.A != m.pair.a {
				t.Errorf("after swap A = %q (%q)", m.pair.pathA, m.pair.a.Path)
			}
		}},
		{"half-blocks start without overlay", nil, func(t *testing.T, m *Model) { wantInt(t, "overlay", int(m.pv.overlay), int(overlayNone)) }},
		{"overlay cycles", []string{"o"}, func(t *testing.T, m *Model) { wantInt(t, "overlay", int(m.pv.overlay), int(overlayCos)) }},
		{"overlay wraps", []string{"o", "o", "o"}, func(t *testing.T, m *Model) { wantInt(t, "overlay", int(m.pv.overlay), int(overlayNone)) }},
		{"sweep opens and fills", []string{"w"}, func(t *testing.T, m *Model) {
			wantInt(t, "screen", int(m.sel.screen), int(screenSweep))
			for _, tt := range schedule.SweepTimesteps() {
				if _, ok := m.rq.scores[scoreKey{tt, m.sel.metric}]; !ok {
					t.Errorf("sweep t=%d not computed", tt)
				}
			}
		}},
		{"sweep closes with w", []string{"w", "w"}, func(t *testing.T, m *Model) { wantInt(t, "screen", int(m.sel.screen), int(screenMain)) }},
		{"sweep closes with esc", []string{"w", "esc"}, func(t *testing.T, m *Model) { wantInt(t, "screen", int(m.sel.screen), int(screenMain)) }},
		{"sweep arrows move its cursor, not the token", []string{"w", "down", "right", "right"}, func(t *testing.T, m *Model) {
			wantInt(t, "sweep row", m.sw.row, 6) // from layer 5 and t=400, nearest 401
			wantInt(t, "sweep col", m.sw.col, 6)
			wantInt(t, "token x", int(m.pv.cx*4), 2)
			wantInt(t, "layer", m.sel.layer, 5)
		}},
		{"sweep enter jumps to the cursor's layer and t", []string{"w", "down", "left", "enter"}, func(t *testing.T, m *Model) {
			wantInt(t, "screen", int(m.sel.screen), int(screenMain))
			wantInt(t, "layer", m.sel.layer, 6)
			wantInt(t, "t", m.sel.t, 300)
			wantInt(t, "score panel layer", m.rq.res.Req.Layer, 6)
			wantInt(t, "score panel t", m.rq.res.Req.T, 300)
		}},
		{"sweep home and end", []string{"w", "end"}, func(t *testing.T, m *Model) { wantInt(t, "sweep col", m.sw.col, 9) }},
		{"help opens its page", []string{"?"}, func(t *testing.T, m *Model) {
			wantInt(t, "screen", int(m.sel.screen), int(screenMain))
			if !m.hv.Open() || m.showImages() {
				t.Errorf("help page: open %v, images shown %v", m.hv.Open(), m.showImages())
			}
		}},
		{"esc folds the help", []string{"?", "esc"}, func(t *testing.T, m *Model) {
			if m.hv.Open() || !m.showImages() {
				t.Errorf("help still open")
			}
		}},
		{"the help page covers the view's keys", []string{"?", "."}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 401) }},
		{"end and home", []string{"end"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 999) }},
		{"home", []string{"home"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 0) }},
		{"typed t", []string{"t", "2", "5", "0", "enter"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 250) }},
		{"typed t out of range", []string{"t", "1", "2", "3", "4", "enter"}, func(t *testing.T, m *Model) {
			wantInt(t, "t", m.sel.t, 401)
			if m.note.err == nil || !strings.Contains(m.note.err.Error(), "0 to 999") {
				t.Errorf("err = %v", m.note.err)
			}
		}},
		{"bars scale toggles", []string{"a"}, func(t *testing.T, m *Model) { wantInt(t, "scale", int(m.ll.scale), int(scaleAbsolute)) }},
		{"export", []string{"e"}, func(t *testing.T, m *Model) {
			for _, ext := range []string{".png", ".json"} {
				p := filepath.Join(m.opts.ExportDir, "fake-a_vs_fake-b_Up0-attn1_t401"+ext)
				if _, err := os.Stat(p); err != nil {
					t.Errorf("export: %v (notice %q, err %v)", err, m.note.text, m.note.err)
				}
			}
		}},
		{"open prompt", []string{"p"}, func(t *testing.T, m *Model) {
			if !m.pb.open || m.pb.input.Value() != "fake:a fake:b" {
				t.Errorf("prompting=%v value=%q", m.pb.open, m.pb.input.Value())
			}
		}},
		{"prompt esc cancels", []string{"p", "esc"}, func(t *testing.T, m *Model) {
			if m.pb.open {
				t.Error("still prompting")
			}
		}},
		{"prompt keys do not leak", []string{"p", "J", "."}, func(t *testing.T, m *Model) {
			wantInt(t, "layer", m.sel.layer, 5)
			wantInt(t, "t", m.sel.t, 401)
			if got := m.pb.input.Value(); got != "fake:a fake:bJ." {
				t.Errorf("prompt value %q", got)
			}
		}},
		{"unknown key is ignored", []string{"x"}, func(t *testing.T, m *Model) { wantInt(t, "t", m.sel.t, 401) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := readyModel(t, 120, 40)
			for _, k := range tc.keys {
				if send(m, press(k)) {
					t.Fatalf("key %q quit", k)
				}
			}
			tc.check(t, m)
			if tc.name != "unknown key is ignored" && !m.pb.open && m.sel.screen == screenMain && !m.current() {
				t.Errorf("view not answered after %v", tc.keys)
			}
		})
	}
}

func wantInt(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

func wantToken(t *testing.T, m *Model, x, y int) {
	t.Helper()
	tx, ty, idx := m.token()
	if tx != x || ty != y {
		t.Errorf("token = %d,%d, want %d,%d", tx, ty, x, y)
	}
	if m.rq.res == nil || m.rq.res.Req.Token != idx {
		t.Errorf("result not for token %d", idx)
	}
}

func TestQuitKeys(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		m, _ := readyModel(t, 120, 40)
		if !send(m, press(k)) {
			t.Errorf("%s does not quit", k)
		}
	}
	// ctrl+c quits from the prompt too; q types a q there.
	m, _ := readyModel(t, 120, 40)
	send(m, press("p"))
	if send(m, press("q")) {
		t.Error("q in the prompt quits")
	}
	if !send(m, press("ctrl+c")) {
		t.Error("ctrl+c in the prompt does not quit")
	}
}

// TestQuitMidComputation: quitting cancels the network run in flight at once.
func TestQuitMidComputation(t *testing.T) {
	m, f := newTestModel(t, 120, 40, "fake:a", "fake:b")
	drive(m, m.loadCmd("fake:a", "fake:b"))
	f.Delay = time.Hour
	m.Update(press("<"))
	_, cmd := m.Update(press("<")) // t=201: not prefetched
	done := make(chan tea.Msg, 1)
	go func() { done <- firstOf(cmd) }()
	time.Sleep(20 * time.Millisecond)
	_, q := m.Update(press("ctrl+c"))
	if _, ok := q().(tea.QuitMsg); !ok {
		t.Fatal("ctrl+c did not quit")
	}
	select {
	case msg := <-done:
		if e, ok := msg.(errMsg); !ok || !errors.Is(e.err, context.Canceled) {
			t.Errorf("score ended with %#v, want a cancellation", msg)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the network run was not cancelled")
	}
}

// firstOf runs cmd and returns the first message that is not a batch.
func firstOf(cmd tea.Cmd) tea.Msg {
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		for _, c := range b {
			if c != nil {
				return firstOf(c)
			}
		}
	}
	return msg
}

func TestStaleResultsAreDropped(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	old := m.want()
	_, cmd := m.Update(press(".")) // t = 411, not run yet
	stale := api.Result{Req: old, Score: 42}
	m.Update(scoreMsg{gen: m.rq.gen, res: stale})
	if m.rq.res.Score == 42 {
		t.Fatal("a result for t=401 was taken while the view is at t=411")
	}
	drive(m, cmd)
	if !m.current() || m.rq.res.Req.T != 411 {
		t.Fatalf("result for t=%d, want 411", m.rq.res.Req.T)
	}
	// Results about a pair that was swapped away are dropped too.
	gen := m.rq.gen
	send(m, press("s"))
	m.Update(scoreMsg{gen: gen, res: api.Result{Req: m.want(), Score: 42}})
	if m.rq.res.Score == 42 {
		t.Fatal("a result of the old pair was taken")
	}
}

func TestCurrentViewFirst(t *testing.T) {
	m, f := readyModel(t, 120, 40)
	f.Delay = time.Hour // nothing new finishes
	_, cmd := m.Update(press(">"))
	if !m.rq.fg.busy || m.rq.fg.req.T != 501 {
		t.Fatalf("no score requested for t=501")
	}
	if m.rq.bg.busy {
		t.Errorf("background job %d started before the view was answered", m.rq.bg.t)
	}
	_ = cmd
	m.stopWork()
}

func TestLoadErrors(t *testing.T) {
	m, _ := newTestModel(t, 120, 40, "/nonexistent/a.png", "fake:b")
	drive(m, m.loadCmd(m.pair.pathA, m.pair.pathB))
	if m.pair.loadErr == nil || m.pair.a != nil {
		t.Fatalf("missing image loaded: err=%v", m.pair.loadErr)
	}
	if !strings.Contains(m.pair.loadErr.Error(), "image A") || !strings.Contains(m.pair.loadErr.Error(), "a.png") {
		t.Errorf("error %q does not say which image", m.pair.loadErr)
	}
	if v := m.content(); !strings.Contains(v, "Could not open the images") {
		t.Errorf("view does not show the error:\n%s", v)
	}
	// The prompt loads another pair.
	send(m, press("p"))
	send(m, press("ctrl+u"))
	typeText(m, "fake:c 'fake:d e'")
	send(m, press("enter"))
	if m.pair.a == nil || m.pair.a.Path != "fake:c" || m.pair.b.Path != "fake:d e" || m.pair.loadErr != nil {
		t.Fatalf("prompt did not load the pair: %v", m.pair.loadErr)
	}
	// A failed load keeps the pair on screen and reports the error.
	send(m, press("p"))
	send(m, press("ctrl+u"))
	typeText(m, "fake:c /nope.png")
	send(m, press("enter"))
	if m.pair.a == nil || m.note.err == nil {
		t.Errorf("failed load: a=%v err=%v", m.pair.a, m.note.err)
	}
	send(m, press("p"))
	send(m, press("ctrl+u"))
	typeText(m, "just-one")
	send(m, press("enter"))
	if m.note.err == nil || !strings.Contains(m.note.err.Error(), "two image paths") {
		t.Errorf("one path: err = %v", m.note.err)
	}
}

func TestScoreErrorIsShown(t *testing.T) {
	m, f := readyModel(t, 120, 40)
	f.Fail = func(t, layer int) error {
		if t == 411 {
			return errors.New("out of memory")
		}
		return nil
	}
	send(m, press("."))
	if m.note.err == nil || !strings.Contains(m.note.err.Error(), "out of memory") {
		t.Fatalf("err = %v", m.note.err)
	}
	if !strings.Contains(m.content(), "out of memory") {
		t.Error("status line does not show the error")
	}
	send(m, press(","))
	if !m.current() {
		t.Error("no result after moving back")
	}
}

func TestResizeAtAnyMoment(t *testing.T) {
	m, _ := newTestModel(t, 120, 40, "fake:a", "fake:b")
	sizes := [][2]int{{10, 5}, {80, 24}, {0, 0}, {200, 60}, {79, 24}, {300, 100}, {81, 25}}
	cmd := m.loadCmd("fake:a", "fake:b")
	for _, s := range sizes {
		send(m, tea.WindowSizeMsg{Width: s[0], Height: s[1]})
		checkFrame(t, m, s[0], s[1])
	}
	drive(m, cmd)
	for _, s := range sizes {
		send(m, tea.WindowSizeMsg{Width: s[0], Height: s[1]})
		checkFrame(t, m, s[0], s[1])
		send(m, press("w"))
		checkFrame(t, m, s[0], s[1])
		send(m, press("w"))
	}
}

// checkFrame checks that the view fills w×h exactly.
func checkFrame(t *testing.T, m *Model, w, h int) {
	t.Helper()
	v := m.content()
	if w == 0 || h == 0 {
		return
	}
	lines := strings.Split(v, "\n")
	if len(lines) != h {
		t.Errorf("%dx%d: %d lines", w, h, len(lines))
	}
	for i, l := range lines {
		if lw := lipglossWidth(l); lw > w {
			t.Errorf("%dx%d: line %d is %d wide", w, h, i, lw)
		}
	}
}

func TestMouse(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	// A click on a layer in the list selects it.
	ll := m.ll
	for y := 0; y < m.lay.layers.H; y++ {
		if ll.layerAt(y) == 2 {
			send(m, tea.MouseClickMsg{X: m.lay.layers.X + 3, Y: m.lay.layers.Y + y, Button: tea.MouseLeft})
			break
		}
	}
	wantInt(t, "layer", m.sel.layer, 2)
	// A click in the top-left of A's map picks token 0,0.
	r := m.pv.panes[paneMapA]
	send(m, tea.MouseClickMsg{X: r.X + r.W/2 - r.H + 1, Y: r.Y, Button: tea.MouseLeft})
	wantToken(t, m, 0, 0)
	// On the photo, the bottom-right.
	r = m.pv.panes[paneA]
	send(m, tea.MouseClickMsg{X: r.X + r.W/2 + r.H - 1, Y: r.Y + r.H - 1, Button: tea.MouseLeft})
	gw, gh := m.grid()
	wantToken(t, m, gw-1, gh-1)
	// The slider sets t.
	tl := m.tl
	send(m, tea.MouseClickMsg{X: tl.column(700), Y: m.lay.timeline.Y + 1, Button: tea.MouseLeft})
	if m.sel.t < 690 || m.sel.t > 710 {
		t.Errorf("t = %d after a click at 700", m.sel.t)
	}
	// Dragging along the slider scrubs t.
	send(m, tea.MouseMotionMsg{X: tl.column(300), Y: m.lay.timeline.Y + 1, Button: tea.MouseLeft})
	if m.sel.t < 290 || m.sel.t > 310 {
		t.Errorf("t = %d after dragging to 300", m.sel.t)
	}
	// The wheel over the layer list moves the layer.
	send(m, tea.MouseWheelMsg{X: m.lay.layers.X + 2, Y: m.lay.layers.Y + 3, Button: tea.MouseWheelDown})
	wantInt(t, "layer", m.sel.layer, 3)
}

// TestLayerKeysSkipTextCrossAttention: K and J step over the layers that cannot be scored
// (cross-attention on text: every pair scores 1), and stop at the ends.
func TestLayerKeysSkipTextCrossAttention(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	var got []int
	for range 6 {
		send(m, press("K"))
		got = append(got, m.sel.layer)
	}
	if want := []int{4, 3, 2, 0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("K from Up0 visits %v, want %v", got, want)
	}
	send(m, press("J"))
	wantInt(t, "layer after J", m.sel.layer, 2)
}

func TestMeaninglessLayer(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	send(m, layerSelectMsg{1}) // layer 1: text cross-attention, chosen by --layer or a click
	wantInt(t, "layer", m.sel.layer, 1)
	v := m.content()
	if strings.Contains(v, "1.0000") || strings.Contains(v, "1.000 ") {
		t.Errorf("meaningless layer shown as 1.000:\n%s", v)
	}
	if !strings.Contains(v, "n/a") {
		t.Errorf("meaningless layer not marked n/a")
	}
}

func TestSplitPaths(t *testing.T) {
	tests := []struct {
		in   string
		want [2]string
		err  bool
	}{
		{"a.png b.png", [2]string{"a.png", "b.png"}, false},
		{"  a.png\tb.png ", [2]string{"a.png", "b.png"}, false},
		{`"my a.png" 'b c.png'`, [2]string{"my a.png", "b c.png"}, false},
		{"a.png", [2]string{}, true},
		{"a b c", [2]string{}, true},
		{"", [2]string{}, true},
	}
	for _, tc := range tests {
		got, err := splitPaths(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("splitPaths(%q) = %q, %v", tc.in, got, err)
		}
	}
	if got, _ := splitPaths(quotePath("a b.png") + " " + quotePath("c.png")); got != [2]string{"a b.png", "c.png"} {
		t.Errorf("quotePath round trip: %q", got)
	}
}

func TestModelWithoutTimesteps(t *testing.T) {
	f := fake.New().WithoutTimesteps()
	opts := DefaultOptions()
	m := New(t.Context(), testBackend{f}, "fake:a", "fake:b", opts)
	m.now = func() time.Time { return fixedNow }
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	drive(m, m.loadCmd("fake:a", "fake:b"))
	send(m, press("."))
	send(m, press(">"))
	wantInt(t, "t", m.sel.t, 0)
	if !strings.Contains(m.note.text, "no timesteps") {
		t.Errorf("notice = %q", m.note.text)
	}
	send(m, press("w"))
	if c := f.Calls(); c.Forwards != 1 {
		t.Errorf("forwards = %d, want 1: no timesteps to compute ahead or sweep", c.Forwards)
	}
	v := m.content()
	if !strings.Contains(v, "1/1 timesteps") {
		t.Errorf("sweep of a model without timesteps:\n%s", v)
	}
}

func TestSweepClick(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	send(m, press("w"))
	sw := m.sw
	nameW, cellW, rowH := sw.geometry()
	// the cell of layer 1 at the third timestep: one click moves the cursor, a second jumps
	off, _ := sw.window()
	x := m.lay.body.X + nameW + 2 + 2*cellW
	y := m.lay.body.Y + sweepHeadH + (1-off)*rowH
	click := tea.MouseClickMsg{X: x, Y: y, Button: tea.MouseLeft}
	send(m, click)
	// The second row is layer 2: layer 1 (text cross-attention) has no row.
	wantInt(t, "sweep row", m.sw.row, 2)
	wantInt(t, "sweep col", m.sw.col, 2)
	wantInt(t, "screen", int(m.sel.screen), int(screenSweep))
	send(m, click)
	wantInt(t, "layer", m.sel.layer, 2)
	wantInt(t, "t", m.sel.t, schedule.SweepTimesteps()[2])
	wantInt(t, "screen", int(m.sel.screen), int(screenMain))
}

func TestPromptEditing(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	send(m, press("p"))
	send(m, press("ctrl+u"))
	typeText(m, "fake:x fake:yy")
	send(m, press("backspace"))
	send(m, press("left"))
	typeText(m, "Z")
	if got := m.pb.input.Value(); got != "fake:x fake:Zy" {
		t.Fatalf("prompt = %q", got)
	}
	send(m, press("enter"))
	if m.pair.a == nil || m.pair.b.Path != "fake:Zy" {
		t.Errorf("loaded %v", m.pair.b)
	}
}

func TestExportContents(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	send(m, press("e"))
	base := filepath.Join(m.opts.ExportDir, "fake-a_vs_fake-b_Up0-attn1_t401")
	data, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var rec exportRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Score.IsNaN() || float64(rec.Score) != m.rq.res.Score || rec.T == nil || *rec.T != 401 || rec.Step == nil || *rec.Step != 600 || rec.LayerShort != "Up0" || rec.ImageA != "fake:a" || rec.Model != "fake" {
		t.Errorf("record: %+v", rec)
	}
	if len(rec.MapA) != 16 || len(rec.Attention) != 16 || rec.Grid != [2]int{4, 4} {
		t.Errorf("maps: %d %d grid %v", len(rec.MapA), len(rec.Attention), rec.Grid)
	}
	f, err := os.Open(base + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 5*exportTile {
		t.Errorf("png: %v %v", err, img.Bounds())
	}
	if left, _ := filepath.Glob(filepath.Join(m.opts.ExportDir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A meaningless layer exports null scores, not 1.
	send(m, layerSelectMsg{1})
	send(m, press("e"))
	data, _ = os.ReadFile(filepath.Join(m.opts.ExportDir, "fake-a_vs_fake-b_down0.1.0.attn2_t401.json"))
	rec = exportRecord{}
	if err := json.Unmarshal(data, &rec); err != nil || !rec.Score.IsNaN() || rec.Meaningless == nil {
		t.Errorf("meaningless export: %v %+v", err, rec)
	}
}

// TestExportFolder: the export goes to ExportDir, created when missing, or to
// DefaultExportDir under the working directory, and the record says which overlay the
// PNG's photos carry.
func TestExportFolder(t *testing.T) {
	tests := []struct {
		name    string
		dir     string // "" uses the default under a temporary working directory
		keys    []string
		overlay string
	}{
		{"default folder, half-blocks start without overlay", "", nil, "off"},
		{"nested folder created, cosine overlay", "out/run1", []string{"o"}, "cosine maps"},
		{"attention overlay", "x", []string{"o", "o"}, "attention"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wd := t.TempDir()
			t.Chdir(wd)
			m, _ := readyModel(t, 120, 40)
			m.opts.ExportDir = tc.dir
			for _, k := range tc.keys {
				send(m, press(k))
			}
			send(m, press("e"))
			dir := tc.dir
			if dir == "" {
				dir = DefaultExportDir
			}
			data, err := os.ReadFile(filepath.Join(wd, dir, "fake-a_vs_fake-b_Up0-attn1_t401.json"))
			if err != nil {
				t.Fatalf("%v (notice %q, err %v)", err, m.note.text, m.note.err)
			}
			var rec exportRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Overlay != tc.overlay {
				t.Errorf("overlay = %q, want %q", rec.Overlay, tc.overlay)
			}
			if !strings.Contains(m.note.text, dir) {
				t.Errorf("notice %q does not name %s", m.note.text, dir)
			}
		})
	}
}

// TestExportFolderError: a folder that cannot be created is a one-line error naming it.
func TestExportFolderError(t *testing.T) {
	m, _ := readyModel(t, 120, 40)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m.opts.ExportDir = filepath.Join(file, "sub")
	send(m, press("e"))
	if m.note.err == nil || !strings.Contains(m.note.err.Error(), "export folder") || !strings.Contains(m.note.err.Error(), "--export-dir") {
		t.Errorf("err = %v", m.note.err)
	}
}

// TestQuadrantImages: with --graphics quadrant the panes are drawn in quadrant glyphs,
// every line keeps the terminal's width, the overlay starts off as with half-blocks, and a
// click on a photo still picks the token under it.
func TestQuadrantImages(t *testing.T) {
	for _, sz := range [][2]int{{80, 24}, {120, 40}, {200, 60}} {
		f := fake.New()
		opts := DefaultOptions()
		opts.Graphics = termgfx.Quadrant
		m := New(t.Context(), testBackend{f}, "fake:a", "fake:b", opts)
		m.now = func() time.Time { return fixedNow }
		send(m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		drive(m, m.loadCmd("fake:a", "fake:b"))
		v := m.content()
		if !strings.ContainsAny(v, "▘▝▖▗▚▞▌▐▛▜▙▟") || m.pv.overlay != overlayNone {
			t.Errorf("%v: no quadrant glyphs, or overlay %v", sz, m.pv.overlay)
		}
		for i, l := range strings.Split(v, "\n") {
			if w := ansiWidth(l); w != sz[0] {
				t.Errorf("%v: line %d is %d wide", sz, i, w)
			}
		}
		// The square photo is 2·H cells wide, centred: its bottom-right cell.
		r := m.pv.panes[paneA]
		send(m, tea.MouseClickMsg{X: r.X + r.W/2 + r.H - 1, Y: r.Y + r.H - 1, Button: tea.MouseLeft})
		gw, gh := m.grid()
		wantToken(t, m, gw-1, gh-1)
	}
}

// TestOnFirstScoreOnce: the start-up hook fires when the first score lands, and only then.
func TestOnFirstScoreOnce(t *testing.T) {
	calls := 0
	opts := DefaultOptions()
	opts.Graphics = termgfx.HalfBlock
	opts.OnFirstScore = func() { calls++ }
	m := New(t.Context(), testBackend{fake.New()}, "fake:a", "fake:b", opts)
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	if calls != 0 {
		t.Fatalf("called %d times before anything ran", calls)
	}
	drive(m, m.loadCmd(m.pair.pathA, m.pair.pathB))
	if calls != 1 || m.rq.res == nil {
		t.Fatalf("called %d times after the first score (result %v), want 1", calls, m.rq.res != nil)
	}
	for _, k := range []string{".", "J", "m"} {
		send(m, press(k))
	}
	if calls != 1 {
		t.Errorf("called %d times after more scores, want 1", calls)
	}
}

// TestNotesClearOnTheNextAction: an error or a note in the status line answers the action
// before it, and goes with the next key or click; a long one wraps over the timeline's rows
// meanwhile, whole.
func TestNotesClearOnTheNextAction(t *testing.T) {
	m, _ := readyModel(t, 80, 23)
	screen := func() string { return ansi.Strip(m.content()) }
	send(m, press("t"))
	typeText(m, "1234")
	send(m, press("enter"))
	if m.note.err == nil || !strings.Contains(screen(), `t "1234": want a whole number from 0 to 999`) {
		t.Fatalf("no whole error for a t out of range:\n%s", screen())
	}
	send(m, press("."))
	if m.note.err != nil || strings.Contains(screen(), "1234") {
		t.Errorf("the error stayed after the next key:\n%s", screen())
	}
	dir := "/a/very/long/folder/name/that/does/not/fit/on/one/line/diffsim-export"
	send(m, exportMsg{dir: dir, files: []string{"a_vs_b_Up0_t411.png", "a_vs_b_Up0_t411.json"}})
	if v := screen(); !strings.Contains(v, dir+"/:") || !strings.Contains(v, "a_vs_b_Up0_t411.json") {
		t.Errorf("the export's folder and files are not shown whole:\n%s", v)
	}
	send(m, tea.MouseClickMsg{X: 1, Y: 1, Button: tea.MouseLeft})
	if m.note.text != "" || strings.Contains(screen(), dir) {
		t.Errorf("the note stayed after a click: %q", m.note.text)
	}
}
