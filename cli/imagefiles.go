package cli

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/diffsim/diffsim/features/imagefile"
)

// byteSize is a size flag such as --max-image: 256MiB, 20GB or a number of bytes,
// checked when it is parsed.
type byteSize struct{ n int64 }

// String writes the size as Set reads it: whole binary units where they fit.
func (b *byteSize) String() string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b.n >= u.n && b.n%u.n == 0 {
			return fmt.Sprintf("%d%s", b.n/u.n, u.suffix)
		}
	}
	return fmt.Sprintf("%d", b.n)
}

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	b.n = n
	return nil
}

func (b *byteSize) Type() string { return "size" }

// imageLimit is --max-image: the cap on an image file's encoded bytes, the same in every
// command, the explorer and the server.
type imageLimit struct{ max byteSize }

func (l *imageLimit) register(f *pflag.FlagSet) {
	l.max.n = imagefile.DefaultMaxBytes
	f.Var(&l.max, "max-image", "refuse image files larger than this, e.g. 1GiB (the default is far above any photograph)")
}

func (l imageLimit) limits() imagefile.Limits { return imagefile.Limits{MaxBytes: l.max.n} }

// checkImages reports, before any model loads, the first path that is not an image diffsim
// can read: missing, not a regular file (a FIFO or a device is refused without waiting on
// it), over the size limit, unreadable, or not a PNG, JPEG, WebP, BMP, TIFF or GIF. Only the
// header is read; a corrupt body still fails later, when the image is decoded.
func checkImages(ctx context.Context, lim imagefile.Limits, paths ...string) error {
	for _, p := range paths {
		if _, err := imagefile.Check(ctx, p, lim); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return usageError{err}
		}
	}
	return nil
}
