package main

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
)

// researchCommands are the headless research commands: sweep, rank, bench.
func (a *app) researchCommands() []*cobra.Command {
	return []*cobra.Command{a.sweepCommand(), a.rankCommand(), a.benchCommand()}
}

// stepOf is the reference's step index for t, 0 for models without timesteps (as score prints).
func stepOf(info session.ModelInfo, t int) int {
	if !info.Timesteps {
		return 0
	}
	return features.TToStep(t)
}

// syncWriter serialises writes from the command and its signal watcher onto one stream.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// progress is a bar on stderr for work that takes more than a second: it appears only after
// that second, only on a terminal, and never with --quiet, so pipes and CI logs stay clean.
type progress struct {
	mu    sync.Mutex
	out   *os.File
	desc  string
	total int
	n     int
	bar   *progressbar.ProgressBar
	timer *time.Timer
}

// newProgress starts counting; done is where a resumed run starts.
func (a *app) newProgress(desc string, total, done int) *progress {
	p := &progress{desc: desc, total: total, n: done}
	f, ok := a.stderr.(*os.File)
	if a.quiet || !ok || !term.IsTerminal(int(f.Fd())) || total <= 0 {
		return p
	}
	p.out = f
	p.timer = time.AfterFunc(time.Second, p.show)
	return p
}

func (p *progress) show() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out == nil || p.bar != nil {
		return
	}
	p.bar = progressbar.NewOptions(p.total,
		progressbar.OptionSetWriter(p.out),
		progressbar.OptionSetDescription(p.desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionClearOnFinish(),
	)
	_ = p.bar.Set(p.n)
}

// Add counts n more items done.
func (p *progress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if p.bar != nil {
		_ = p.bar.Set(p.n)
	}
}

// Close removes the bar; it is idempotent.
func (p *progress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.out = nil
	if p.bar != nil {
		_ = p.bar.Clear()
		_ = p.bar.Exit()
		p.bar = nil
	}
}

// usageArgs makes a wrong number of arguments a usage error (exit code 2), as DESIGN.md asks.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usagef("%v (see %s --help)", err, cmd.CommandPath())
		}
		return nil
	}
}
