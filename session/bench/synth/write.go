package synth

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Defaults of Options.
const (
	DefaultStyles   = 8
	DefaultContents = 8
	DefaultSize     = 128
	DefaultSeed     = 1
)

// Options say what Write draws.
type Options struct {
	Styles, Contents int    // how many of each, the first ones of Styles and Contents
	Size             int    // pixels per side
	Seed             uint64 // the jitter of every image; another seed draws another sample
}

// Check reports the first option out of range, as a message for the command line.
func (o Options) Check() error {
	if _, err := Styles(o.Styles); err != nil {
		return err
	}
	if _, err := Contents(o.Contents); err != nil {
		return err
	}
	if o.Size < 8 || o.Size > 4096 {
		return fmt.Errorf("size %d px: want 8 to 4096", o.Size)
	}
	return nil
}

// Write draws every style × content and writes it as dir/STYLE/CONTENT.png (the grid
// layout), creating the folders. Each file is written whole or not at all (a temporary file
// renamed into place), so an interrupted run leaves no torn image, and files already there
// are replaced. It returns the paths written, in style-major order.
func Write(ctx context.Context, dir string, o Options) ([]string, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	styles, _ := Styles(o.Styles)
	contents, _ := Contents(o.Contents)
	var paths []string
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	for _, s := range styles {
		sub := filepath.Join(dir, s.Name)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return paths, err
		}
		for _, c := range contents {
			if err := ctx.Err(); err != nil {
				return paths, err
			}
			buf.Reset()
			if err := enc.Encode(&buf, Render(s, c, o.Size, o.Seed)); err != nil {
				return paths, err
			}
			p := filepath.Join(sub, c.Name+".png")
			if err := renameio.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				return paths, err
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
}
