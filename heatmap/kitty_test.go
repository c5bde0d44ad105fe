package heatmap

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi/kitty"
)

// parseKitty splits kitty graphics output into the first chunk's keys and the joined
// payload, checking the chunking rules on the way.
func parseKitty(b []byte) (map[string]string, []byte, error) {
	keys := map[string]string{}
	var data []byte
	for i := 0; len(b) > 0; i++ {
		if !bytes.HasPrefix(b, []byte("\x1b_G")) {
			return nil, nil, fmt.Errorf("chunk %d does not start with ESC _ G: %q", i, b[:min(8, len(b))])
		}
		end := bytes.Index(b, []byte("\x1b\\"))
		if end < 0 {
			return nil, nil, fmt.Errorf("chunk %d has no ST", i)
		}
		ctl, payload, ok := bytes.Cut(b[3:end], []byte{';'})
		if !ok {
			return nil, nil, fmt.Errorf("chunk %d has no ';'", i)
		}
		if len(payload) > kitty.MaxChunkSize || len(payload)%4 != 0 {
			return nil, nil, fmt.Errorf("chunk %d payload %d bytes: want a multiple of 4, at most 4096", i, len(payload))
		}
		more := ""
		for kv := range strings.SplitSeq(string(ctl), ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k == "m" {
				more = v
			} else if i == 0 {
				keys[k] = v
			} else {
				return nil, nil, fmt.Errorf("chunk %d repeats key %q; only m= may follow the first", i, k)
			}
		}
		data = append(data, payload...)
		b = b[end+2:]
		if (more == "0") != (len(b) == 0) {
			return nil, nil, fmt.Errorf("chunk %d: m=%s but %d bytes follow", i, more, len(b))
		}
	}
	raw, err := base64.StdEncoding.DecodeString(string(data))
	return keys, raw, err
}

func TestKittyRoundTrip(t *testing.T) {
	src := toRGBA(Render(testGrid(16), Viridis(), 0, 1, 123, 77)) // > 4096 bytes: several chunks
	for _, tt := range []struct {
		name string
		enc  KittyEncoder
	}{
		{"rgba", KittyEncoder{}},
		{"rgba zlib", KittyEncoder{Compress: true, ID: 7, Virtual: true, Cols: 12, Rows: 6}},
		{"png", KittyEncoder{Format: KittyPNG, ID: 1 << 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.enc.Encode(&buf, src); err != nil {
				t.Fatal(err)
			}
			keys, raw, err := parseKitty(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if keys["a"] != "T" || keys["q"] != "2" {
				t.Errorf("keys %v: want a=T (transmit and show) and q=2 (no replies)", keys)
			}
			var got image.Image
			switch keys["f"] {
			case "100":
				got, err = png.Decode(bytes.NewReader(raw))
			case "32":
				if keys["o"] == "z" {
					zr, zerr := zlib.NewReader(bytes.NewReader(raw))
					if zerr != nil {
						t.Fatal(zerr)
					}
					raw, err = io.ReadAll(zr)
				}
				if keys["s"] != "123" || keys["v"] != "77" {
					t.Errorf("size keys s=%s v=%s, want 123×77", keys["s"], keys["v"])
				}
				n := image.NewNRGBA(image.Rect(0, 0, 123, 77))
				if len(raw) != len(n.Pix) {
					t.Fatalf("payload %d bytes, want %d", len(raw), len(n.Pix))
				}
				copy(n.Pix, raw)
				got = n
			default:
				t.Fatalf("format f=%q", keys["f"])
			}
			if err != nil {
				t.Fatal(err)
			}
			if p := psnr(src, got); p < 1e9 {
				t.Errorf("kitty is lossless, PSNR %.1f dB", p)
			}
			if tt.enc.Virtual && (keys["U"] != "1" || keys["i"] != "7" || keys["c"] != "12" || keys["r"] != "6") {
				t.Errorf("virtual placement keys %v, want U=1 i=7 c=12 r=6", keys)
			}
		})
	}
}

func TestKittyPlaceholder(t *testing.T) {
	s := KittyPlaceholder(7, 3, 2)
	lines := strings.Split(s, "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	for r, l := range lines {
		if !strings.HasPrefix(l, "\x1b[38;5;7m") || !strings.HasSuffix(l, "\x1b[39m") {
			t.Errorf("line %d %q: want the id in the 256-colour foreground and a reset", r, l)
		}
		body := []rune(strings.TrimSuffix(strings.TrimPrefix(l, "\x1b[38;5;7m"), "\x1b[39m"))
		if len(body) != 9 {
			t.Fatalf("line %d has %d runes, want 3 cells × 3", r, len(body))
		}
		for c := range 3 {
			if body[3*c] != kitty.Placeholder || body[3*c+1] != kitty.Diacritic(r) || body[3*c+2] != kitty.Diacritic(c) {
				t.Errorf("cell (%d,%d) = %U, want placeholder + row + column diacritics", r, c, body[3*c:3*c+3])
			}
		}
	}
	if big := KittyPlaceholder(0x01020304, 1, 1); !strings.HasPrefix(big, "\x1b[38;2;2;3;4m") || []rune(big)[len([]rune("\x1b[38;2;2;3;4m"))+3] != kitty.Diacritic(1) {
		t.Errorf("32-bit id: %q, want 24-bit colour 2;3;4 and the high byte as a third diacritic", big)
	}
}

func TestKittyBadFormat(t *testing.T) {
	err := (&KittyEncoder{Format: 24}).Encode(io.Discard, image.NewRGBA(image.Rect(0, 0, 1, 1)))
	if err == nil || !strings.Contains(err.Error(), "KittyRGBA") {
		t.Errorf("err = %v, want one that names the supported formats", err)
	}
}
