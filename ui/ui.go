// Package ui is diffsim's interactive explorer: a Bubble Tea program that shows two images,
// their per-token alignment maps and the Aligned Attention Score at one layer and timestep,
// and lets a person scrub layers and timesteps live while the network runs in the
// background.
//
// The root Model owns what every request depends on (the pair, the selection, the
// conditioning), hands it to the components (sync), routes keys and mouse events to the
// component that has them, and lays them out (layout.go) for 80×23 and up. Its bookkeeping of
// the backend is its own type, requests (requests.go): the jobs in flight, what was answered,
// and what to ask next. The components (component.go) are in the bubbles shape, each in its
// own file with its size, its own key map where it has keys, its own messages, and its state
// behind methods: the title, the pair view of photos and maps with the token cursor, the
// overlay and the colour bars (pairview.go), the score panel, the layer list, the sweep, the
// timeline, the clip strip, the prompt bar, the status line and the help page. Text that does
// not fit loses whole items, least important first (text.go's fitItems), never half a word.
// The pair view's pictures are composed and encoded off the UI goroutine (render.go) and
// either drawn as half-block or quadrant text inside the View; or, for sixel and for kitty
// without Unicode placeholders (kitty < 0.28), placed at their cells by termgfx.Writer, which
// wraps the program's output (docs/terminal.md says why they cannot be in the View); or, for
// kitty with placeholders, transmitted once with a virtual placement and shown by placeholder
// cells in the View.
package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// Backend is what the explorer runs on: the one scoring interface, a session in this process
// or a served one. What it can do beyond scoring (a prompt, progress reports, running in
// diffsim serve) is in Info().Caps; the explorer asks nothing else of it.
type Backend = api.Scorer

// Options configure the explorer. Start from DefaultOptions.
type Options struct {
	Layer  int        // index into the model's layers; negative: the model's default
	T      int        // DDPM timestep; negative: the model's default
	Metric api.Metric // "" means AAS

	// Graphics is how images are drawn: Auto takes what Caps says, Sixel, Kitty
	// (placeholders or direct placement), HalfBlock, Quadrant or None.
	Graphics termgfx.Protocol
	// Caps is what termgfx.Detect found; nil makes Run detect it (unless Graphics is
	// HalfBlock or None) when input and output are terminals, and assume half-blocks
	// otherwise.
	Caps *termgfx.Caps
	// CellW, CellH override a cell's size in pixels; 0 keeps Caps' (or 10×20).
	CellW, CellH int

	// Progress carries the backend's progress reports (see NewProgress); nil when it makes
	// none (Caps.Progress).
	Progress <-chan api.Progress

	// Input defaults to stdin, or the controlling terminal when stdin is not one;
	// Output to os.Stdout.
	Input  io.Reader
	Output *os.File
	// Dark says whether the background is dark; nil asks the terminal (default dark).
	Dark *bool
	// Clip, when set, explores a video clip: the pair is its first frame and the frame
	// under a cursor that ←/→ move, over the clip's consistency curves. Run's two paths
	// are then ignored.
	Clip *Clip
	// ExportDir is where the export key writes its PNG and JSON (created when missing);
	// "" means DefaultExportDir.
	ExportDir string
	// OverlayOn says whether maps are blended over the photos at start; nil: on, except
	// with half-blocks, whose two pixels per cell cannot show a photo under a map.
	OverlayOn *bool
	// OnFirstImages, when set, is called once, from Update, when both photos are first ready
	// for the screen (to measure start-up time).
	OnFirstImages func()
	// OnFirstScore, when set, is called once, from Update, when the first score lands (to
	// measure how long a model takes to answer, served or not).
	OnFirstScore func()
	// OnFirstLayerScores, when set, is called once, from Update, when the first layer bars
	// land (every layer's score at a timestep), to measure start-up time.
	OnFirstLayerScores func()
	// Profile forces a colour profile (tests, or a known terminal); 0 detects it.
	Profile colorprofile.Profile
	// Remote, when set, says the terminal is not this process's own but a remote one (an SSH
	// session's pty): Input and Output are its pty, its environment replaces the process's,
	// its window sizes come from Remote.Resize, and Run leaves the process's signals alone.
	Remote *Remote
	// Picker, when set, offers its images in a picker (type to filter) on the open-pair key,
	// instead of a prompt for two paths; Run with two empty paths starts in it.
	Picker ImageSource

	// programOptions are extra Bubble Tea options, for tests.
	programOptions []tea.ProgramOption
}

// Remote is a terminal on the far side of a connection (see Options.Remote).
type Remote struct {
	// Env is the terminal's environment as the client sent it: TERM, COLORTERM, LANG….
	Env []string
	// Resize carries the terminal's new size in cells whenever the client's window changes
	// (the pty is not this process's controlling terminal, so no SIGWINCH comes).
	Resize <-chan WindowSize
	// Touch, when set, is called on every key press, paste and mouse event (from the
	// program's goroutine; keep it quick): an SSH server's idle timeout counts from the last.
	Touch func()
	// Status, when set, is what the status line and the score panel say of where the work
	// runs, instead of "served" ("ssh · open mode": who may connect is part of it).
	Status string
}

// WindowSize is a terminal's size in character cells.
type WindowSize struct{ Cols, Rows int }

// DefaultExportDir is where exports go when Options.ExportDir is empty.
const DefaultExportDir = "diffsim-export"

// DefaultOptions returns options that take the model's defaults and detect the rest.
func DefaultOptions() Options {
	return Options{Layer: -1, T: -1, Metric: api.AAS, Graphics: termgfx.Auto}
}

// Run shows the explorer for the images at paths a and bImg until the user quits or ctx
// ends. It restores the terminal on every way out: quit keys, Ctrl-C during a computation,
// SIGHUP or SIGTERM, and a panic, which comes back as an error. When the pair could not be
// loaded and the user quit without loading another, that load error is returned.
func Run(ctx context.Context, b Backend, a, bImg string, opts Options) (err error) {
	if b == nil {
		return errors.New("ui: no backend")
	}
	var m *Model
	final, err := runProgram(ctx, opts, func(ctx context.Context, opts Options, out imagePlacer) tea.Model {
		m = New(ctx, b, a, bImg, opts)
		m.pv.SetPlacer(out)
		return m
	})
	if m != nil {
		m.stopWork()
	}
	if err != nil {
		return err
	}
	if fm, ok := final.(*Model); ok && fm.pair.a == nil && fm.pair.loadErr != nil {
		return fm.pair.loadErr
	}
	return nil
}

// runProgram runs the Bubble Tea program of the model newModel makes (given the final options
// and the placer that draws images after frames) with the terminal set up and restored as
// Run says.
func runProgram(ctx context.Context, opts Options, newModel func(context.Context, Options, imagePlacer) tea.Model) (final tea.Model, err error) {
	if opts.Output == nil {
		opts.Output = os.Stdout
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	getenv := os.Getenv
	if opts.Remote != nil {
		getenv = envLookup(opts.Remote.Env)
	} else {
		// A dropped SSH connection sends SIGHUP; Bubble Tea only listens for INT and TERM.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			select {
			case <-hup:
				cancel()
			case <-ctx.Done():
			}
		}()
	}

	needCaps := opts.Graphics != termgfx.HalfBlock && opts.Graphics != termgfx.Quadrant && opts.Graphics != termgfx.None
	if opts.Caps == nil && needCaps {
		in, ok := opts.Input.(*os.File)
		if opts.Input == nil {
			in, ok = os.Stdin, true
		}
		if ok {
			// Before the program starts, so that nothing else reads the replies.
			c, _ := termgfx.Detect(ctx, in, opts.Output, 0, getenv)
			opts.Caps = &c
		}
	}
	out := termgfx.NewWriter(opts.Output)
	defer out.Close() // nothing is drawn after the last frame
	m := newModel(ctx, opts, out)
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithOutput(out)}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	} // else Bubble Tea reads stdin, or the tty when stdin is not one

	if p := colorProfile(opts); p != colorprofile.Unknown {
		popts = append(popts, tea.WithColorProfile(p))
	}
	if opts.Remote != nil {
		// The process's signals are the server's: Ctrl-C reaches a remote explorer as a key.
		popts = append(popts, tea.WithEnvironment(opts.Remote.Env), tea.WithoutSignalHandler())
		if touch := opts.Remote.Touch; touch != nil {
			popts = append(popts, tea.WithFilter(func(_ tea.Model, msg tea.Msg) tea.Msg {
				switch msg.(type) {
				case tea.KeyPressMsg, tea.MouseMsg, tea.PasteMsg:
					touch()
				}
				return msg
			}))
		}
	}
	popts = append(popts, opts.programOptions...)
	p := tea.NewProgram(m, popts...)
	if opts.Remote != nil && opts.Remote.Resize != nil {
		go func() {
			for {
				select {
				case ws := <-opts.Remote.Resize:
					if ws.Cols <= 0 || ws.Rows <= 0 {
						continue // no size: the program keeps the one it has (80×24 at worst)
					}
					p.Send(tea.WindowSizeMsg{Width: ws.Cols, Height: ws.Rows})
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	// Panics inside Update, View and commands are caught by Bubble Tea, which restores the
	// terminal first; this catches the rest (our own set-up code) after the program ended.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ui: internal error: %v\n%s", r, debug.Stack())
		}
	}()
	final, err = p.Run()
	switch {
	case errors.Is(err, tea.ErrProgramPanic):
		return final, fmt.Errorf("ui: internal error (the terminal was restored): %w", err)
	case errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil:
		return nil, nil // SIGHUP or the caller's context: a clean end, whatever the model holds
	case errors.Is(err, tea.ErrInterrupted):
		return nil, nil
	case err != nil:
		return final, fmt.Errorf("ui: %w", err)
	}
	return final, nil
}

// colorProfile picks the colour profile: half-block images need at least 256 colours, and
// xterm under TERM=xterm is detected as 16-colour although it has 256 (docs/terminal.md).
func colorProfile(opts Options) colorprofile.Profile {
	if opts.Profile != colorprofile.Unknown {
		return opts.Profile
	}
	if opts.Caps != nil && opts.Caps.TrueColor {
		return colorprofile.TrueColor
	}
	// Sixel terminals have 24-bit colour, and xterm's sixel images repaint the 256-colour
	// palette that indexed text colours use (seen in xterm -ti vt340: the layer bars
	// vanished once the photos were drawn). Direct colours are immune. Detect already says
	// so for a terminal that reports sixel; this covers --graphics sixel forced where it
	// did not (tmux passthrough: tmux answers DA1 itself). Kitty-graphics terminals have
	// 24-bit colour too; their placeholder cells carry the image id as a 256-colour index,
	// which a 24-bit profile passes through unchanged.
	var caps termgfx.Caps
	if opts.Caps != nil {
		caps = *opts.Caps
	}
	switch caps.Force(opts.Graphics).Protocol {
	case termgfx.Sixel, termgfx.Kitty:
		return colorprofile.TrueColor
	}
	env, getenv := os.Environ(), os.Getenv
	if opts.Remote != nil {
		env, getenv = opts.Remote.Env, envLookup(opts.Remote.Env)
	}
	p := colorprofile.Detect(opts.Output, env)
	switch getenv("COLORTERM") {
	case "truecolor", "24bit":
		if p < colorprofile.TrueColor && p != colorprofile.NoTTY {
			return colorprofile.TrueColor
		}
	}
	if p == colorprofile.ANSI {
		return colorprofile.ANSI256
	}
	return colorprofile.Unknown
}

// envLookup is os.Getenv over env (KEY=value entries; the last one of a key wins).
func envLookup(env []string) func(string) string {
	return func(key string) string {
		v := ""
		for _, kv := range env {
			if k, val, ok := strings.Cut(kv, "="); ok && k == key {
				v = val
			}
		}
		return v
	}
}

// NewProgress returns a callback for session.Options.OnProgress and the channel to pass
// as Options.Progress. The callback never blocks the network run: when the explorer is
// behind, a report is dropped (the next one supersedes it anyway).
func NewProgress() (report func(api.Progress), ch <-chan api.Progress) {
	c := make(chan api.Progress, 8)
	return func(p api.Progress) {
		select {
		case c <- p:
		default:
		}
	}, c
}
