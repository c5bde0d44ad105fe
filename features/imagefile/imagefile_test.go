package imagefile

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

func TestDecode(t *testing.T) {
	formats := map[string]func(*bytes.Buffer, image.Image) error{
		"png":  func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) },
		"jpeg": func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) },
		"gif":  func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) },
	}
	for name, enc := range formats {
		data := encoded(t, enc)
		img, err := Decode(data, Limits{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() != 12 || b.Dy() != 8 {
			t.Errorf("%s: decoded %v", name, b)
		}
		if _, err := Decode(data[:len(data)/2], Limits{}); !errors.Is(err, ErrBadImage) {
			t.Errorf("%s cut in half: err = %v, want ErrBadImage", name, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("hello"), []byte("\x89PNG\r\n\x1a\n")} {
		if _, err := Decode(bad, Limits{}); !errors.Is(err, ErrBadImage) {
			t.Errorf("%q: err = %v, want ErrBadImage", bad, err)
		}
	}
	// A header claiming a gigapixel image is refused before any pixel is decoded.
	huge := encoded(t, formats["png"])
	huge = append([]byte(nil), huge...)
	copy(huge[16:24], []byte{0, 0, 0x80, 0, 0, 0, 0x80, 0}) // IHDR width, height = 32768
	binary.BigEndian.PutUint32(huge[29:33], crc32.ChecksumIEEE(huge[12:29]))
	if _, err := Decode(huge, Limits{}); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "too large") {
		t.Errorf("a 32768² header: err = %v, want it refused as too large", err)
	}
}

func TestLoadHashesContent(t *testing.T) {
	dir := t.TempDir()
	data := encoded(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	os.WriteFile(a, data, 0o644)
	os.WriteFile(b, data, 0o644)
	_, ha, err := Load(context.Background(), a, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, hb, _ := Load(context.Background(), b, Limits{})
	if ha != hb || len(ha) != 64 {
		t.Errorf("the same bytes under two names hash to %q and %q", ha, hb)
	}
	if _, _, err := Load(context.Background(), filepath.Join(dir, "missing.png"), Limits{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzDecode: arbitrary bytes never panic, and anything accepted has a sane size.
func FuzzDecode(f *testing.F) {
	f.Add(encoded(f, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }))
	f.Add(encoded(f, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) }))
	f.Add(encoded(f, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }))
	f.Add([]byte("GIF89a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(data, Limits{})
		if err != nil {
			if !errors.Is(err, ErrBadImage) {
				t.Fatalf("error without ErrBadImage: %v", err)
			}
			return
		}
		b := img.Bounds()
		if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > DefaultMaxPixels {
			t.Fatalf("accepted an image of %v", b)
		}
	})
}

// within fails the test when f has not returned by the deadline: the refusals below must come
// at once, never after a wait on a writer or a read of endless bytes.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still waiting after 20 s", what)
		return nil
	}
}

func TestNotRegularFilesAreRefusedAtOnce(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.png")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock.png")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	folder := filepath.Join(dir, "folder.png")
	os.Mkdir(folder, 0o700)
	link := filepath.Join(dir, "link.png")
	os.Symlink(fifo, link)
	cases := map[string]struct{ path, says string }{
		"fifo":          {fifo, "named pipe"},
		"symlink":       {link, "named pipe"},
		"char device":   {"/dev/zero", "character device"},
		"folder":        {folder, "folder"},
		"socket":        {sock, "socket"},
		"/dev/stdin":    {"/dev/stdin", ""},
		"/proc (empty)": {"/proc/self/status", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(tc.path); err != nil {
				t.Skip(err)
			}
			for op, f := range map[string]func() error{
				"Load":  func() error { _, _, err := Load(context.Background(), tc.path, Limits{}); return err },
				"Check": func() error { _, err := Check(context.Background(), tc.path, Limits{}); return err },
			} {
				err := within(t, op+" "+tc.path, f)
				if !errors.Is(err, ErrBadImage) {
					t.Fatalf("%s %s: err = %v, want ErrBadImage", op, tc.path, err)
				}
				if !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), tc.path+": ") || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: %q, want one line naming the path and %q", op, err, tc.says)
				}
			}
		})
	}
}

func TestOversizedFilesAreRefusedUnread(t *testing.T) {
	dir := t.TempDir()
	// A sparse 2 GiB file: refused from its size, without reading (or holding) its bytes.
	big := filepath.Join(dir, "big.png")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(encoded(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }))
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = within(t, "Load of 2 GiB", func() error { _, _, err := Load(context.Background(), big, Limits{}); return err })
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "--max-image") {
		t.Fatalf("2 GiB file: %v, want ErrTooLarge naming the flag", err)
	}
	if _, err := Check(context.Background(), big, Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Check of 2 GiB file: %v", err)
	}
	// A photograph-sized limit applies to real files too, and a file under it reads.
	small := filepath.Join(dir, "small.png")
	data := encoded(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	os.WriteFile(small, data, 0o644)
	if _, err := Read(context.Background(), small, Limits{MaxBytes: int64(len(data)) - 1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a file one byte over the limit: %v", err)
	}
	if got, err := Read(context.Background(), small, Limits{MaxBytes: int64(len(data))}); err != nil || !bytes.Equal(got, data) {
		t.Errorf("a file at the limit: %d bytes, %v", len(got), err)
	}
}

func TestReadStopsWithItsContext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.png")
	os.WriteFile(p, encoded(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Load(ctx, p, Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context: %v", err)
	}
	if _, err := Check(ctx, p, Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Check with a cancelled context: %v", err)
	}
}

func TestCheckReadsTheHeader(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.png")
	data := encoded(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	os.WriteFile(p, data, 0o644)
	info, err := Check(context.Background(), p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "png" || info.Width != 12 || info.Height != 8 || info.Bytes != int64(len(data)) {
		t.Errorf("Check = %+v", info)
	}
	img, _, err := Load(context.Background(), p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// The estimate covers what the decoder really allocates.
	if got := info.DecodedBytes(); got < int64(len(img.(*image.RGBA).Pix)) {
		t.Errorf("DecodedBytes = %d, the decoded image holds %d", got, len(img.(*image.RGBA).Pix))
	}
	if _, err := Check(context.Background(), p, Limits{MaxPixels: 95}); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "too large") {
		t.Errorf("12x8 under a 95-pixel limit: %v", err)
	}
	text := filepath.Join(dir, "notes.png")
	os.WriteFile(text, []byte("hello"), 0o644)
	if _, err := Check(context.Background(), text, Limits{}); !errors.Is(err, ErrBadImage) || err.Error() != text+": "+ErrBadImage.Error() {
		t.Errorf("a text file: %v", err)
	}
	if _, err := Check(context.Background(), filepath.Join(dir, "missing.png"), Limits{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}
