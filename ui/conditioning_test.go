package ui

import (
	"time"

	"errors"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/internal/fake"
)

// condBackend is the test backend with the fake's own capabilities: a prompt, like a session
// over a diffusion model (unless the fake is a model of another kind).
type condBackend struct{ testBackend }

func (b condBackend) Info() api.ModelInfo { return b.fakeBackend.Info() }

// condModel is a ready model over a backend that takes a prompt.
func condModel(t testing.TB, w, h int, f *fake.Backend) *Model {
	t.Helper()
	m, _ := newTestModel(t, w, h, "fake:a", "fake:b")
	m = New(t.Context(), condBackend{testBackend{f}}, "fake:a", "fake:b", m.opts)
	m.now = func() time.Time { return fixedNow }
	send(m, tea.WindowSizeMsg{Width: w, Height: h})
	drive(m, m.loadCmd(m.pair.pathA, m.pair.pathB))
	drive(m, m.statsCmd())
	return m
}

func TestPromptKeys(t *testing.T) {
	f := fake.New()
	m := condModel(t, 120, 40, f)
	if got := m.condLabel(); got != "unconditional" {
		t.Fatalf("label %q, want unconditional", got)
	}
	before := m.rq.res.Score
	send(m, press("P"))
	if !m.pb.open || m.pb.kind != promptText || m.pb.input.Value() != "" {
		t.Fatalf("P: prompting=%v for=%v value=%q", m.pb.open, m.pb.kind, m.pb.input.Value())
	}
	typeText(m, "a cat")
	// Keys typed in the prompt do not leak (c is the CFG key outside it).
	if m.wantedCond().CFG {
		t.Fatal("c in the prompt toggled CFG")
	}
	send(m, press("enter"))
	want := api.Conditioning{Prompt: "a cat"}
	if f.Conditioning() != want || m.cs.cur != want || m.cs.busy {
		t.Fatalf("after enter: backend %v, model %v (busy %v)", f.Conditioning(), m.cs.cur, m.cs.busy)
	}
	if !m.current() || m.rq.res.Score != before+fake.CondShift(want) {
		t.Errorf("score %v after the prompt, want %v (re-run under the prompt)", m.rq.res.Score, before+fake.CondShift(want))
	}
	if got := m.condLabel(); got != `prompt "a cat"` {
		t.Errorf("label %q", got)
	}
	// P again is pre-filled with the current prompt.
	send(m, press("P"))
	if m.pb.input.Value() != "a cat" {
		t.Errorf("prompt pre-filled with %q", m.pb.input.Value())
	}
	send(m, press("esc"))
	send(m, press("c"))
	if want := (api.Conditioning{Prompt: "a cat", CFG: true}); m.cs.cur != want || f.Conditioning() != want {
		t.Errorf("after c: %v / %v", m.cs.cur, f.Conditioning())
	}
	if got := m.condLabel(); !strings.HasPrefix(got, "CFG") {
		t.Errorf("label %q after c", got)
	}
}

func TestPromptRefused(t *testing.T) {
	f := fake.New()
	m := condModel(t, 120, 40, f)
	send(m, press("P"))
	typeText(m, "please refuse")
	send(m, press("enter"))
	if m.cs.cur != (api.Conditioning{}) || f.Conditioning() != (api.Conditioning{}) {
		t.Errorf("refused prompt taken: %v / %v", m.cs.cur, f.Conditioning())
	}
	var e promptError
	if !errors.As(m.note.err, &e) || !errors.Is(e, api.ErrUsage) {
		t.Fatalf("err = %v, want the prompt's usage error", m.note.err)
	}
	if v := m.content(); !strings.Contains(ansi.Strip(v), `✗ prompt: "please refuse" refused (kept unconditional)`) {
		t.Errorf("refusal not shown:\n%s", v)
	}
	if !m.current() {
		t.Error("the view lost its result")
	}
}

// TestPromptDropsStaleResults: a score computed under the old prompt that lands after the
// switch is dropped, and the view is run again.
func TestPromptDropsStaleResults(t *testing.T) {
	f := fake.New()
	m := condModel(t, 120, 40, f)
	_, stale := m.Update(press(".")) // t=411 under "unconditional", not run yet
	send(m, press("P"))
	typeText(m, "a dog")
	_, cmd := m.Update(press("enter"))
	drive(m, cmd) // switches, re-runs t=411 under the prompt
	want := fake.ScoreAt(m.sel.layer, 411, api.AAS) + fake.CondShift(m.cs.cur)
	if m.rq.res == nil || m.rq.res.Score != want {
		t.Fatalf("score %v, want %v", m.rq.res, want)
	}
	drive(m, stale) // the old prompt's answers arrive late
	if m.rq.res.Score != want {
		t.Errorf("stale result shown: %v, want %v", m.rq.res.Score, want)
	}
	for k, s := range m.rq.scores {
		if s[m.sel.layer].Score != fake.ScoreAt(m.sel.layer, k.t, k.metric)+fake.CondShift(m.cs.cur) {
			t.Errorf("layer scores at t=%d are the old prompt's", k.t)
		}
	}
}

func TestPromptNotTaken(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    func(t *testing.T) *Model
	}{
		{"backend without conditioning", func(t *testing.T) *Model { m, _ := readyModel(t, 120, 40); return m }},
		{"model of another family", func(t *testing.T) *Model { return condModel(t, 120, 40, fake.New().WithoutTimesteps()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"P", "c"} {
				m := tc.m(t)
				send(m, press(k))
				if m.pb.open || m.note.text != "this model takes no prompt" {
					t.Errorf("%s: prompting=%v notice=%q", k, m.pb.open, m.note.text)
				}
				if m.condLabel() != "" {
					t.Errorf("label %q for a model without prompts", m.condLabel())
				}
			}
		})
	}
}
