package cli

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"sync"
	"time"

	"github.com/google/renameio/v2"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

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
func (c *scoring) newProgress(desc string, total, done int) *progress {
	p := &progress{desc: desc, total: total, n: done}
	f, ok := c.stderr.(*os.File)
	if c.quiet || !ok || !term.IsTerminal(int(f.Fd())) || total <= 0 {
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

// writePNG encodes img and writes it to path atomically (a reader never sees half a file),
// then says so on stderr.
func (c *scoring) writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	if err := renameio.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !c.quiet {
		fmt.Fprintf(c.stderr, "diffsim: wrote %s\n", path)
	}
	return nil
}
