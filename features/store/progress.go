package store

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// ProgressBar draws one bar per file (bytes, speed, ETA) on a terminal. On
// anything else (a pipe, a CI log) it draws nothing, so logs stay clean.
// Use Report as PullOptions.Progress and Close when the pull returns.
type ProgressBar struct {
	out  *os.File
	on   bool
	file string
	bar  *progressbar.ProgressBar
}

// NewProgressBar draws on out, usually os.Stderr.
func NewProgressBar(out *os.File) *ProgressBar {
	return &ProgressBar{out: out, on: term.IsTerminal(int(out.Fd()))}
}

// Report has the signature of PullOptions.Progress.
func (p *ProgressBar) Report(file string, done, total int64) {
	if !p.on || total <= 0 {
		return
	}
	if file != p.file || p.bar == nil {
		_ = p.Close()
		p.file = file
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.out),
			progressbar.OptionSetDescription(file),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(20),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { _, _ = p.out.WriteString("\n") }),
		)
	}
	_ = p.bar.Set64(done)
}

// Close finishes the current bar; it is safe to call more than once.
func (p *ProgressBar) Close() error {
	if p.bar == nil {
		return nil
	}
	bar := p.bar
	p.bar = nil
	if bar.IsFinished() {
		return nil
	}
	return bar.Exit()
}
