package termgfx

import (
	"reflect"
	"testing"
)

func TestParseReplies(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Replies
	}{
		{
			name: "xterm -ti vt340 (docs/terminal.md)",
			in:   "\x1b[?1;0;1024S\x1b[?2;0;600;520S\x1b[6;13;6t\x1b[4;520;720t\x1b[?63;1;2;4;6;9;15;16;22;28c",
			want: Replies{
				DA1: []int{63, 1, 2, 4, 6, 9, 15, 16, 22, 28}, HasDA1: true,
				CellW: 6, CellH: 13, WinW: 720, WinH: 520,
				ColorRegisters: 1024, SixelW: 600, SixelH: 520,
			},
		},
		{
			name: "xterm default: XTSMGRAPHICS error, no window ops",
			in:   "\x1b[?1;3;0S\x1b[?2;3;0S\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c",
			want: Replies{DA1: []int{64, 1, 2, 6, 9, 15, 16, 17, 18, 21, 22, 28}, HasDA1: true, XTSMGRAPHICSError: true},
		},
		{
			name: "tmux 3.3a",
			in:   "\x1b[?1;2c",
			want: Replies{DA1: []int{1, 2}, HasDA1: true},
		},
		{
			name: "kitty",
			in:   "\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[?62;c",
			want: Replies{Kitty: true, KittyOK: true, CellW: 10, CellH: 20, DA1: []int{62, 0}, HasDA1: true},
		},
		{
			name: "kitty graphics refused",
			in:   "\x1b_Gi=31;ENOTSUPPORTED:no\x1b\\\x1b[?62c",
			want: Replies{Kitty: true, DA1: []int{62}, HasDA1: true},
		},
		{
			name: "keys typed meanwhile and an unknown reply are skipped",
			in:   "abc\x1b[?u\x1b]11;rgb:0000/0000/0000\x07\x1b[?63;4c",
			want: Replies{DA1: []int{63, 4}, HasDA1: true},
		},
		{
			name: "cut off in the middle",
			in:   "\x1b[6;13;6t\x1b[?63;1;",
			want: Replies{CellW: 6, CellH: 13},
		},
		{
			name: "kitty 0.26.5 with XTVERSION",
			in:   "\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.26.5)\x1b\\\x1b[?62;c",
			want: Replies{Kitty: true, KittyOK: true, Version: "kitty(0.26.5)", DA1: []int{62, 0}, HasDA1: true},
		},
		{
			name: "other DCS replies are not a version",
			in:   "\x1bP1$r0m\x1b\\\x1b[?62c",
			want: Replies{DA1: []int{62}, HasDA1: true},
		},
		{name: "empty", in: "", want: Replies{}},
		{name: "lone ESC", in: "\x1b", want: Replies{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseReplies([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseReplies(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
	if !ParseReplies([]byte("\x1b[?63;1;2;4c")).HasAttr(4) {
		t.Error("HasAttr(4) false for a sixel DA1")
	}
}

// FuzzParseReplies: any bytes a terminal (or a user typing) sends must parse without
// panicking, and a DA1 reply appended after them must still be found (unless the junk
// leaves a string sequence open, which swallows it, as a terminal would).
func FuzzParseReplies(f *testing.F) {
	for _, s := range []string{
		"\x1b[?1;0;1024S\x1b[?2;0;600;520S\x1b[6;13;6t\x1b[?63;1;2;4;6;9;15;16;22;28c",
		"\x1b_Gi=31;OK\x1b\\", "\x1bP>|kitty(0.26.5)\x1b\\", "\x1bP>|", "\x1b[?1;2c", "\x1b[;;;t", "\x1b[?S", "\x1b_G", "\x1b[99999999999999999999t",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := ParseReplies(b)
		_ = r.HasAttr(4)
		if r.CellW < 0 || r.CellH < 0 || r.ColorRegisters < 0 {
			t.Fatalf("negative size from %q: %+v", b, r)
		}
	})
}
