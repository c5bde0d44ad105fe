package ui

import (
	"context"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/internal/fake"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// testBackend is the fake as a backend that takes no prompt (as the explorer's views were
// drawn; condBackend offers one) and reports no progress (its listener would block the
// synchronous test driver), with elapsed times zeroed, so views are reproducible.
type testBackend struct{ *fakeBackend }

type fakeBackend = fake.Backend

func (b testBackend) Info() api.ModelInfo {
	info := b.fakeBackend.Info()
	info.Caps = api.Capabilities{}
	return info
}

func (b testBackend) Score(ctx context.Context, r api.Request) (api.Result, error) {
	res, err := b.fakeBackend.Score(ctx, r)
	res.Elapsed = 0
	return res, err
}

var fixedNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newTestModel returns a model over the fake backend for fake:a and fake:b, sized w×h,
// with nothing run yet.
func newTestModel(t testing.TB, w, h int, pathA, pathB string) (*Model, *fake.Backend) {
	t.Helper()
	f := fake.New()
	return newTestModelOf(t, w, h, f, pathA, pathB, nil), f
}

// newTestModelOf is newTestModel over the fake f, with set changing the options first.
func newTestModelOf(t testing.TB, w, h int, f *fake.Backend, pathA, pathB string, set func(*Options)) *Model {
	t.Helper()
	opts := DefaultOptions()
	opts.Graphics = termgfx.HalfBlock
	dark := true
	opts.Dark = &dark
	opts.ExportDir = t.TempDir()
	if set != nil {
		set(&opts)
	}
	m := New(t.Context(), testBackend{f}, pathA, pathB, opts)
	m.now = func() time.Time { return fixedNow }
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// readyModelOf is readyModel over the fake f, with set changing the options first.
func readyModelOf(t testing.TB, w, h int, f *fake.Backend, set func(*Options)) *Model {
	t.Helper()
	m := newTestModelOf(t, w, h, f, "fake:a", "fake:b", set)
	drive(m, m.loadCmd(m.pair.pathA, m.pair.pathB))
	drive(m, m.statsCmd())
	return m
}

// calibratedModel is a ready model with the fake's baseline.
func calibratedModel(t testing.TB, w, h int) *Model {
	return readyModelOf(t, w, h, fake.New().WithBaseline(), nil)
}

// readyModel is a model with its pair loaded and every command run.
func readyModel(t testing.TB, w, h int) (*Model, *fake.Backend) {
	t.Helper()
	m, f := newTestModel(t, w, h, "fake:a", "fake:b")
	drive(m, m.loadCmd(m.pair.pathA, m.pair.pathB))
	drive(m, m.statsCmd())
	return m, f
}

// drive runs cmd and every command that follows from it, synchronously and in order,
// feeding their messages to m. It drops spinner ticks and Bubble Tea's own requests.
// It reports whether a command asked to quit.
func drive(m *Model, cmd tea.Cmd) (quit bool) {
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil, spinner.TickMsg:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
			quit = true
		case pairMsg, scoreMsg, layerScoresMsg, prefetchMsg, picturesMsg, errMsg, exportMsg, progressMsg, statsMsg, conditioningMsg, sweepJumpMsg, closeViewMsg, layerSelectMsg, timeSelectMsg, frameSelectMsg, promptDoneMsg, tokenMsg, pickListMsg, pickThumbMsg, pickedMsg, pickCancelMsg:
			_, next := m.Update(msg)
			queue = append(queue, next)
		default: // Bubble Tea's internal requests (clear screen, background colour)
		}
	}
	return quit
}

// send delivers msg to m and drives what follows.
func send(m *Model, msg tea.Msg) (quit bool) {
	_, cmd := m.Update(msg)
	return drive(m, cmd)
}

// press builds a key press from its name as key.Binding spells it.
func press(name string) tea.KeyPressMsg {
	special := map[string]tea.Key{
		"up": {Code: tea.KeyUp}, "down": {Code: tea.KeyDown}, "left": {Code: tea.KeyLeft}, "right": {Code: tea.KeyRight},
		"enter": {Code: tea.KeyEnter}, "esc": {Code: tea.KeyEscape}, "pgup": {Code: tea.KeyPgUp}, "pgdown": {Code: tea.KeyPgDown},
		"backspace": {Code: tea.KeyBackspace}, "ctrl+c": {Code: 'c', Mod: tea.ModCtrl}, "ctrl+u": {Code: 'u', Mod: tea.ModCtrl},
		"shift+left": {Code: tea.KeyLeft, Mod: tea.ModShift}, "shift+right": {Code: tea.KeyRight, Mod: tea.ModShift},
		"shift+up": {Code: tea.KeyUp, Mod: tea.ModShift}, "shift+down": {Code: tea.KeyDown, Mod: tea.ModShift},
	}
	if k, ok := special[name]; ok {
		return tea.KeyPressMsg(k)
	}
	r := []rune(name)
	return tea.KeyPressMsg{Code: r[0], Text: name}
}

// typeText presses each rune of s.
func typeText(m *Model, s string) {
	for _, r := range s {
		send(m, press(string(r)))
	}
}

func lipglossWidth(s string) int { return ansiWidth(s) }
