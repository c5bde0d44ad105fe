package termgfx

import (
	"bytes"
	"strconv"
)

// Replies is what a terminal answered to Detect's queries. Zero fields were not answered.
type Replies struct {
	// DA1 holds the primary device attributes (CSI ? … c); 4 means sixel.
	DA1    []int
	HasDA1 bool
	// CellW, CellH: character cell size in pixels (CSI 6 ; h ; w t).
	CellW, CellH int
	// WinW, WinH: text area size in pixels (CSI 4 ; h ; w t).
	WinW, WinH int
	// ColorRegisters: XTSMGRAPHICS colour registers (CSI ? 1 ; 0 ; n S).
	ColorRegisters int
	// SixelW, SixelH: XTSMGRAPHICS sixel geometry (CSI ? 2 ; 0 ; w ; h S).
	SixelW, SixelH int
	// XTSMGRAPHICSError is set when the terminal answered XTSMGRAPHICS with an error status.
	XTSMGRAPHICSError bool
	// Kitty: the kitty graphics query (i=31) was answered; KittyOK when it said OK.
	Kitty, KittyOK bool
	// Version is the XTVERSION reply (DCS > | text ST), e.g. "kitty(0.26.5)" or "XTerm(379)".
	Version string
}

// HasAttr reports whether DA1 lists attribute a.
func (r Replies) HasAttr(a int) bool {
	for _, v := range r.DA1 {
		if v == a {
			return true
		}
	}
	return false
}

// ParseReplies extracts every answer it recognises from b, the raw bytes the terminal
// sent; other bytes (keys typed meanwhile, unknown replies) are skipped. It never fails:
// a malformed reply is ignored.
func ParseReplies(b []byte) Replies {
	var r Replies
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0x1b)
		if i < 0 || i+1 >= len(b) {
			break
		}
		b = b[i+1:]
		switch b[0] {
		case '[':
			n := csiLen(b[1:])
			if n < 0 {
				return r
			}
			r.csi(b[1 : 1+n])
			b = b[1+n:]
		case '_':
			end := bytes.Index(b, []byte("\x1b\\"))
			if end < 0 {
				return r
			}
			r.apc(b[1:end])
			b = b[end+2:]
		case 'P':
			end := bytes.Index(b, []byte("\x1b\\"))
			if end < 0 {
				return r
			}
			if v, ok := bytes.CutPrefix(b[1:end], []byte(">|")); ok && len(v) <= 128 {
				r.Version = string(v)
			}
			b = b[end+2:]
		}
	}
	return r
}

// csiLen returns the length of a CSI sequence body including its final byte, or -1 when
// b ends before the final byte.
func csiLen(b []byte) int {
	for i, c := range b {
		if c >= 0x40 && c <= 0x7e {
			return i + 1
		}
		if c < 0x20 {
			return i // a control character cuts the sequence short; skip what came so far
		}
	}
	return -1
}

func (r *Replies) csi(seq []byte) {
	if len(seq) == 0 {
		return
	}
	final := seq[len(seq)-1]
	body := seq[:len(seq)-1]
	private := len(body) > 0 && body[0] == '?'
	if private {
		body = body[1:]
	}
	ps := params(body)
	switch {
	case private && final == 'c':
		r.DA1, r.HasDA1 = ps, true
	case private && final == 'S' && len(ps) >= 3:
		if ps[1] != 0 {
			r.XTSMGRAPHICSError = true
			return
		}
		switch ps[0] {
		case 1:
			r.ColorRegisters = ps[2]
		case 2:
			if len(ps) >= 4 {
				r.SixelW, r.SixelH = ps[2], ps[3]
			}
		}
	case private && final == 'S' && len(ps) >= 2 && ps[1] != 0:
		r.XTSMGRAPHICSError = true
	case !private && final == 't' && len(ps) >= 3:
		switch ps[0] {
		case 6:
			r.CellH, r.CellW = ps[1], ps[2]
		case 4:
			r.WinH, r.WinW = ps[1], ps[2]
		}
	}
}

// params parses "1;2;;4" into [1 2 0 4]; anything that is not a number counts as 0.
func params(b []byte) []int {
	if len(b) == 0 {
		return nil
	}
	var ps []int
	for f := range bytes.SplitSeq(b, []byte{';'}) {
		n, err := strconv.Atoi(string(f))
		if err != nil || n < 0 {
			n = 0
		}
		ps = append(ps, n)
	}
	return ps
}

func (r *Replies) apc(body []byte) {
	// kitty: G keys ; message
	if len(body) == 0 || body[0] != 'G' {
		return
	}
	keys, msg, _ := bytes.Cut(body[1:], []byte{';'})
	for kv := range bytes.SplitSeq(keys, []byte{','}) {
		if string(kv) == "i=31" {
			r.Kitty = true
			r.KittyOK = bytes.Equal(msg, []byte("OK"))
		}
	}
}
