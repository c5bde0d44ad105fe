package features

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func encoded(t testing.TB, enc func(*bytes.Buffer, image.Image) error) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 12, 8))
	for y := 0; y < 8; y++ {
		for x := 0; x < 12; x++ {
			img.Set(x, y, color.RGBA{uint8(20 * x), uint8(30 * y), 100, 255})
		}
	}
	var buf bytes.Buffer
	if err := enc(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeImage(t *testing.T) {
	formats := map[string]func(*bytes.Buffer, image.Image) error{
		"png":  func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) },
		"jpeg": func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) },
		"gif":  func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) },
	}
	for name, enc := range formats {
		data := encoded(t, enc)
		img, err := DecodeImage(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() != 12 || b.Dy() != 8 {
			t.Errorf("%s: decoded %v", name, b)
		}
		if _, err := DecodeImage(data[:len(data)/2]); !errors.Is(err, ErrBadImage) {
			t.Errorf("%s cut in half: err = %v, want ErrBadImage", name, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("hello"), []byte("\x89PNG\r\n\x1a\n")} {
		if _, err := DecodeImage(bad); !errors.Is(err, ErrBadImage) {
			t.Errorf("%q: err = %v, want ErrBadImage", bad, err)
		}
	}
	// A header claiming a gigapixel image is refused before any pixel is decoded.
	huge := encoded(t, formats["png"])
	huge = append([]byte(nil), huge...)
	copy(huge[16:24], []byte{0, 0, 0x80, 0, 0, 0, 0x80, 0}) // IHDR width, height = 32768
	binary.BigEndian.PutUint32(huge[29:33], crc32.ChecksumIEEE(huge[12:29]))
	if _, err := DecodeImage(huge); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "too large") {
		t.Errorf("a 32768² header: err = %v, want it refused as too large", err)
	}
}

func TestLoadImageHashesContent(t *testing.T) {
	dir := t.TempDir()
	data := encoded(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	os.WriteFile(a, data, 0o644)
	os.WriteFile(b, data, 0o644)
	_, ha, err := LoadImage(a)
	if err != nil {
		t.Fatal(err)
	}
	_, hb, _ := LoadImage(b)
	if ha != hb || len(ha) != 64 {
		t.Errorf("the same bytes under two names hash to %q and %q", ha, hb)
	}
	if _, _, err := LoadImage(filepath.Join(dir, "missing.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzDecodeImage: arbitrary bytes never panic, and anything accepted has a sane size.
func FuzzDecodeImage(f *testing.F) {
	f.Add(encoded(f, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }))
	f.Add(encoded(f, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) }))
	f.Add(encoded(f, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }))
	f.Add([]byte("GIF89a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImage(data)
		if err != nil {
			if !errors.Is(err, ErrBadImage) {
				t.Fatalf("error without ErrBadImage: %v", err)
			}
			return
		}
		b := img.Bounds()
		if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > maxImagePixels {
			t.Fatalf("accepted an image of %v", b)
		}
	})
}
