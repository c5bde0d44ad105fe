package ui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/serve"
	"github.com/diffsim/diffsim/session/serve/servetest"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// startServed starts a server with the built-in model on a real Unix socket and returns
// the explorer's backend over it; it skips, by enginetest's rule, where there is no ONNX
// Runtime.
func startServed(t *testing.T, spec api.Spec) *serve.Remote {
	t.Helper()
	// The server opens the runtime in this process; its errors reach the client as text, so the
	// rule is applied here first.
	enginetest.Runtime(t)
	sock := servetest.Start(t, serve.New(serve.Config{Base: session.Options{Families: families.All()}}))
	cl, err := api.Dial(context.Background(), sock, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := serve.OpenRemote(context.Background(), cl, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Info().Caps.Served {
		t.Fatalf("a served backend does not say it is served: %+v", b.Info().Caps)
	}
	return b
}

// TestExplorerOverServedBackend drives the explorer over a server: the first score is the
// one a local session gives, the screen says the work is served, a layer switch is scored
// there too, and a prompt is refused with the reason.
func TestExplorerOverServedBackend(t *testing.T) {
	b := startServed(t, cpuSpec("builtin", 64))
	samples, _ := filepath.Abs("../testdata/samples")
	pa, pb := filepath.Join(samples, "grass.png"), filepath.Join(samples, "gravel.png")
	local, err := session.Open(t.Context(), session.Options{Spec: cpuSpec("builtin", 64), Families: families.All()})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	la, _ := local.Load(pa)
	lb, _ := local.Load(pb)

	m := servedModel(t, b, pa, pb)

	steps := []struct {
		key   string // "" for the first view
		layer int
	}{
		{"", b.Info().DefaultLayer},
		{"J", (b.Info().DefaultLayer + 1) % len(b.Info().Layers)},
	}
	for _, s := range steps {
		if s.key != "" {
			send(m, press(s.key))
		}
		if !m.current() {
			t.Fatalf("after %q: no result for the current view (error %v)", s.key, m.note.err)
		}
		want, err := local.Score(t.Context(), api.Request{A: la, B: lb, Layer: m.sel.layer, T: m.sel.t, Metric: api.AAS, Token: -1})
		if err != nil {
			t.Fatal(err)
		}
		if m.sel.layer != s.layer || m.rq.res.Score != want.Score {
			t.Errorf("after %q: layer %d score %v, want layer %d score %v (local)", s.key, m.sel.layer, m.rq.res.Score, s.layer, want.Score)
		}
		screen := ansi.Strip(m.content())
		if shown := fmt.Sprintf("AAS %s", fmtScore(want.Score)); !strings.Contains(screen, shown) {
			t.Errorf("after %q: the screen lacks %q:\n%s", s.key, shown, screen)
		}
		if !strings.Contains(screen, "on cpu · served") || !strings.Contains(screen, "served · ") {
			t.Errorf("the screen does not say the work is served:\n%s", screen)
		}
	}

	// The built-in model takes no prompt; a diffusion model's would be refused with the reason.
	if err := b.SetConditioning(t.Context(), api.Conditioning{Prompt: "a cat"}); !errors.Is(err, serve.ErrServedPrompt) || !strings.Contains(err.Error(), "--no-server") {
		t.Errorf("SetConditioning over the server = %v, want the refusal naming --no-server", err)
	}
}

// servedModel is the explorer over b for pa and pb, loaded and driven until idle.
func servedModel(t *testing.T, b Backend, pa, pb string) *Model {
	t.Helper()
	opts := DefaultOptions()
	opts.Graphics = termgfx.HalfBlock
	dark := true
	opts.Dark = &dark
	opts.ExportDir = t.TempDir()
	m := New(t.Context(), b, pa, pb, opts)
	m.now = func() time.Time { return fixedNow }
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	drive(m, m.loadCmd(pa, pb))
	drive(m, m.statsCmd())
	return m
}

// TestServedPromptIsRefused: over a server, a diffusion model's prompt and CFG switches are
// refused with the reason (the server's model is loaded with one prompt), and the view keeps
// its scores.
func TestServedPromptIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("the miniature SD pipeline takes seconds to load on a busy 2-core machine")
	}
	sd := t.TempDir()
	if err := testgraphs.WriteTinyDiffusers(sd); err != nil {
		t.Fatal(err)
	}
	b := startServed(t, cpuSpec(sd, 0))
	if caps := b.Info().Caps; !caps.Prompt || caps.PromptFixed != serve.ErrServedPrompt.Error() {
		t.Fatalf("capabilities %+v, want a prompt, fixed when served", caps)
	}
	samples, _ := filepath.Abs("../testdata/samples")
	m := servedModel(t, b, filepath.Join(samples, "grass.png"), filepath.Join(samples, "gravel.png"))
	if !m.current() {
		t.Fatalf("no first score (error %v)", m.note.err)
	}
	before := m.rq.res.Score
	// The prompt key says at once that prompts cannot change (no prompt bar to type into);
	// the CFG key likewise.
	for _, k := range []string{"P", "c"} {
		m.note.err = nil
		send(m, press(k))
		if m.note.err == nil || !strings.Contains(m.note.err.Error(), serve.ErrServedPrompt.Error()) || m.pb.open {
			t.Fatalf("%s: error %v, prompt bar open %v; want the served refusal and no prompt bar", k, m.note.err, m.pb.open)
		}
		if screen := ansi.Strip(m.content()); !strings.Contains(screen, "✗ prompt: fixed when served; use --no-server") {
			t.Errorf("%s: the refusal is not on screen:\n%s", k, screen)
		}
		if m.cs.cur != (api.Conditioning{}) || !m.current() || m.rq.res.Score != before {
			t.Errorf("%s: conditioning %v, current %v, score %v (was %v)", k, m.cs.cur, m.current(), m.rq.res.Score, before)
		}
	}
}

// cpuSpec is model on the CPU at size px (0: its default), with every other default.
func cpuSpec(model string, size int) api.Spec {
	sp := api.DefaultSpec()
	sp.Model, sp.Size, sp.Device = model, size, "cpu"
	return sp
}
