package termgfx

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/ansi/kitty"
	"github.com/charmbracelet/x/vt"

	"github.com/diffsim/diffsim/heatmap"
)

// newTestWriter is a Writer whose output goes to sink instead of a terminal.
func newTestWriter(sink *bytes.Buffer, cols, rows int) *Writer {
	w := &Writer{out: sink, imgs: map[string]*placed{}, trk: newTracker()}
	w.trk.cols, w.trk.rows = cols, rows
	return w
}

// fakeSixel is a tiny valid sixel image: one red 1×6 column.
var fakeSixel = []byte("\x1bP0;1q\"1;1;1;6#0;2;100;0;0#0~\x1b\\")

// The end-to-end check: a frame and a placement go through the Writer into a terminal
// emulator, and the sixel DCS arrives with the cursor at the placed cell; afterwards the
// cursor is back where the frame left it.
func TestWriterPlacesSixelAtCellInEmulator(t *testing.T) {
	emu := vt.NewEmulator(40, 12)
	type hit struct {
		x, y int
		data string
	}
	var hits []hit
	emu.RegisterDcsHandler(ansi.Command(0, 0, 'q'), func(_ ansi.Params, data []byte) bool {
		p := emu.CursorPosition()
		hits = append(hits, hit{p.X, p.Y, string(data)})
		return true
	})
	var sink bytes.Buffer
	w := newTestWriter(&sink, 40, 12)
	w.Place("heat", Area{Row: 3, Col: 5, Rows: 2, Cols: 4}, fakeSixel)

	frame := "\x1b[?1049h\x1b[H\x1b[2Jtitle\r\n\r\n\r\n     \r\n\x1b[10;1Hstatus"
	if _, err := w.Write([]byte(frame)); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Write(sink.Bytes()); err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 {
		t.Fatalf("%d sixel images reached the terminal, want 1", len(hits))
	}
	if hits[0].x != 5 || hits[0].y != 3 {
		t.Errorf("sixel drawn with the cursor at (%d,%d), want column 5 row 3", hits[0].x, hits[0].y)
	}
	if !strings.Contains(hits[0].data, "#0;2;100;0;0") {
		t.Errorf("DCS data %q lost the payload", hits[0].data)
	}
	if p := emu.CursorPosition(); p.X != 6 || p.Y != 9 {
		t.Errorf("cursor after the frame at (%d,%d), want (6,9) where the frame left it", p.X, p.Y)
	}
	if got := emu.CellAt(0, 0).Content; got != "t" {
		t.Errorf("frame text damaged: cell (0,0) = %q", got)
	}
}

// countImages returns how many times the Writer drew each image in out.
func countImages(out string) int { return strings.Count(out, "\x1bP0;1q") }

func TestWriterRedrawHeuristic(t *testing.T) {
	area := Area{Row: 3, Col: 10, Rows: 4, Cols: 8} // rows 3–6, columns 10–17
	tests := []struct {
		name   string
		frame  string
		redraw bool
	}{
		{"no frame bytes", "", false},
		{"text on another row", "\x1b[1;1Hhello", false},
		{"text left of the image on its row", "\x1b[4;1Hhello", false},
		{"text right of the image on its row", "\x1b[4;30Hhello", false},
		{"text over the image", "\x1b[5;12Hx", true},
		{"text that runs into the image", "\x1b[5;8Habcd", true},
		{"erase line right from left of the image", "\x1b[4;2H\x1b[K", true},
		{"erase line right from right of the image", "\x1b[4;20H\x1b[K", false},
		{"erase line left from left of the image", "\x1b[4;5H\x1b[1K", false},
		{"erase line on another row", "\x1b[9;1H\x1b[2K", false},
		{"erase characters over the image", "\x1b[6;9H\x1b[4X", true},
		{"erase characters before the image", "\x1b[6;1H\x1b[4X", false},
		{"clear screen", "\x1b[2J", true},
		{"erase below from above", "\x1b[2;1H\x1b[J", true},
		{"erase below from under", "\x1b[8;1H\x1b[J", false},
		{"erase above from under", "\x1b[8;1H\x1b[1J", true},
		{"delete lines above", "\x1b[2;1H\x1b[M", true},
		{"insert lines below", "\x1b[9;1H\x1b[L", false},
		{"delete characters on the row", "\x1b[4;1H\x1b[P", true},
		{"scroll", "\x1b[S", true},
		{"scroll region", "\x1b[1;5r", true},
		{"enter alternate screen", "\x1b[?1049h", true},
		{"relative moves onto the image", "\x1b[1;1H\x1b[3B\x1b[10Cx", true},
		{"relative moves beside the image", "\x1b[1;1H\x1b[3B\x1b[20Cx", false},
		{"line feeds onto the image", "\x1b[1;12H\n\n\n\x1b[1D\x1b[1Cx", true},
		{"reverse index", "\x1b[8;12H\x1bM\x1bMx", true},
		{"save and restore", "\x1b[5;12H\x1b7\x1b[1;1H\x1b8x", true},
		{"OSC with ESC-free body is skipped", "\x1b[1;1H\x1b]0;a title over the image\x07", false},
		{"styles do not matter", "\x1b[1;1H\x1b[1;38;5;3mhi\x1b[0m", false},
		{"wide character ending on the image", "\x1b[4;10H世", true},
		{"wide character just before the image", "\x1b[4;9H世", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink bytes.Buffer
			w := newTestWriter(&sink, 40, 12)
			w.Place("img", area, fakeSixel)
			_, _ = w.Write([]byte("\x1b[H")) // first frame: cursor known, image drawn
			if countImages(sink.String()) != 1 {
				t.Fatalf("first frame drew %d images, want 1", countImages(sink.String()))
			}
			sink.Reset()
			if _, err := w.Write([]byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			if got := countImages(sink.String()) == 1; got != tt.redraw {
				t.Errorf("frame %q: redrawn = %v, want %v", tt.frame, got, tt.redraw)
			}
		})
	}
}

func TestWriterUnknownCursorIsConservative(t *testing.T) {
	var sink bytes.Buffer
	w := newTestWriter(&sink, 40, 12)
	w.Place("img", Area{Row: 3, Col: 10, Rows: 2, Cols: 2}, fakeSixel)
	_, _ = w.Write([]byte("\x1b[?2026$p"))
	if countImages(sink.String()) != 0 {
		t.Fatal("drew an image before any frame put the cursor at a known cell")
	}
	_, _ = w.Write([]byte("\x1b[H"))
	sink.Reset()
	// leave the alternate screen: the cursor is unknown and nothing may be drawn there
	_, _ = w.Write([]byte("\x1b[?1049l"))
	if countImages(sink.String()) != 0 {
		t.Error("drew an image after leaving the alternate screen")
	}
	sink.Reset()
	_, _ = w.Write([]byte("\x1b[Kx")) // row unknown: an erase could be anywhere
	_, _ = w.Write([]byte("\x1b[1;1H"))
	if countImages(sink.String()) != 1 {
		t.Error("image not redrawn after an erase at an unknown position")
	}
}

func TestWriterPlaceRemoveClose(t *testing.T) {
	var sink bytes.Buffer
	w := newTestWriter(&sink, 40, 12)
	a := Area{Row: 1, Col: 1, Rows: 2, Cols: 3}
	w.Place("img", a, fakeSixel)
	_, _ = w.Write([]byte("\x1b[H"))
	sink.Reset()

	w.Place("img", a, bytes.Clone(fakeSixel)) // same bytes, same place: nothing to do
	if err := w.Flush(); err != nil || sink.Len() != 0 {
		t.Fatalf("re-placing an unchanged image wrote %q (err %v)", sink.String(), err)
	}

	moved := Area{Row: 5, Col: 1, Rows: 2, Cols: 3}
	w.Place("img", moved, fakeSixel)
	_ = w.Flush()
	out := sink.String()
	blank := "\x1b7\x1b[0m\x1b[2;2H   \x1b[3;2H   \x1b8"
	if !strings.HasPrefix(out, blank) || !strings.Contains(out, "\x1b7\x1b[6;2H\x1bP0;1q") {
		t.Errorf("moving an image wrote %q, want the old cells blanked then the image at 6;2", out)
	}
	sink.Reset()

	w.Remove("img")
	frame := "\x1b[2;2Hnew text"
	_, _ = w.Write([]byte(frame))
	if got := sink.String(); got != "\x1b7\x1b[0m\x1b[6;2H   \x1b[7;2H   \x1b8"+frame {
		t.Errorf("Remove wrote %q, want the blanking before the frame", got)
	}
	sink.Reset()

	w.Place("img", a, fakeSixel)
	w.Transmit("k", []byte("\x1b_Ga=T,i=9;AAAA\x1b\\"), []byte("\x1b_Ga=d,d=I,i=9\x1b\\"))
	_ = w.Flush()
	if !strings.Contains(sink.String(), "a=T,i=9") {
		t.Error("Transmit payload not sent")
	}
	sink.Reset()
	_, _ = w.Write([]byte("\x1b[2J")) // transmitted images live in placeholder cells: not resent
	if strings.Contains(sink.String(), "a=T") || countImages(sink.String()) != 1 {
		t.Errorf("after a clear: %q, want the sixel redrawn and the kitty image not resent", sink.String())
	}
	sink.Reset()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := sink.String(); got != "\x1b_Ga=d,d=I,i=9\x1b\\" {
		t.Errorf("Close wrote %q, want only the kitty delete", got)
	}
	sink.Reset()
	_, _ = w.Write([]byte("\x1b[2Jlast frame"))
	if got := sink.String(); got != "\x1b[2Jlast frame" {
		t.Errorf("after Close a frame became %q, want it untouched", got)
	}
	if err := w.Close(); err != nil {
		t.Error("second Close:", err)
	}
}

// The UI places images from Update while the renderer writes frames: run with -race.
func TestWriterConcurrent(t *testing.T) {
	var sink bytes.Buffer
	w := newTestWriter(&sink, 40, 12)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 200 {
			w.Place(fmt.Sprint(i%3), Area{Row: i % 5, Col: 1, Rows: 1, Cols: 1}, fakeSixel)
			if i%50 == 0 {
				w.Clear()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 200 {
			_, _ = w.Write([]byte("\x1b[H\x1b[2Jframe"))
		}
	}()
	wg.Wait()
	_ = w.Close()
}

// Kitty placeholders go in the View, so a cell renderer must keep each one (with its
// diacritics) in one cell of width 1, or the image would be cut or shifted.
func TestKittyPlaceholdersInCells(t *testing.T) {
	emu := vt.NewEmulator(10, 3)
	_, _ = emu.WriteString(strings.ReplaceAll(heatmap.KittyPlaceholder(5, 3, 2), "\n", "\r\n") + "|")
	for y := range 2 {
		for x := range 3 {
			c := emu.CellAt(x, y)
			if r := []rune(c.Content); c.Width != 1 || len(r) != 3 || r[0] != kitty.Placeholder || r[1] != kitty.Diacritic(y) || r[2] != kitty.Diacritic(x) {
				t.Errorf("cell (%d,%d) = %q width %d", x, y, c.Content, c.Width)
			}
		}
	}
	if got := emu.CellAt(3, 1).Content; got != "|" {
		t.Errorf("text after the placeholders at column %q, want '|' at column 3", got)
	}
}

// FuzzWriterFrames feeds arbitrary frame bytes through the cursor tracker: no panic, the
// frame always passes through intact, and a clear screen at the end always brings the
// image back, whatever came before it.
func FuzzWriterFrames(f *testing.F) {
	for _, s := range []string{"\x1b[4;2H\x1b[K", "\x1b[?1049l", "\x1b7\x1b8\x1bM\n\r\t\b", "\x1b]0;t\x07世", "\x1b[99999999999999999999;1H", "\x1bP", "\x1b[", "\x1b[1;5r\x1b[S"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var sink bytes.Buffer
		w := newTestWriter(&sink, 40, 12)
		w.Place("img", Area{Row: 3, Col: 10, Rows: 4, Cols: 8}, fakeSixel)
		_, _ = w.Write([]byte("\x1b[H"))
		sink.Reset()
		n, err := w.Write(frame)
		if err != nil || n != len(frame) || !bytes.Contains(sink.Bytes(), frame) {
			t.Fatalf("frame %q: wrote %d, %v; output %q", frame, n, err, sink.Bytes())
		}
		// Close any string sequence the junk left open, return to the alternate
		// screen, then clear: the image must be redrawn.
		sink.Reset()
		_, _ = w.Write([]byte("\x1b\\\x07\x1b[?1049h\x1b[H\x1b[2J"))
		if countImages(sink.String()) != 1 {
			t.Fatalf("after %q and a clear screen the image was not redrawn: %q", frame, sink.Bytes())
		}
	})
}

// TestWriterRemovablePlacement: a direct kitty placement is drawn at its cell like a
// sixel, and its delete is written when it moves, when it is removed and on Close (blank
// cells do not erase a kitty image).
func TestWriterRemovablePlacement(t *testing.T) {
	del := []byte(heatmap.KittyDelete(208))
	img := append(bytes.Clone(del), "\x1b_Ga=T,i=208,C=1;AAAA\x1b\\"...)
	frame := []byte("\x1b[?1049h\x1b[H\x1b[2Jtitle")
	steps := []struct {
		name       string
		do         func(w *Writer)
		wantDelete int // deletes written outside the payload
		wantDraw   bool
	}{
		{"placed", func(w *Writer) { w.PlaceRemovable("p", Area{Row: 2, Col: 3, Rows: 2, Cols: 4}, img, del) }, 0, true},
		{"same again costs nothing", func(w *Writer) { w.PlaceRemovable("p", Area{Row: 2, Col: 3, Rows: 2, Cols: 4}, img, del) }, 0, false},
		{"moved", func(w *Writer) { w.PlaceRemovable("p", Area{Row: 5, Col: 3, Rows: 2, Cols: 4}, img, del) }, 1, true},
		{"removed", func(w *Writer) { w.Remove("p") }, 1, false},
	}
	var sink bytes.Buffer
	w := newTestWriter(&sink, 40, 12)
	for i, st := range steps {
		sink.Reset()
		st.do(w)
		f := []byte(nil)
		if i == 0 {
			f = frame
		}
		if _, err := w.Write(f); err != nil {
			t.Fatal(err)
		}
		out := sink.Bytes()
		draws := bytes.Count(out, []byte("a=T"))
		deletes := bytes.Count(out, del) - draws // each drawn payload starts with its own delete
		if deletes != st.wantDelete || (draws > 0) != st.wantDraw {
			t.Errorf("%s: %d deletes and %d draws in %q, want %d deletes, draw %v", st.name, deletes, draws, out, st.wantDelete, st.wantDraw)
		}
	}
	sink.Reset()
	w.PlaceRemovable("q", Area{Row: 1, Col: 1, Rows: 1, Cols: 1}, img, del)
	w.Write(nil)
	sink.Reset()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), del) {
		t.Errorf("Close wrote %q, want the delete %q", sink.Bytes(), del)
	}
}
