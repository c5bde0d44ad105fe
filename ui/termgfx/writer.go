package termgfx

import (
	"bytes"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"
	"golang.org/x/term"
)

// Area is a rectangle of character cells, 0-based from the top-left of the screen.
type Area struct {
	Row, Col, Rows, Cols int
}

func (a Area) overlaps(b Area) bool {
	return a.Row < b.Row+b.Rows && b.Row < a.Row+a.Rows && a.Col < b.Col+b.Cols && b.Col < a.Col+a.Cols
}

// clip cuts a to a screen of cols × rows (unknown sizes clip nothing): blanking cells past
// the screen's edge would land on its last row or column instead.
func (a Area) clip(cols, rows int) Area {
	if rows > 0 && a.Row+a.Rows > rows {
		a.Rows = max(rows-a.Row, 0)
	}
	if cols > 0 && a.Col+a.Cols > cols {
		a.Cols = max(cols-a.Col, 0)
	}
	return a
}

func (a Area) overlapsRows(r0, r1 int) bool { return a.Row < r1 && r0 < a.Row+a.Rows }

func (a Area) overlapsCells(row, c0, c1 int) bool {
	return row >= a.Row && row < a.Row+a.Rows && a.Col < c1 && c0 < a.Col+a.Cols
}

// Writer is the output of a Bubble Tea program that draws images: pass it with
// tea.WithOutput. It embeds *os.File so Bubble Tea still sees a terminal. Every Write (a
// frame) goes through unchanged, followed by the images that need drawing, each as
// ESC 7, CSI row;col H, payload, ESC 8, so the renderer's cursor and style are untouched.
//
// The View must leave the image's cells blank. An image is written again only when its
// payload or area changed or when the frame may have erased it. The frame bytes are
// scanned with a small cursor tracker: an erase of the whole screen (ED 2, RIS, entering
// or leaving the alternate screen, scroll and scroll-region changes) redraws every image;
// an erase or insert/delete of lines or characters, or text printed, redraws only the
// images under the cells it touches. When the tracker does not know where the cursor is
// (before the first absolute move), it assumes the worst. Redrawing too often costs
// bytes; too rarely leaves a hole, so every doubt resolves to redrawing.
//
// Areas are absolute screen cells, so the program should use the alternate screen
// (View.AltScreen); nothing is drawn until a frame has put the cursor at a known cell, and
// nothing after a frame that leaves the alternate screen. Keep images off the screen's
// last row: a sixel reaching it makes the terminal scroll. When quitting, call Clear
// before returning tea.Quit and Close after Program.Run returns.
// All methods are safe for concurrent use; the UI places images from Update while the
// renderer writes frames from its own goroutine.
type Writer struct {
	*os.File
	out io.Writer // the File, or a test's sink

	mu      sync.Mutex
	imgs    map[string]*placed
	blank   []Area // cells of removed or moved images to clear before the next frame
	trk     tracker
	closed  bool
	scratch []byte
}

type placed struct {
	area    Area
	payload []byte
	drawn   bool
	// cols × rows of the terminal when the image was placed (0 when unknown): after a
	// resize the placement is stale until the program places it again for the new layout.
	cols, rows int
	// transmitted images (kitty virtual placements) are drawn by placeholder cells in the
	// View: sent once, never redrawn, freed with remove.
	transmit bool
	remove   []byte
}

// NewWriter wraps f, usually os.Stdout.
func NewWriter(f *os.File) *Writer {
	return &Writer{File: f, out: f, imgs: map[string]*placed{}, trk: newTracker()}
}

// Place shows payload (an image already encoded for the protocol, at the area's pixel
// size) in area. Nothing is written until the next frame or Flush; placing the same
// payload at the same area again costs nothing.
func (w *Writer) Place(id string, area Area, payload []byte) {
	w.PlaceRemovable(id, area, payload, nil)
}

// PlaceRemovable is Place for images that blank cells do not erase (kitty's direct
// placements live above the text): remove (e.g. heatmap.KittyDelete) is written when the
// image is moved, replaced, removed or the Writer closed, and before each redraw the
// payload should begin with it too, so a redraw never leaves a copy.
func (w *Writer) PlaceRemovable(id string, area Area, payload, remove []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.imgs[id]; ok && !p.transmit {
		if p.area == area && bytes.Equal(p.payload, payload) {
			return
		}
		if p.drawn {
			// Clear the old pixels even in place: the new image's transparent
			// pixels (sixel P2=1) would otherwise show the old one through.
			w.blank = append(w.blank, p.area)
			w.scratch = append(w.scratch, p.remove...)
		}
	}
	np := &placed{area: area, payload: payload, remove: remove}
	if w.File != nil {
		np.cols, np.rows, _ = term.GetSize(int(w.File.Fd()))
	}
	w.imgs[id] = np
}

// fits reports whether an image can be drawn now: placed for the terminal's present size
// and inside the screen. Drawing past the last row would scroll the whole screen.
func (w *Writer) fits(p *placed) bool {
	cols, rows := w.trk.cols, w.trk.rows
	if cols <= 0 || rows <= 0 {
		return true
	}
	if p.cols > 0 && (p.cols != cols || p.rows != rows) {
		return false
	}
	return p.area.Row+p.area.Rows <= rows && p.area.Col+p.area.Cols <= cols
}

// Transmit sends payload once, after the next frame, wherever the cursor is: for kitty
// images with a virtual placement, which the View shows through placeholder cells. remove
// (e.g. heatmap.KittyDelete) is written when the image is removed or the Writer closed.
func (w *Writer) Transmit(id string, payload, remove []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.imgs[id]; ok && p.transmit && bytes.Equal(p.payload, payload) {
		return
	}
	w.imgs[id] = &placed{payload: payload, transmit: true, remove: remove}
}

// Remove takes image id off the screen: its cells are blanked before the next frame (the
// renderer thinks they are blank already, so it would not repaint them).
func (w *Writer) Remove(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removeLocked(id)
}

func (w *Writer) removeLocked(id string) {
	p, ok := w.imgs[id]
	if !ok {
		return
	}
	delete(w.imgs, id)
	switch {
	case p.transmit && p.drawn:
		w.scratch = append(w.scratch, p.remove...)
	case p.drawn:
		w.blank = append(w.blank, p.area)
		w.scratch = append(w.scratch, p.remove...)
	}
}

// Clear removes every image.
func (w *Writer) Clear() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range w.ids() {
		w.removeLocked(id)
	}
}

// Flush writes pending image changes now, without waiting for a frame: for a Place whose
// View did not change (Bubble Tea writes no frame then).
func (w *Writer) Flush() error {
	_, err := w.Write(nil)
	return err
}

// Close stops all image output: later frames pass through untouched, so nothing is drawn
// after the program's last frame. Kitty images are freed. It does not close the File.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	var out []byte
	for _, id := range w.ids() {
		if p := w.imgs[id]; p.drawn {
			out = append(out, p.remove...)
		}
	}
	w.closed, w.imgs, w.blank = true, nil, nil
	if len(out) == 0 {
		return nil
	}
	_, err := w.out.Write(out)
	return err
}

// Write writes frame p followed by the image writes it calls for. It reports len(p) on
// success, as the renderer expects.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.out.Write(p)
	}
	if w.File != nil {
		if cols, rows, err := term.GetSize(int(w.File.Fd())); err == nil {
			w.trk.cols, w.trk.rows = cols, rows
		}
	}
	buf := w.scratch // pending kitty deletes first
	w.scratch = nil
	// Blank the cells of removed or moved images before the frame, so text the frame
	// puts there is not erased.
	for _, a := range w.blank {
		buf = appendBlank(buf, a.clip(w.trk.cols, w.trk.rows))
		for _, img := range w.imgs {
			if !img.transmit && img.area.overlaps(a) {
				img.drawn = false
			}
		}
	}
	w.blank = w.blank[:0]
	buf = append(buf, p...)

	leaving := false
	w.trk.scan(p, func(d damage) {
		if d.leaveAlt {
			leaving = true
		}
		for _, img := range w.imgs {
			if !img.transmit && d.hits(img.area) {
				img.drawn = false
			}
		}
	})
	// Images sit at absolute cells, so draw only once the frame has put the cursor at a
	// known cell: Bubble Tea's first writes (mode queries, before the alternate screen is
	// entered) would otherwise leave copies on the normal screen after exit.
	if !leaving && w.trk.row >= 0 {
		for _, id := range w.ids() {
			img := w.imgs[id]
			if img.drawn || (!img.transmit && !w.fits(img)) {
				continue
			}
			img.drawn = true
			if img.transmit {
				buf = append(buf, img.payload...)
				continue
			}
			buf = append(buf, "\x1b7\x1b["...)
			buf = strconv.AppendInt(buf, int64(img.area.Row+1), 10)
			buf = append(buf, ';')
			buf = strconv.AppendInt(buf, int64(img.area.Col+1), 10)
			buf = append(buf, 'H')
			buf = append(buf, img.payload...)
			buf = append(buf, "\x1b8"...)
		}
	}
	if len(buf) == 0 {
		return 0, nil
	}
	if _, err := w.out.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *Writer) ids() []string {
	ids := make([]string, 0, len(w.imgs))
	for id := range w.imgs {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a stable order keeps output reproducible for tests
	return ids
}

// appendBlank writes spaces in the default style over a, leaving cursor and style as they
// were. Spaces, not erase sequences: spaces are what clears sixel pixels in xterm.
func appendBlank(buf []byte, a Area) []byte {
	buf = append(buf, "\x1b7\x1b[0m"...)
	for r := range a.Rows {
		buf = append(buf, "\x1b["...)
		buf = strconv.AppendInt(buf, int64(a.Row+r+1), 10)
		buf = append(buf, ';')
		buf = strconv.AppendInt(buf, int64(a.Col+1), 10)
		buf = append(buf, 'H')
		for range a.Cols {
			buf = append(buf, ' ')
		}
	}
	return append(buf, "\x1b8"...)
}

// damage is one region a frame may have erased or overwritten.
type damage struct {
	all            bool
	r0, r1         int // rows [r0, r1) erased whole
	row, c0, c1    int // cells [c0, c1) of row; c1 < 0 means none
	leaveAlt       bool
	hasRows, cells bool
}

func (d damage) hits(a Area) bool {
	return d.all || (d.hasRows && a.overlapsRows(d.r0, d.r1)) || (d.cells && a.overlapsCells(d.row, d.c0, d.c1))
}

// tracker follows the cursor through frame bytes. row or col < 0 means unknown.
type tracker struct {
	row, col   int
	saved      [2]int
	cols, rows int // screen size, 0 if unknown
}

func newTracker() tracker { return tracker{row: -1, col: -1, saved: [2]int{-1, -1}} }

const far = 1 << 30

// scan walks frame bytes, calling hit for every region the frame may erase or overwrite.
func (t *tracker) scan(p []byte, hit func(damage)) {
	all := func() { hit(damage{all: true}) }
	rows := func(r0, r1 int) {
		if t.row < 0 {
			all()
			return
		}
		hit(damage{hasRows: true, r0: r0, r1: r1})
	}
	cells := func(c0, c1 int) {
		if t.row < 0 || t.col < 0 {
			rows(t.row, t.row+1) // column unknown: the whole row
			return
		}
		hit(damage{cells: true, row: t.row, c0: c0, c1: c1})
	}
	move := func(dr, dc int) {
		if t.row >= 0 {
			t.row = max(t.row+dr, 0)
		}
		if t.col >= 0 {
			t.col = max(t.col+dc, 0)
		}
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == 0x1b && i+1 < len(p):
			i = t.escape(p, i, hit, rows, cells, all, move)
			continue
		case c == '\r':
			if t.col >= 0 || t.row >= 0 {
				t.col = 0
			}
		case c == '\n':
			if t.row >= 0 && t.rows > 0 && t.row >= t.rows-1 {
				all() // a line feed on the last row scrolls the screen
			}
			move(1, 0)
			if t.rows > 0 && t.row >= t.rows {
				t.row = t.rows - 1
			}
			// Whether a line feed also returns the carriage depends on the tty's
			// output flags (raw mode: no); renderers follow with an absolute column.
			t.col = -1
		case c == '\b':
			move(0, -1)
		case c == '\t':
			if t.col >= 0 {
				t.col = (t.col/8 + 1) * 8
			}
		case c < 0x20 || c == 0x7f:
		default:
			r, n := utf8.DecodeRune(p[i:])
			wd := runewidth.RuneWidth(r)
			if wd > 0 {
				if t.cols > 0 && t.col >= 0 && t.col+wd > t.cols {
					// pending wrap: the character goes to the next line
					move(1, 0)
					t.col = 0
				}
				cells(t.col, t.col+wd)
				if t.col >= 0 {
					t.col += wd
					if t.cols > 0 && t.col >= t.cols {
						t.col = t.cols // stays in the last column until the next character wraps
					}
				}
			}
			i += n
			continue
		}
		i++
	}
}

// escape handles the sequence at p[i] (ESC) and returns the index after it.
func (t *tracker) escape(p []byte, i int, hit func(damage), rows func(int, int), cells func(int, int), all func(), move func(int, int)) int {
	switch p[i+1] {
	case '[':
		j := i + 2
		for j < len(p) && (p[j] < 0x40 || p[j] > 0x7e) {
			j++
		}
		if j >= len(p) {
			return len(p)
		}
		t.csi(p[i+2:j], p[j], hit, rows, cells, all, move)
		return j + 1
	case ']', 'P', '_', '^', 'X':
		// string sequences (OSC, DCS, APC, PM, SOS): skip to BEL or ST
		for j := i + 2; j < len(p); j++ {
			if p[j] == 0x07 && p[i+1] == ']' {
				return j + 1
			}
			if p[j] == 0x1b && j+1 < len(p) && p[j+1] == '\\' {
				return j + 2
			}
		}
		return len(p)
	case '7':
		t.saved = [2]int{t.row, t.col}
	case '8':
		t.row, t.col = t.saved[0], t.saved[1]
	case 'M':
		move(-1, 0)
	case 'D':
		move(1, 0)
	case 'E':
		move(1, 0)
		t.col = 0
	case 'c':
		all()
		t.row, t.col = 0, 0
	case '(', ')', '*', '+', '#', ' ':
		return min(i+3, len(p))
	}
	return i + 2
}

func (t *tracker) csi(body []byte, final byte, hit func(damage), rows func(int, int), cells func(int, int), all func(), move func(int, int)) {
	private := len(body) > 0 && body[0] >= 0x3c && body[0] <= 0x3f
	if private {
		if body[0] == '?' && (final == 'h' || final == 'l') {
			for _, m := range params(body[1:]) {
				if m == 1049 || m == 1047 || m == 47 {
					all()
					if final == 'l' {
						hit(damage{leaveAlt: true})
						// back on the normal screen: where the cursor is, is unknown
						t.row, t.col = -1, -1
					}
				}
			}
		}
		return
	}
	ps := params(body)
	n := func(i, def int) int {
		if i < len(ps) && ps[i] > 0 {
			return ps[i]
		}
		return def
	}
	switch final {
	case 'H', 'f':
		t.row, t.col = n(0, 1)-1, n(1, 1)-1
	case 'A':
		move(-n(0, 1), 0)
	case 'B', 'e':
		move(n(0, 1), 0)
	case 'C', 'a':
		move(0, n(0, 1))
	case 'D':
		move(0, -n(0, 1))
	case 'E':
		move(n(0, 1), 0)
		t.col = 0
	case 'F':
		move(-n(0, 1), 0)
		t.col = 0
	case 'G', '`':
		t.col = n(0, 1) - 1
	case 'd':
		t.row = n(0, 1) - 1
	case 'J':
		switch n(0, 0) {
		case 0:
			cells(max(t.col, 0), far)
			rows(t.row+1, far)
		case 1:
			rows(0, t.row)
			cells(0, t.col+1)
		default:
			all()
		}
	case 'K':
		switch n(0, 0) {
		case 0:
			cells(max(t.col, 0), far)
		case 1:
			cells(0, t.col+1)
		default:
			rows(t.row, t.row+1)
		}
	case 'X':
		cells(max(t.col, 0), max(t.col, 0)+n(0, 1))
	case 'b': // REP repeats the last character
		cells(max(t.col, 0), max(t.col, 0)+n(0, 1))
		move(0, n(0, 1))
	case 'P', '@':
		cells(max(t.col, 0), far)
	case 'L', 'M':
		rows(t.row, far)
	case 'S', 'T', 'r':
		all()
	}
}
