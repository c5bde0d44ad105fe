package termgfx

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDecide(t *testing.T) {
	vt340 := ParseReplies([]byte("\x1b[?1;0;1024S\x1b[?2;0;600;520S\x1b[6;13;6t\x1b[?63;1;2;4;6;9;15;16;22;28c"))
	xtermDefault := ParseReplies([]byte("\x1b[?1;3;0S\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c"))
	tmux := ParseReplies([]byte("\x1b[?1;2c"))
	ws := &unix.Winsize{Row: 40, Col: 120, Xpixel: 1200, Ypixel: 800}
	tests := []struct {
		name         string
		r            Replies
		ws           *unix.Winsize
		env          func(string) string
		tty          bool
		want         Protocol
		cellW, cellH int
		regs         int
		reason       string
	}{
		{"xterm vt340", vt340, ws, envOf("TERM", "xterm", "COLORTERM", "truecolor"), true, Sixel, 6, 13, 1024, "DA1 attribute 4"},
		{"xterm default", xtermDefault, ws, envOf("TERM", "xterm"), true, HalfBlock, 10, 20, 0, "lacks attribute 4"},
		{"tmux with a sixel outer terminal", vt340, ws, envOf("TERM", "tmux-256color", "TMUX", "/tmp/tmux-0/default,1,0"), true, HalfBlock, 6, 13, 1024, "inside tmux"},
		{"tmux", tmux, &unix.Winsize{Row: 10, Col: 10, Xpixel: 160, Ypixel: 320}, envOf("TERM", "screen", "TMUX", "x"), true, HalfBlock, 16, 32, 0, "tmux may invent"},
		{"screen", vt340, nil, envOf("TERM", "screen", "STY", "1.pts"), true, HalfBlock, 6, 13, 1024, "GNU screen"},
		{"kitty", ParseReplies([]byte("\x1b_Gi=31;OK\x1b\\\x1b[?62;c")), ws, envOf("TERM", "xterm-kitty"), true, Kitty, 10, 20, 0, "answered the query OK"},
		{"kitty by env only", Replies{}, nil, envOf("KITTY_WINDOW_ID", "1"), true, Kitty, 10, 20, 0, "kitty graphics assumed"},
		{"silent terminal", Replies{}, nil, envOf("TERM", "xterm"), true, HalfBlock, 10, 20, 0, "no reply to DA1"},
		{"not a terminal", Replies{}, nil, envOf("TERM", "xterm"), false, HalfBlock, 10, 20, 0, "not a terminal"},
		{"dumb", Replies{}, nil, envOf("TERM", "dumb"), true, None, 10, 20, 0, "TERM=dumb"},
		{"window pixels over cells", Replies{WinW: 1000, WinH: 800, HasDA1: true}, &unix.Winsize{Row: 40, Col: 100}, envOf(), true, HalfBlock, 10, 20, 0, "CSI 14 t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decide(tt.r, tt.ws, tt.env, tt.tty, true, 300*time.Millisecond)
			if c.KittyPlaceholders {
				t.Errorf("placeholders assumed without an XTVERSION reply")
			}
			if c.Protocol != tt.want || c.CellW != tt.cellW || c.CellH != tt.cellH || c.ColorRegisters != tt.regs {
				t.Errorf("got %s cell %d×%d regs %d, want %s cell %d×%d regs %d\nreasons: %q",
					c.Protocol, c.CellW, c.CellH, c.ColorRegisters, tt.want, tt.cellW, tt.cellH, tt.regs, c.Reason)
			}
			if !strings.Contains(strings.Join(c.Reason, "\n"), tt.reason) {
				t.Errorf("reasons %q do not mention %q", c.Reason, tt.reason)
			}
		})
	}
	if c := decide(vt340, ws, envOf("COLORTERM", "truecolor"), true, true, 0); !c.TrueColor {
		t.Error("COLORTERM=truecolor not honoured")
	}
	if c := decide(xtermDefault, ws, envOf("TERM", "xterm-256color"), true, true, 0); c.TrueColor {
		t.Error("TrueColor without any sign of it")
	}
	// A sixel terminal is a sign: xterm -ti vt340 has 24-bit colour but sets no COLORTERM.
	c := decide(vt340, ws, envOf("TERM", "xterm"), true, true, 0)
	if !c.TrueColor || !strings.Contains(strings.Join(c.Reason, "\n"), "24-bit colour: a sixel terminal") {
		t.Errorf("sixel terminal: TrueColor %v, reasons %q", c.TrueColor, c.Reason)
	}
	if strings.Contains(strings.Join(c.Reason, "\n"), "256 colours") {
		t.Errorf("sixel terminal: reasons contradict themselves: %q", c.Reason)
	}
	// Inside tmux the colours go through tmux, whatever DA1 says.
	if c := decide(vt340, ws, envOf("TERM", "tmux-256color", "TMUX", "x"), true, true, 0); c.TrueColor {
		t.Error("TrueColor inside tmux from a sixel reply")
	}
}

func TestForce(t *testing.T) {
	tmux := decide(ParseReplies([]byte("\x1b[?1;2c")), nil, envOf("TMUX", "x"), true, true, 0)
	c := tmux.Force(Sixel)
	if c.Protocol != Sixel || c.ColorRegisters != 256 {
		t.Errorf("Force(Sixel) = %s with %d registers", c.Protocol, c.ColorRegisters)
	}
	if !strings.Contains(strings.Join(c.Reason, "\n"), "allow-passthrough") {
		t.Errorf("forcing sixel in tmux should explain passthrough: %q", c.Reason)
	}
	if tmux.Force(Auto).Protocol != HalfBlock || tmux.Force(None).Protocol != None {
		t.Error("Force(Auto) must keep the detected protocol; Force(None) must turn images off")
	}
	if len(tmux.Reason) == len(c.Reason) {
		t.Error("Force changed nothing in Reason")
	}
	if got := string(c.Wrap([]byte("\x1bPq\x1b\\"))); got != "\x1bPtmux;\x1b\x1bPq\x1b\x1b\\\x1b\\" {
		t.Errorf("Wrap in tmux = %q", got)
	}
}

func TestParseProtocol(t *testing.T) {
	for in, want := range map[string]Protocol{"auto": Auto, "": Auto, "Sixel": Sixel, "kitty": Kitty, "halfblock": HalfBlock, "none": None} {
		got, err := ParseProtocol(in)
		if err != nil || got != want {
			t.Errorf("ParseProtocol(%q) = %v, %v; want %v", in, got, err, want)
		}
		if in != "" && in != "Sixel" && got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	if _, err := ParseProtocol("iterm"); err == nil || !strings.Contains(err.Error(), "auto, sixel, kitty, halfblock, quadrant or none") {
		t.Errorf("bad value error %v should list the choices", err)
	}
	var p Protocol
	if err := p.Set("kitty"); err != nil || p != Kitty {
		t.Errorf("Set(kitty) = %v, %v", p, err)
	}
}

// Not a terminal: Detect must send nothing and decide half-blocks.
func TestDetectNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	c, err := Detect(context.Background(), r, w, 0, envOf("TERM", "xterm"))
	if err != nil || c.Protocol != HalfBlock || c.TTY {
		t.Fatalf("Detect on pipes = %+v, %v", c, err)
	}
	w.Close()
	buf := make([]byte, 16)
	if n, _ := r.Read(buf); n != 0 {
		t.Errorf("Detect wrote %q to a pipe", buf[:n])
	}
}

func TestPixels(t *testing.T) {
	c := Caps{CellW: 6, CellH: 13, MaxW: 600, MaxH: 520}
	if w, h := c.Pixels(30, 12); w != 180 || h != 156 {
		t.Errorf("Pixels(30,12) = %d×%d", w, h)
	}
	if w, h := c.Pixels(200, 100); w != 600 || h != 520 {
		t.Errorf("Pixels beyond the sixel limit = %d×%d, want 600×520", w, h)
	}
}

func TestKittyPlaceholdersByVersion(t *testing.T) {
	tests := []struct {
		version string
		want    bool
		reason  string
	}{
		{"kitty(0.26.5)", false, "no Unicode placeholders"},
		{"kitty(0.27.1)", false, "no Unicode placeholders"},
		{"kitty(0.28.0)", true, "has them"},
		{"kitty(0.35.2)", true, "has them"},
		{"kitty(1.0.0)", true, "has them"},
		{"ghostty 1.1.2", true, "has them"},
		{"WezTerm 20240203", false, "no Unicode placeholders"},
		{"", false, "no XTVERSION reply"},
		{"kitty(x.y)", false, "no Unicode placeholders"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			r := Replies{Kitty: true, KittyOK: true, Version: tt.version, HasDA1: true, DA1: []int{62}}
			c := decide(r, nil, envOf("TERM", "xterm-kitty"), true, true, 0)
			if c.Protocol != Kitty || c.KittyPlaceholders != tt.want || c.Terminal != tt.version {
				t.Errorf("got %s placeholders %v terminal %q, want kitty placeholders %v", c.Protocol, c.KittyPlaceholders, c.Terminal, tt.want)
			}
			if !strings.Contains(strings.Join(c.Reason, "\n"), tt.reason) {
				t.Errorf("reasons %q do not mention %q", c.Reason, tt.reason)
			}
		})
	}
}

func TestTmuxTrueColor(t *testing.T) {
	tests := []struct {
		name    string
		answers map[string]string // tmux arguments → output; missing ones fail
		want    bool
		reason  string
	}{
		{"client features", map[string]string{"display-message -p #{client_termfeatures}": "256,RGB,title,clipboard\n"}, true, "RGB feature"},
		{"terminal-overrides Tc", map[string]string{
			"display-message -p #{client_termfeatures}": "256,title\n",
			"show-options -gs terminal-overrides":       "terminal-overrides[0] \"xterm-256color:Tc\"\n",
		}, true, "terminal-overrides"},
		{"terminal-features RGB", map[string]string{"show-options -gs terminal-features": "terminal-features[0] xterm*:clipboard:ccolour:cstyle:focus:title\nterminal-features[1] alacritty:RGB\n"}, true, "terminal-features"},
		{"outer COLORTERM", map[string]string{"show-environment COLORTERM": "COLORTERM=truecolor\n"}, true, "COLORTERM=truecolor"},
		{"COLORTERM unset", map[string]string{"show-environment COLORTERM": "-COLORTERM\n", "show-options -gs terminal-overrides": "terminal-overrides[0] xterm*:TcX\n"}, false, ""},
		{"tmux not answering", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(_ context.Context, args ...string) (string, error) {
				out, ok := tt.answers[strings.Join(args, " ")]
				if !ok {
					return "", errors.New("exit status 1")
				}
				return out, nil
			}
			got, why := TmuxTrueColor(t.Context(), run)
			if got != tt.want || !strings.Contains(why, tt.reason) {
				t.Errorf("TmuxTrueColor = %v %q, want %v mentioning %q", got, why, tt.want, tt.reason)
			}
		})
	}
}
