package video

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/diffsim/diffsim/features/imagefile"
)

// DirSource reads the image files of one folder (not its sub-folders) in natural name order:
// frame2.png before frame10.png. Hidden files are left out.
type DirSource struct {
	dir   string
	files []string // kept frames, in order
	nums  []int    // their positions among all the folder's frames
	next  int
}

// OpenDir lists a folder's frames and keeps those Options select.
func OpenDir(dir string, o Options) (*DirSource, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !imagefile.IsImageName(name) {
			continue
		}
		if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, badInput(fmt.Errorf("%s holds no frames (PNG, JPEG, WebP, BMP, TIFF or GIF files)", dir))
	}
	slices.SortFunc(names, NaturalCompare)
	s := &DirSource{dir: dir}
	for i := 0; i < len(names); i += o.every() {
		if o.MaxFrames > 0 && len(s.files) == o.MaxFrames {
			break
		}
		s.files = append(s.files, names[i])
		s.nums = append(s.nums, i)
	}
	return s, nil
}

// Next reads the next kept frame.
func (s *DirSource) Next(ctx context.Context) (Frame, error) {
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	if s.next >= len(s.files) {
		return Frame{}, io.EOF
	}
	i := s.next
	s.next++
	data, err := imagefile.Read(ctx, filepath.Join(s.dir, s.files[i]), imagefile.Limits{})
	if err != nil {
		return Frame{}, err
	}
	return Frame{Frame: s.nums[i], Name: s.files[i], Data: data}, nil
}

// Len is the number of kept frames.
func (s *DirSource) Len() int { return len(s.files) }

// Close does nothing: files are read and closed one at a time.
func (s *DirSource) Close() error { return nil }

// NaturalCompare orders names as people number frames: runs of digits compare by value
// (frame2 < frame10, 007 = 7), the rest byte by byte; names equal that way fall back to a
// plain comparison so the order is total (frame07 and frame7 keep a fixed order).
func NaturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na := strings.TrimLeft(a[si:i], "0")
			nb := strings.TrimLeft(b[sj:j], "0")
			if c := len(na) - len(nb); c != 0 {
				return sign(c)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if ca != cb {
			return sign(int(ca) - int(cb))
		}
		i++
		j++
	}
	if c := (len(a) - i) - (len(b) - j); c != 0 {
		return sign(c)
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}
