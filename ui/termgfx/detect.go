package termgfx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Caps is what Detect found out about the terminal, and what to use.
type Caps struct {
	// Protocol is the one to draw with (never Auto).
	Protocol Protocol
	// CellW, CellH: one character cell in pixels; images are encoded at cells × this.
	CellW, CellH int
	// ColorRegisters is the sixel palette size the terminal reported (0 = unknown).
	ColorRegisters int
	// MaxW, MaxH: the largest sixel image the terminal accepts (0 = unknown).
	MaxW, MaxH int
	// Tmux and Screen are set inside those multiplexers.
	Tmux, Screen bool
	// TrueColor: 24-bit colour works (for half-blocks and styles).
	TrueColor bool
	// Sixel and Kitty say what the terminal itself supports, whatever Protocol is.
	Sixel, Kitty bool
	// KittyPlaceholders: the terminal shows kitty images through Unicode placeholder
	// cells (kitty ≥ 0.28, ghostty). Without them, kitty images are placed directly at
	// their cells, as sixel images are.
	KittyPlaceholders bool
	// Terminal is the terminal's name and version from XTVERSION ("kitty(0.26.5)"), if
	// it answered.
	Terminal string
	// TTY is false when stdin or stdout is not a terminal (no queries were sent).
	TTY bool
	// Cols, Rows: the terminal size in cells (0 = unknown).
	Cols, Rows int
	// Reason says why each decision was made, for `diffsim doctor`.
	Reason []string
}

// DefaultTimeout bounds the wait for replies. Local terminals answer within a few
// milliseconds; 300 ms leaves room for one SSH round trip across a continent.
const DefaultTimeout = 300 * time.Millisecond

// Assumed cell size when nothing tells us: close to common 10–11 pt fonts.
const defaultCellW, defaultCellH = 10, 20

// queries are sent in one write; DA1 goes last because every terminal answers it, so its
// reply marks the end of the answers to everything before it (terminals reply in order).
const queries = "\x1b[?1;1;0S" + // XTSMGRAPHICS: read number of colour registers
	"\x1b[?2;1;0S" + // XTSMGRAPHICS: read sixel geometry
	"\x1b[16t" + // cell size in pixels
	"\x1b[14t" + // text area size in pixels
	"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\" + // kitty graphics query
	"\x1b[>q" + // XTVERSION: name and version (kitty < 0.28 has no placeholders)
	"\x1b[c" // DA1, the sentinel

// Detect asks the terminal on in/out what it can draw. Call it before the Bubble Tea
// program starts: it puts the tty in raw mode, writes the queries, reads the answers until
// DA1's reply or timeout (0 means DefaultTimeout) with poll(2) on in's descriptor — no
// goroutine is left blocked on stdin to steal the program's keys — and restores the tty.
// env is os.Getenv in production. When in or out is not a terminal it sends nothing and
// returns half-blocks. The error reports a tty that could not be set up; Caps is usable
// even then.
func Detect(ctx context.Context, in, out *os.File, timeout time.Duration, env func(string) string) (Caps, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tty := in != nil && out != nil && term.IsTerminal(int(in.Fd())) && term.IsTerminal(int(out.Fd()))
	var ws *unix.Winsize
	if out != nil {
		ws, _ = unix.IoctlGetWinsize(int(out.Fd()), unix.TIOCGWINSZ)
	}
	if !tty || env("TERM") == "dumb" {
		return decide(Replies{}, ws, env, tty, false, 0), nil
	}
	raw, waited, err := query(ctx, in, out, timeout)
	c := decide(ParseReplies(raw), ws, env, true, true, waited)
	if err != nil {
		c.Reason = append(c.Reason, "query failed: "+err.Error())
	}
	// Only a tmux this process runs inside (TMUX set) is asked: TERM=tmux-256color alone is
	// a terminal on the far side of a connection (ssh from inside tmux, or an SSH session of
	// diffsim serve), and a tmux server here would answer for the wrong terminal.
	if c.Tmux && !c.TrueColor && env("TMUX") != "" {
		if ok, why := TmuxTrueColor(ctx, runTmux); ok {
			c.TrueColor = true
			for i, r := range c.Reason { // the guess from the environment is superseded
				if strings.HasPrefix(r, "256 colours") {
					c.Reason[i] = "24-bit colour: " + why
				}
			}
		}
	}
	return c, err
}

// runTmux runs tmux with args and returns its output, giving up after a short while.
func runTmux(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tmux", args...).Output()
	return string(out), err
}

// TmuxTrueColor asks the tmux server, as chafa does, whether the terminal outside it has
// 24-bit colour: tmux answers DA1 itself and sets no COLORTERM, so looking at the
// environment alone falls back to 256 colours. It reports true when tmux says the client
// terminal has the RGB feature (tmux ≥ 3.2), when the tmux configuration declares Tc or
// RGB for it (terminal-overrides, terminal-features), or when the environment tmux keeps
// for the session has COLORTERM=truecolor or 24bit. run runs tmux with arguments.
func TmuxTrueColor(ctx context.Context, run func(ctx context.Context, args ...string) (string, error)) (bool, string) {
	if out, err := run(ctx, "display-message", "-p", "#{client_termfeatures}"); err == nil && hasFeature(out, "RGB") {
		return true, "tmux reports the RGB feature for this client (#{client_termfeatures})"
	}
	for _, opt := range []string{"terminal-overrides", "terminal-features"} {
		if out, err := run(ctx, "show-options", "-gs", opt); err == nil && (hasFeature(out, "Tc") || hasFeature(out, "RGB")) {
			return true, "tmux " + opt + " declares Tc or RGB"
		}
	}
	for _, args := range [][]string{{"show-environment", "COLORTERM"}, {"show-environment", "-g", "COLORTERM"}} {
		if out, err := run(ctx, args...); err == nil {
			v := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "COLORTERM=")))
			if v == "truecolor" || v == "24bit" {
				return true, "the outer terminal's COLORTERM=" + v + " (tmux show-environment)"
			}
		}
	}
	return false, ""
}

// hasFeature reports whether a tmux feature list ("xterm*:RGB,clipboard", "256,RGB,title")
// names feature f as a whole word.
func hasFeature(s, f string) bool {
	return slices.Contains(strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ':' || r == ' ' || r == '\n' || r == '"' || r == '\''
	}), f)
}

// kittyPlaceholders reports whether an XTVERSION answer names a terminal that draws kitty
// Unicode placeholders: kitty from 0.28, and ghostty.
func kittyPlaceholders(version string) bool {
	name, ver, ok := strings.Cut(strings.TrimSuffix(version, ")"), "(")
	switch {
	case strings.EqualFold(name, "ghostty") || strings.HasPrefix(strings.ToLower(version), "ghostty"):
		return true
	case !ok || name != "kitty":
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(ver, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 0 || minor >= 28
}

// query runs the query exchange and returns every byte the terminal sent.
func query(ctx context.Context, in, out *os.File, timeout time.Duration) ([]byte, time.Duration, error) {
	fd := int(in.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, 0, fmt.Errorf("termgfx: put %s in raw mode: %w (is it a terminal?)", in.Name(), err)
	}
	start := time.Now()
	var buf []byte
	rerr := func() error {
		if _, err := out.WriteString(queries); err != nil {
			return fmt.Errorf("termgfx: write terminal queries to %s: %w", out.Name(), err)
		}
		deadline := start.Add(timeout)
		chunk := make([]byte, 1024)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			left := time.Until(deadline)
			if left <= 0 {
				return nil // time-out: the terminal did not answer DA1; use what came
			}
			// Poll in short slices so a cancelled context is noticed promptly.
			ms := int(min(left, 50*time.Millisecond)/time.Millisecond) + 1
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("termgfx: poll %s: %w", in.Name(), err)
			}
			if n == 0 {
				continue
			}
			// poll said readable, so this read does not block.
			k, err := unix.Read(fd, chunk)
			if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("termgfx: read terminal replies: %w", err)
			}
			if k <= 0 {
				continue
			}
			buf = append(buf, chunk[:k]...)
			if ParseReplies(buf).HasDA1 {
				return nil
			}
		}
	}()
	if err := term.Restore(fd, old); err != nil {
		rerr = errors.Join(rerr, fmt.Errorf("termgfx: restore %s: %w (run `reset` if the terminal misbehaves)", in.Name(), err))
	}
	return buf, time.Since(start), rerr
}

// decide turns replies, the kernel's window size and the environment into Caps. It is a
// pure function so every branch can be tested without a terminal.
func decide(r Replies, ws *unix.Winsize, env func(string) string, tty, asked bool, waited time.Duration) Caps {
	c := Caps{TTY: tty}
	why := func(format string, a ...any) { c.Reason = append(c.Reason, fmt.Sprintf(format, a...)) }
	termName := env("TERM")

	c.Tmux = env("TMUX") != "" || strings.HasPrefix(termName, "tmux")
	c.Screen = !c.Tmux && (env("STY") != "" || strings.HasPrefix(termName, "screen"))
	ct := strings.ToLower(env("COLORTERM"))
	prog := env("TERM_PROGRAM")
	switch {
	case ct == "truecolor" || ct == "24bit":
		c.TrueColor = true
		why("24-bit colour: COLORTERM=%s", env("COLORTERM"))
	case strings.Contains(termName, "direct") || strings.Contains(termName, "truecolor") || termName == "xterm-kitty":
		c.TrueColor = true
		why("24-bit colour: TERM=%s", termName)
	case env("KITTY_WINDOW_ID") != "" || prog == "iTerm.app" || prog == "WezTerm" || prog == "ghostty" || prog == "vscode":
		c.TrueColor = true
		why("24-bit colour: a terminal known to have it (TERM_PROGRAM=%q, KITTY_WINDOW_ID=%q)", prog, env("KITTY_WINDOW_ID"))
	case tty && r.HasAttr(4) && !c.Tmux && !c.Screen:
		// xterm -ti vt340 leaves COLORTERM unset, yet handles SGR 38;2; and its sixel
		// images repaint the 256-colour palette indexed text colours would use.
		c.TrueColor = true
		why("24-bit colour: a sixel terminal (DA1 attribute 4), which handles SGR 38;2 though COLORTERM is not set")
	default:
		why("256 colours: COLORTERM is not truecolor (set COLORTERM=truecolor if the terminal has 24-bit colour)")
	}

	if ws != nil {
		c.Cols, c.Rows = int(ws.Col), int(ws.Row)
	}
	switch {
	case r.CellW > 0 && r.CellH > 0:
		c.CellW, c.CellH = r.CellW, r.CellH
		why("cell %d×%d px: terminal reply to CSI 16 t", c.CellW, c.CellH)
	case r.WinW > 0 && r.WinH > 0 && c.Cols > 0 && c.Rows > 0:
		c.CellW, c.CellH = r.WinW/c.Cols, r.WinH/c.Rows
		why("cell %d×%d px: window %d×%d px (CSI 14 t) over %d×%d cells", c.CellW, c.CellH, r.WinW, r.WinH, c.Cols, c.Rows)
	case ws != nil && ws.Xpixel > 0 && ws.Ypixel > 0 && ws.Col > 0 && ws.Row > 0:
		c.CellW, c.CellH = int(ws.Xpixel)/int(ws.Col), int(ws.Ypixel)/int(ws.Row)
		note := ""
		if c.Tmux {
			note = " (tmux may invent this size when detached)"
		}
		why("cell %d×%d px: kernel window size (TIOCGWINSZ)%s", c.CellW, c.CellH, note)
	default:
		c.CellW, c.CellH = defaultCellW, defaultCellH
		why("cell %d×%d px: assumed, nothing reported a pixel size", c.CellW, c.CellH)
	}

	if !tty {
		c.Protocol = HalfBlock
		why("half-blocks: stdin or stdout is not a terminal, so no queries were sent")
		return c
	}
	if termName == "dumb" {
		c.Protocol = None
		why("no images: TERM=dumb")
		return c
	}
	if asked && !r.HasDA1 {
		why("no reply to DA1 within %v: the terminal answered nothing (slow link? try --graphics)", waited.Round(time.Millisecond))
	}
	c.Sixel = r.HasAttr(4)
	switch {
	case c.Sixel:
		why("sixel: DA1 attribute 4 in %v", r.DA1)
	case r.HasDA1:
		why("no sixel: DA1 %v lacks attribute 4", r.DA1)
	}
	c.ColorRegisters, c.MaxW, c.MaxH = r.ColorRegisters, r.SixelW, r.SixelH
	switch {
	case r.ColorRegisters > 0:
		why("%d sixel colour registers, max sixel %d×%d: XTSMGRAPHICS", r.ColorRegisters, r.SixelW, r.SixelH)
	case c.Sixel:
		c.ColorRegisters = 256
		why("256 sixel colour registers assumed: no XTSMGRAPHICS reply")
	}
	c.Terminal = r.Version
	switch {
	case r.KittyOK:
		c.Kitty = true
		why("kitty graphics: the terminal answered the query OK")
	case r.Kitty:
		why("no kitty graphics: the terminal answered the query with an error")
	case env("KITTY_WINDOW_ID") != "" || termName == "xterm-kitty":
		c.Kitty = true
		why("kitty graphics assumed: KITTY_WINDOW_ID or TERM=xterm-kitty, though the query went unanswered")
	}

	if c.Kitty {
		c.KittyPlaceholders = kittyPlaceholders(r.Version)
		switch {
		case c.KittyPlaceholders:
			why("kitty images through Unicode placeholders: %s has them", r.Version)
		case r.Version != "":
			why("kitty images placed directly at their cells: %s has no Unicode placeholders (kitty ≥ 0.28 has)", r.Version)
		default:
			why("kitty images placed directly at their cells: no XTVERSION reply, so placeholders (kitty ≥ 0.28) are not assumed")
		}
	}

	switch {
	case c.Tmux && (c.Sixel || c.Kitty):
		c.Protocol = HalfBlock
		why("half-blocks: inside tmux, image passthrough is unreliable (tmux 3.3 forgets images on redraw); --graphics sixel forces it")
	case c.Tmux:
		c.Protocol = HalfBlock
		why("half-blocks: inside tmux (tmux answers DA1 itself and drops sixel); --graphics sixel forces passthrough")
	case c.Screen:
		c.Protocol = HalfBlock
		why("half-blocks: inside GNU screen, which passes images through unreliably")
	case c.Sixel:
		c.Protocol = Sixel
	case c.Kitty:
		c.Protocol = Kitty
	default:
		c.Protocol = HalfBlock
		why("half-blocks: no sixel and no kitty graphics")
	}
	return c
}

// Force applies a --graphics choice over the detected one; Auto leaves Caps unchanged.
// It never refuses, but says in Reason when the terminal did not claim support.
func (c Caps) Force(p Protocol) Caps {
	if p == Auto || p == c.Protocol {
		return c
	}
	c.Reason = append(c.Reason[:len(c.Reason):len(c.Reason)], fmt.Sprintf("%s: forced by --graphics (detected %s)", p, c.Protocol))
	switch {
	case p == Sixel && c.Tmux:
		c.Reason = append(c.Reason, "sixel inside tmux: images go through tmux passthrough; needs `set -g allow-passthrough on`, and tmux erases them on its own redraws")
	case p == Sixel && !c.Sixel:
		c.Reason = append(c.Reason, "warning: the terminal did not report sixel (DA1 attribute 4); images may not show")
	case p == Kitty && !c.Kitty:
		c.Reason = append(c.Reason, "warning: the terminal did not answer the kitty graphics query; images may not show")
	}
	c.Protocol = p
	if p == Sixel && c.ColorRegisters == 0 {
		c.ColorRegisters = 256
	}
	return c
}

// Wrap makes an image payload pass through tmux or GNU screen to the outer terminal; it
// returns payload unchanged elsewhere.
func (c Caps) Wrap(payload []byte) []byte {
	switch {
	case c.Tmux:
		return []byte(ansi.TmuxPassthrough(string(payload)))
	case c.Screen:
		return []byte(ansi.ScreenPassthrough(string(payload), 768))
	}
	return payload
}

// Pixels returns the on-screen pixel size of cols×rows cells: the size to encode at.
func (c Caps) Pixels(cols, rows int) (w, h int) {
	cw, ch := c.CellW, c.CellH
	if cw <= 0 || ch <= 0 {
		cw, ch = defaultCellW, defaultCellH
	}
	w, h = cols*cw, rows*ch
	if c.MaxW > 0 && w > c.MaxW {
		w = c.MaxW
	}
	if c.MaxH > 0 && h > c.MaxH {
		h = c.MaxH
	}
	return w, h
}
