// Package imagefile reads image files the one way diffsim reads them, in the CLI, the server
// and the explorer alike: a path must name a regular file (a FIFO, a device or a folder is
// refused before it is opened for reading, so nothing blocks on it), its encoded bytes are
// capped, the read stops when its context ends, and the pixel count a header claims is
// checked before any pixel is decoded. An image is identified by the sha256 of its bytes.
package imagefile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // GIF: first frame
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"os"
	"syscall"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// Defaults. DefaultMaxBytes is far above any photograph (a 100-megapixel camera JPEG is
// about 50 MB) and still refuses a multi-gigabyte file or a device before it fills memory;
// DefaultMaxPixels refuses decompression bombs, whose header claims a size far beyond the
// file.
const (
	DefaultMaxBytes  int64 = 256 << 20
	DefaultMaxPixels int64 = 100 << 20
)

// Limits bound what reading one image may take. The zero value means the defaults.
type Limits struct {
	MaxBytes  int64 // encoded bytes; 0 = DefaultMaxBytes
	MaxPixels int64 // width × height; 0 = DefaultMaxPixels
}

func (l Limits) maxBytes() int64 {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

func (l Limits) maxPixels() int64 {
	if l.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return l.MaxPixels
}

// ErrBadImage is wrapped by every file that cannot be used as an image: not a regular file,
// too large, not a supported format, corrupt. Callers treat it as bad input (exit code 2, HTTP
// 400, a skipped file in a ranking).
var ErrBadImage = errors.New("not a PNG, JPEG, WebP, BMP, TIFF or GIF image")

// ErrNotRegular and ErrTooLarge say which check refused a file; errors.Is finds ErrBadImage
// beside them.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("image file too large")
)

// refusal is a file refused before decoding: its message is its own, and it is both its kind
// and ErrBadImage to errors.Is.
type refusal struct {
	msg  string
	kind error
}

func (r refusal) Error() string   { return r.msg }
func (r refusal) Unwrap() []error { return []error{r.kind, ErrBadImage} }

// Error is an image file that cannot be used, with its path: "a.png: a named pipe, not an
// image file".
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Info is what a file's header says, before its pixels are decoded.
type Info struct {
	Format        string
	Width, Height int
	Bytes         int64 // the file's encoded size
	Model         color.Model
}

// DecodedBytes is the memory the decoded pixels take (the decoder's own image type, before any
// conversion), for callers that account memory before decoding.
func (i Info) DecodedBytes() int64 {
	return int64(i.Width) * int64(i.Height) * bytesPerPixel(i.Model)
}

func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel, color.NYCbCrAModel:
		return 4 // 4:4:4 chroma with alpha at worst
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel:
		return 4
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8 // 16-bit RGBA, the widest of the standard decoders
}

// Load reads the image file at path, decodes it and returns it with the hex sha256 of its
// bytes.
func Load(ctx context.Context, path string, lim Limits) (image.Image, string, error) {
	data, err := Read(ctx, path, lim)
	if err != nil {
		return nil, "", err
	}
	return decodeHashed(data, path, lim)
}

// LoadFile is Load on a file the caller opened itself (ReadFile).
func LoadFile(ctx context.Context, f *os.File, name string, lim Limits) (image.Image, string, error) {
	data, err := ReadFile(ctx, f, name, lim)
	if err != nil {
		return nil, "", err
	}
	return decodeHashed(data, name, lim)
}

func decodeHashed(data []byte, name string, lim Limits) (image.Image, string, error) {
	img, err := Decode(data, lim)
	if err != nil {
		return nil, "", &Error{Path: name, Err: err}
	}
	sum := sha256.Sum256(data)
	return img, hex.EncodeToString(sum[:]), nil
}

// Read returns the bytes of the image file at path: a regular file of at most lim's bytes,
// read in chunks until ctx ends.
func Read(ctx context.Context, path string, lim Limits) ([]byte, error) {
	f, size, err := open(path, lim)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(ctx, f, size, path, lim)
}

// ReadFile is Read on a file the caller opened itself (the SSH front opens inside a folder
// with os.Root, so that nothing outside it can be named): the same checks on what f is (open
// it with O_NONBLOCK, so that opening a FIFO does not wait), the same cap, and name in the
// errors. f is left open.
func ReadFile(ctx context.Context, f *os.File, name string, lim Limits) ([]byte, error) {
	fi, err := f.Stat()
	if err == nil {
		err = regular(fi, lim)
	}
	if err != nil {
		return nil, &Error{Path: name, Err: err}
	}
	return readAll(ctx, f, fi.Size(), name, lim)
}

// readAll reads f as os.ReadFile does, into one buffer of its size, with a look at ctx between
// chunks; the file may grow after its size was taken (a file being written), so the cap is
// checked on what is read.
func readAll(ctx context.Context, f *os.File, size int64, name string, lim Limits) ([]byte, error) {
	max := lim.maxBytes()
	data := make([]byte, 0, size+512)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := f.Read(data[len(data):min(cap(data), len(data)+readChunk)])
		data = data[:len(data)+n]
		if int64(len(data)) > max {
			return nil, &Error{Path: name, Err: tooLarge(int64(len(data)), max, true)}
		}
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, &Error{Path: name, Err: err}
		}
	}
}

// readChunk is how much Read reads between looks at its context.
const readChunk = 4 << 20

// Check reads only the header of the image file at path: a file that passes decodes unless its
// body is corrupt. The CLI checks its inputs so before a model loads; the server sizes a
// request's memory with it.
func Check(ctx context.Context, path string, lim Limits) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	f, size, err := open(path, lim)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(io.LimitReader(f, lim.maxBytes()))
	if err != nil {
		return Info{}, &Error{Path: path, Err: formatError(err)}
	}
	info := Info{Format: format, Width: cfg.Width, Height: cfg.Height, Bytes: size, Model: cfg.ColorModel}
	if err := checkPixels(format, cfg, lim); err != nil {
		return info, &Error{Path: path, Err: err}
	}
	return info, nil
}

// Decode decodes image bytes, checking the size the header claims before decoding pixels.
func Decode(data []byte, lim Limits) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, formatError(err)
	}
	if err := checkPixels(format, cfg, lim); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated %s", ErrBadImage, format)
		}
		return nil, fmt.Errorf("%w: corrupt %s: %v", ErrBadImage, format, err)
	}
	return img, nil
}

func formatError(err error) error {
	if errors.Is(err, image.ErrFormat) {
		return ErrBadImage
	}
	return fmt.Errorf("%w: %v", ErrBadImage, err)
}

func checkPixels(format string, cfg image.Config, lim Limits) error {
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > lim.maxPixels() {
		return fmt.Errorf("%w: %s of %dx%d pixels is empty or too large (at most %d megapixels)", ErrBadImage, format, cfg.Width, cfg.Height, lim.maxPixels()>>20)
	}
	return nil
}

// open opens path for reading if it names a regular file within the size cap. The type is
// checked before the open (opening a FIFO for reading waits for a writer; opening a device
// can have effects) and again on the open file, which O_NONBLOCK keeps from waiting, so a
// path swapped between the two checks is refused too.
func open(path string, lim Limits) (*os.File, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, pathError(path, err)
	}
	if err := regular(fi, lim); err != nil {
		return nil, 0, &Error{Path: path, Err: err}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, pathError(path, err)
	}
	fi, err = f.Stat()
	if err == nil {
		err = regular(fi, lim)
	}
	if err != nil {
		f.Close()
		return nil, 0, &Error{Path: path, Err: err}
	}
	return f, fi.Size(), nil
}

func regular(fi fs.FileInfo, lim Limits) error {
	m := fi.Mode()
	if !m.IsRegular() {
		return refusal{msg: kind(m) + ", not an image file (diffsim reads regular files only)", kind: ErrNotRegular}
	}
	if max := lim.maxBytes(); fi.Size() > max {
		return tooLarge(fi.Size(), max, false)
	}
	return nil
}

func tooLarge(n, max int64, grew bool) error {
	what := human(n)
	if grew {
		what = "more than " + human(max) + " (it grew while read)"
	}
	return refusal{msg: fmt.Sprintf("%s, over the %s limit on image files (raise it with --max-image)", what, human(max)), kind: ErrTooLarge}
}

// kind names a file type for people.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}

// pathError keeps an fs error's meaning (errors.Is finds fs.ErrNotExist) and names the path once.
func pathError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{Path: path, Err: err}
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
