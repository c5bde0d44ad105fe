// Package video measures how consistently a clip keeps its appearance: every frame is scored
// against the first frame and against the previous one inside one attention layer, and the
// clip gets the mean and the extremes of both curves (DiffSim, ICCV 2025, Table 4).
//
// Frames come from a folder of images (in natural name order) or from a video file decoded
// by ffmpeg. Scoring goes through a warm session so that each frame's features are computed
// once, two frames to a network run.
package video

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
)

// Frame is one encoded frame of a clip.
type Frame struct {
	Frame int    // frame number in the input: position in the folder, or decoded frame number
	Name  string // file name in the folder, or "frame N" for a video
	Data  []byte // the encoded image (PNG for decoded video)
}

// Source yields a clip's frames in order; Next returns io.EOF after the last one, and again
// if asked again.
type Source interface {
	Next(ctx context.Context) (Frame, error)
	// Len is how many frames Next will yield, an estimate for video files, -1 when unknown.
	Len() int
	Close() error
}

// Options select frames from the input.
type Options struct {
	Every     int    // keep frames 0, Every, 2·Every, …; 0 or 1 keeps all
	MaxFrames int    // stop after this many kept frames; 0 = no limit
	FFmpeg    string // the ffmpeg program; empty = "ffmpeg" on PATH
}

// Open opens a folder of frames or a video file.
func Open(ctx context.Context, input string, o Options) (Source, error) {
	if o.Every < 0 || o.MaxFrames < 0 {
		return nil, badInput(fmt.Errorf("--every %d, --max-frames %d: want 0 or more", o.Every, o.MaxFrames))
	}
	st, err := os.Stat(input)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, badInput(fmt.Errorf("%s does not exist; give a folder of frames or a video file", input))
	}
	if err != nil {
		return nil, err
	}
	// Return nil, not a typed nil, when opening fails.
	if st.IsDir() {
		s, err := OpenDir(input, o)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	if ext := strings.ToLower(filepath.Ext(input)); ext != ".gif" && imagefile.IsImageName(input) {
		return nil, badInput(fmt.Errorf("%s is a single image; give a folder of frames or a video file", input))
	}
	s, err := OpenFFmpeg(ctx, input, o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Image decodes a frame into a session image, identified as session.LoadImage identifies files:
// by the sha256 of the encoded bytes, so identical frames share their features.
func Image(f Frame) (*api.Image, error) {
	img, err := imagefile.Decode(f.Data, imagefile.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	sum := sha256.Sum256(f.Data)
	b := img.Bounds()
	return &api.Image{Path: f.Name, Hash: hex.EncodeToString(sum[:]), W: b.Dx(), H: b.Dy(), Pixels: img}, nil
}

// inputError marks errors in what the user gave (exit code 2): errors.Is finds
// api.ErrUsage, and the message stays the wrapped error's.
type inputError struct{ err error }

func (e inputError) Error() string   { return e.err.Error() }
func (e inputError) Unwrap() []error { return []error{e.err, api.ErrUsage} }

func badInput(err error) error { return inputError{err} }

// every normalises Options.Every.
func (o Options) every() int { return max(o.Every, 1) }
