package heatmap

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi/kitty"
)

// Kitty graphics formats (the f= key).
const (
	KittyRGBA = 32  // raw 8-bit RGBA, zlib-compressed when Compress is set
	KittyPNG  = 100 // PNG; Compress is ignored (PNG is already deflated)
)

// KittyEncoder writes an image with the kitty graphics protocol: one APC sequence per
// 4096 base64 bytes (ESC _ G keys ; data ESC \), the first carrying the keys. Responses
// are suppressed (q=2) so the terminal never writes into the program's input.
// Reuse one per goroutine; it is not safe for concurrent use.
type KittyEncoder struct {
	// Format is KittyRGBA (the default) or KittyPNG.
	Format int
	// Compress zlib-compresses RGBA data (o=z).
	Compress bool
	// ID is the image id (i=); 0 lets the terminal choose and forgo later references.
	ID uint32
	// Virtual makes a virtual placement (U=1) of Cols×Rows cells, shown wherever the
	// text contains KittyPlaceholder cells for ID. Cell renderers cannot erase it.
	Virtual    bool
	Cols, Rows int
	// Still leaves the cursor where it was (C=1): a direct placement at the cursor then
	// never moves it, nor scrolls the screen at the last row.
	Still bool

	raw bytes.Buffer
	zw  *zlib.Writer
	b64 []byte
}

// Encode transmits and displays m (a=T).
func (e *KittyEncoder) Encode(w io.Writer, m image.Image) error {
	b := m.Bounds()
	e.raw.Reset()
	keys := make([]string, 0, 12)
	keys = append(keys, "a=T", "q=2")
	switch e.Format {
	case KittyPNG:
		keys = append(keys, "f=100")
		if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&e.raw, m); err != nil {
			return fmt.Errorf("heatmap: kitty png encode: %w", err)
		}
	case 0, KittyRGBA:
		keys = append(keys, "f=32", "s="+strconv.Itoa(b.Dx()), "v="+strconv.Itoa(b.Dy()))
		pix := rgbaPix(m)
		if e.Compress {
			keys = append(keys, "o=z")
			if e.zw == nil {
				e.zw, _ = zlib.NewWriterLevel(&e.raw, zlib.BestSpeed)
			} else {
				e.zw.Reset(&e.raw)
			}
			if _, err := e.zw.Write(pix); err != nil {
				return fmt.Errorf("heatmap: kitty zlib: %w", err)
			}
			if err := e.zw.Close(); err != nil {
				return fmt.Errorf("heatmap: kitty zlib: %w", err)
			}
		} else {
			e.raw.Write(pix)
		}
	default:
		return fmt.Errorf("heatmap: kitty format %d not supported; use KittyRGBA (32) or KittyPNG (100)", e.Format)
	}
	if e.ID != 0 {
		keys = append(keys, "i="+strconv.FormatUint(uint64(e.ID), 10))
	}
	if e.Virtual {
		keys = append(keys, "U=1")
	}
	if e.Still {
		keys = append(keys, "C=1")
	}
	if e.Cols > 0 {
		keys = append(keys, "c="+strconv.Itoa(e.Cols))
	}
	if e.Rows > 0 {
		keys = append(keys, "r="+strconv.Itoa(e.Rows))
	}
	n := base64.StdEncoding.EncodedLen(e.raw.Len())
	if cap(e.b64) < n {
		e.b64 = make([]byte, n)
	}
	data := e.b64[:n]
	base64.StdEncoding.Encode(data, e.raw.Bytes())

	out := make([]byte, 0, n+(n/kitty.MaxChunkSize+1)*16+64)
	first := true
	for first || len(data) > 0 {
		chunk := data[:min(len(data), kitty.MaxChunkSize)]
		data = data[len(chunk):]
		out = append(out, "\x1b_G"...)
		if first {
			out = append(out, strings.Join(keys, ",")...)
			out = append(out, ',')
			first = false
		}
		if len(data) > 0 {
			out = append(out, "m=1"...)
		} else {
			out = append(out, "m=0"...)
		}
		out = append(out, ';')
		out = append(out, chunk...)
		out = append(out, "\x1b\\"...)
	}
	_, err := w.Write(out)
	return err
}

// KittyDelete returns the sequence that frees image id and its placements (a=d,d=I).
func KittyDelete(id uint32) string {
	return "\x1b_Ga=d,d=I,q=2,i=" + strconv.FormatUint(uint64(id), 10) + "\x1b\\"
}

// rgbaPix returns m's pixels as non-premultiplied RGBA rows, which is what f=32 means.
func rgbaPix(m image.Image) []byte {
	b := m.Bounds()
	if n, ok := m.(*image.NRGBA); ok && n.Stride == 4*b.Dx() {
		return n.Pix[n.PixOffset(b.Min.X, b.Min.Y):][:4*b.Dx()*b.Dy()]
	}
	n := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(n, n.Rect, m, b.Min, draw.Src)
	return n.Pix
}

// KittyPlaceholder returns rows lines of cols placeholder cells (U+10EEEE with row and
// column diacritics) for a virtual placement of image id, lines separated by "\n". The
// foreground colour carries the id (24-bit, or the 256-colour index for ids below 256,
// which survives renderers that downsample colour); the style is reset at each line end.
func KittyPlaceholder(id uint32, cols, rows int) string {
	var sb strings.Builder
	fg := "\x1b[38;2;" + strconv.Itoa(int(id>>16&0xff)) + ";" + strconv.Itoa(int(id>>8&0xff)) + ";" + strconv.Itoa(int(id&0xff)) + "m"
	if id < 256 {
		fg = "\x1b[38;5;" + strconv.Itoa(int(id)) + "m"
	}
	// The id's highest byte, when used, goes in a third diacritic on each cell.
	high := id >> 24
	for r := range rows {
		if r > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(fg)
		for c := range cols {
			sb.WriteRune(kitty.Placeholder)
			sb.WriteRune(kitty.Diacritic(r))
			sb.WriteRune(kitty.Diacritic(c))
			if high != 0 {
				sb.WriteRune(kitty.Diacritic(int(high)))
			}
		}
		sb.WriteString("\x1b[39m")
	}
	return sb.String()
}
