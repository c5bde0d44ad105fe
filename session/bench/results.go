package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// Record is a decision with the exact line it was read from, so merging copies bytes rather
// than re-encoding them.
type Record struct {
	Decision
	Line []byte // without the newline
}

// ReadResults reads a results file. A last line without its newline or that does not parse is
// a torn write from an interrupted run: it is dropped, and good is the length of the file up to
// it. Any other bad line is an error.
func ReadResults(r io.Reader, name string) (recs []Record, good int64, torn bool, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(bytes.TrimSpace(line)) > 0 {
				torn = true // no newline: the write never finished
			}
			return recs, good, torn, nil
		}
		if err != nil {
			return nil, 0, false, fmt.Errorf("read %s: %w", name, err)
		}
		body := bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(body)) == 0 {
			good += int64(len(line))
			continue
		}
		var d Decision
		if err := json.Unmarshal(body, &d); err != nil || d.Layout == "" {
			if _, peekErr := br.Peek(1); errors.Is(peekErr, io.EOF) {
				return recs, good, true, nil
			}
			return nil, 0, false, fmt.Errorf("%w: %s line %d is not a diffsim bench decision; the file is damaged or is not a results file", ErrMismatch, name, lineNo)
		}
		recs = append(recs, Record{Decision: d, Line: slices.Clone(body)})
		good += int64(len(line))
	}
}

// Results is a results file open for appending, one decision per line, each written in one
// call so an interrupted run loses at most the line being written.
type Results struct {
	f    *os.File
	path string
}

// OpenResults opens (or creates) a results file for a run under s and returns the decisions
// it already holds, by index. A torn last line is cut off. Records made under other settings,
// or whose index does not name the same decision in tasks, are refused: the file belongs to
// another run.
func OpenResults(path string, s Settings, tasks []Task) (*Results, map[int]Decision, error) {
	done := map[int]Decision{}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	recs, good, torn, err := ReadResults(f, path)
	if err != nil {
		return nil, nil, errors.Join(err, f.Close())
	}
	for _, r := range recs {
		if r.Settings != s {
			f.Close()
			return nil, nil, fmt.Errorf("%w: %s holds results made with %v, not %v; give another --out or the same settings", ErrMismatch, path, r.Settings, s)
		}
		if r.Index < 0 || r.Index >= len(tasks) || tasks[r.Index].ID != r.ID {
			f.Close()
			return nil, nil, fmt.Errorf("%w: %s: decision %d (%s) is not decision %d of this benchmark; the data set or the sampling changed, give another --out", ErrMismatch, path, r.Index, r.ID, r.Index)
		}
		done[r.Index] = r.Decision
	}
	if torn {
		if err := f.Truncate(good); err != nil {
			return nil, nil, errors.Join(fmt.Errorf("cut the torn last line of %s: %w", path, err), f.Close())
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		return nil, nil, errors.Join(err, f.Close())
	}
	return &Results{f: f, path: path}, done, nil
}

// ErrMismatch marks a results file that belongs to another run, or is not a results file.
var ErrMismatch = errors.New("results do not match")

// Write appends one decision and returns once the line is in the file.
func (r *Results) Write(d Decision) error {
	line, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := r.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	return nil
}

// Close syncs and closes the file; it is idempotent.
func (r *Results) Close() error {
	if r == nil || r.f == nil {
		return nil
	}
	f := r.f
	r.f = nil
	return errors.Join(f.Sync(), f.Close())
}
