package ui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/internal/fake"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// pruneFirstBackend answers as a session with PruneFirst does: the first score comes from a
// run cut down to its layer (Pruned; the pair's features at that t are not all computed), and
// the layer scores run the whole network. hold, when set, keeps LayerScores running until its
// context ends.
type pruneFirstBackend struct {
	testBackend
	hold bool

	mu    sync.Mutex
	first bool         // the first score was answered
	whole map[int]bool // timesteps whose every layer was computed
}

func (b *pruneFirstBackend) Score(ctx context.Context, r api.Request) (api.Result, error) {
	res, err := b.testBackend.Score(ctx, r)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil && !b.first {
		b.first = true
		res.Pruned, res.Cached = true, false
	}
	return res, err
}

func (b *pruneFirstBackend) Cached(x, y *api.Image, t int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.whole[t] && b.testBackend.Cached(x, y, t)
}

func (b *pruneFirstBackend) LayerScores(ctx context.Context, x, y *api.Image, t int, m api.Metric) ([]api.LayerScore, error) {
	if b.hold {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s, err := b.testBackend.LayerScores(ctx, x, y, t, m)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.whole[t] = true
	}
	return s, err
}

func newPruneFirstModel(t *testing.T, b *pruneFirstBackend, set func(*Options)) *Model {
	t.Helper()
	b.testBackend, b.whole = testBackend{fake.New()}, map[int]bool{}
	opts := DefaultOptions()
	opts.Graphics = termgfx.HalfBlock
	if set != nil {
		set(&opts)
	}
	m := New(t.Context(), b, "fake:a", "fake:b", opts)
	m.now = func() time.Time { return fixedNow }
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	return m
}

// TestPrunedFirstScore: the explorer shows a first score that a pruned run answered at once,
// with the layer bars still to come and the timestep not said to be cached; the bars fill in
// when the whole network's layer scores land, and only then is t cached.
func TestPrunedFirstScore(t *testing.T) {
	bars := 0
	m := newPruneFirstModel(t, &pruneFirstBackend{}, func(o *Options) { o.OnFirstLayerScores = func() { bars++ } })
	screen := func() string { return ansi.Strip(m.content()) }

	_, cmd := m.Update(m.loadCmd("fake:a", "fake:b")())
	_, cmd = m.Update(firstOf(cmd)) // the first score
	if m.rq.res == nil || !m.rq.res.Pruned {
		t.Fatalf("first result %+v, want the pruned score", m.rq.res)
	}
	v := screen()
	if !strings.Contains(v, "AAS 0.") {
		t.Errorf("the first score is not on screen:\n%s", v)
	}
	if !strings.Contains(v, "scores not computed yet") || !strings.Contains(v, "layer scores t=401") {
		t.Errorf("the layer bars are not shown as on their way:\n%s", v)
	}
	if strings.Contains(v, "t cached") || m.rq.computed(401) {
		t.Errorf("t=401 is said to be computed after a pruned run of one layer:\n%s", v)
	}

	msg := firstOf(cmd) // the layer bars: started once the score landed
	if _, ok := msg.(layerScoresMsg); !ok {
		t.Fatalf("after the first score came %#v, want the layer scores", msg)
	}
	m.Update(msg)
	v = screen()
	if strings.Contains(v, "scores not computed yet") || !strings.Contains(v, "t cached") {
		t.Errorf("the layer bars did not fill in, or t=401 is not said to be cached:\n%s", v)
	}
	if bars != 1 {
		t.Errorf("OnFirstLayerScores called %d times, want once", bars)
	}
}

// TestQuitWhileBarsRun: q (and ctrl+c) after a pruned first score quits at once and cancels
// the whole network's run for the layer bars.
func TestQuitWhileBarsRun(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		m := newPruneFirstModel(t, &pruneFirstBackend{hold: true}, nil)
		_, cmd := m.Update(m.loadCmd("fake:a", "fake:b")())
		_, cmd = m.Update(firstOf(cmd))
		if !m.rq.res.Pruned || !m.rq.bg.busy {
			t.Fatalf("%s: after the pruned first score no layer scores were asked for", k)
		}
		done := make(chan tea.Msg, 1)
		go func() { done <- firstOf(cmd) }()
		_, q := m.Update(press(k))
		if _, ok := q().(tea.QuitMsg); !ok {
			t.Fatalf("%s did not quit", k)
		}
		select {
		case msg := <-done:
			if e, ok := msg.(errMsg); !ok || !errors.Is(e.err, context.Canceled) {
				t.Errorf("%s: the layer scores ended with %#v, want a cancellation", k, msg)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the whole network's run was not cancelled", k)
		}
	}
}
