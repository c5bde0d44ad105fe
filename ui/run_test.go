package ui

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/internal/fake"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// runOpts runs the program on a pipe and a file: no terminal, a fixed size.
func runOpts(t *testing.T, in io.Reader) Options {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	opts := DefaultOptions()
	opts.Graphics = termgfx.HalfBlock
	opts.Input, opts.Output = in, out
	dark := true
	opts.Dark = &dark
	opts.programOptions = []tea.ProgramOption{tea.WithWindowSize(120, 40)}
	return opts
}

// slowReader gives its keys after a delay, then blocks like a terminal.
type slowReader struct {
	keys  string
	delay time.Duration
	sent  bool
	ctx   context.Context
}

func (r *slowReader) Read(p []byte) (int, error) {
	if !r.sent {
		time.Sleep(r.delay)
		r.sent = true
		return copy(p, r.keys), nil
	}
	<-r.ctx.Done()
	return 0, io.EOF
}

func TestRunQuits(t *testing.T) {
	f := fake.New()
	f.Delay = time.Hour // q must not wait for the network
	opts := runOpts(t, &slowReader{keys: "q", delay: 200 * time.Millisecond, ctx: t.Context()})
	start := time.Now()
	if err := Run(t.Context(), f, "fake:a", "fake:b", opts); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("quit took %v", d)
	}
}

func TestRunReturnsLoadError(t *testing.T) {
	opts := runOpts(t, &slowReader{keys: "q", delay: 300 * time.Millisecond, ctx: t.Context()})
	err := Run(t.Context(), fake.New(), "/nonexistent/a.png", "fake:b", opts)
	if err == nil || !strings.Contains(err.Error(), "a.png") {
		t.Fatalf("Run = %v, want the load error", err)
	}
}

func TestRunEndsWithContext(t *testing.T) {
	f := fake.New()
	f.Delay = time.Hour
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	opts := runOpts(t, &slowReader{delay: time.Hour, ctx: t.Context()})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, f, "fake:a", "fake:b", opts) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context (SIGHUP cancels the same way)")
	}
}

// panicky panics in Score, inside a command.
type panicky struct{ *fake.Backend }

func (panicky) Score(context.Context, api.Request) (api.Result, error) { panic("boom") }

func TestRunTurnsPanicsIntoErrors(t *testing.T) {
	opts := runOpts(t, &slowReader{delay: time.Hour, ctx: t.Context()})
	done := make(chan error, 1)
	go func() { done <- Run(t.Context(), panicky{fake.New()}, "fake:a", "fake:b", opts) }()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, tea.ErrProgramPanic) {
			t.Errorf("Run = %v, want a panic error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end after a panic")
	}
}
