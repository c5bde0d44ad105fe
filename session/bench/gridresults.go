package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// A grid results file is JSON lines: the GridSettings first, then one GridRecord per decision
// and timestep, ordered by timestep (in the settings' order) and then by decision index, the
// order a run makes them in. Shards of one run write the same first line, and merging them in
// that order gives the single run's file byte for byte.

// IsGridFile reports whether the results file at path was written by a grid run: its first
// line is grid settings rather than a decision.
func IsGridFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 1<<16).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return isGridHeader(line), nil
}

func isGridHeader(line []byte) bool {
	var probe struct {
		Format *int `json:"diffsim_grid"`
	}
	return json.Unmarshal(bytes.TrimSpace(line), &probe) == nil && probe.Format != nil
}

// GridLine is a record with the exact line it was read from.
type GridLine struct {
	GridRecord
	Line []byte // without the newline
}

// ScanGrid reads a grid results file: the settings, then each record in file order through
// each (which may stop the scan with an error). A last line without its newline, or one that
// does not parse, is a torn write from an interrupted run: it is left out, and good is the
// length of the file up to it. A file with no complete first line has zero settings and good 0.
// Any other bad line is an error naming it.
func ScanGrid(r io.Reader, name string, each func(GridSettings, GridLine) error) (g GridSettings, good int64, torn bool, err error) {
	gr := newGridReader(r, name)
	for {
		l, ok, err := gr.next()
		if err != nil {
			return gr.g, 0, false, err
		}
		if !ok {
			return gr.g, gr.good, gr.torn, nil
		}
		if each != nil {
			if err := each(gr.g, l); err != nil {
				return gr.g, 0, false, err
			}
		}
	}
}

// gridReader reads a grid results file one record at a time.
type gridReader struct {
	br     *bufio.Reader
	name   string
	lineNo int
	g      GridSettings // zero until the first line is read
	good   int64        // bytes up to the end of the last good line
	torn   bool
}

func newGridReader(r io.Reader, name string) *gridReader {
	return &gridReader{br: bufio.NewReaderSize(r, 1<<16), name: name}
}

// next returns the next record; ok is false at the end of the file (or of its good part: a
// torn last line sets torn).
func (gr *gridReader) next() (GridLine, bool, error) {
	for {
		gr.lineNo++
		line, err := gr.br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			gr.torn = len(bytes.TrimSpace(line)) > 0
			return GridLine{}, false, nil
		}
		if err != nil {
			return GridLine{}, false, fmt.Errorf("read %s: %w", gr.name, err)
		}
		body := bytes.TrimRight(line, "\r\n")
		last := func() bool { _, e := gr.br.Peek(1); return errors.Is(e, io.EOF) }
		if gr.lineNo == 1 {
			var g GridSettings
			if err := json.Unmarshal(body, &g); err != nil || g.Format == 0 {
				if last() && isGridHeaderPrefix(body) {
					gr.torn = true
					return GridLine{}, false, nil
				}
				return GridLine{}, false, fmt.Errorf("%w: %s does not start with grid settings; it is not a grid results file", ErrMismatch, gr.name)
			}
			if g.Format != GridFormat {
				return GridLine{}, false, fmt.Errorf("%w: %s is a grid results file of format %d; this diffsim reads format %d", ErrMismatch, gr.name, g.Format, GridFormat)
			}
			gr.g = g
			gr.good += int64(len(line))
			continue
		}
		if len(bytes.TrimSpace(body)) == 0 {
			gr.good += int64(len(line))
			continue
		}
		var rec GridRecord
		if err := json.Unmarshal(body, &rec); err != nil || rec.ID == "" {
			if last() {
				gr.torn = true
				return GridLine{}, false, nil
			}
			return GridLine{}, false, fmt.Errorf("%w: %s line %d is not a grid decision; the file is damaged", ErrMismatch, gr.name, gr.lineNo)
		}
		if err := rec.check(gr.g); err != nil {
			return GridLine{}, false, fmt.Errorf("%w: %s line %d: %v", ErrMismatch, gr.name, gr.lineNo, err)
		}
		gr.good += int64(len(line))
		return GridLine{rec, body}, true, nil
	}
}

// isGridHeaderPrefix reports whether b could be the start of grid settings cut short.
func isGridHeaderPrefix(b []byte) bool {
	const key = `{"diffsim_grid"`
	n := min(len(b), len(key))
	return bytes.Equal(b[:n], []byte(key)[:n])
}

// ReadGridFile reads a whole grid results file through each; see ScanGrid.
func ReadGridFile(path string, each func(GridSettings, GridLine) error) (GridSettings, error) {
	f, err := os.Open(path)
	if err != nil {
		return GridSettings{}, err
	}
	defer f.Close()
	g, _, _, err := ScanGrid(f, path, each)
	if err == nil && g.Format == 0 {
		err = fmt.Errorf("%w: %s holds no grid settings yet (the run has not started writing)", ErrIncomplete, path)
	}
	return g, err
}

// gridKey orders a grid file's records: timestep position, then decision index.
type gridKey struct{ t, index int }

func (k gridKey) less(o gridKey) bool { return k.t < o.t || k.t == o.t && k.index < o.index }

// GridResults is a grid results file open for appending.
type GridResults struct {
	f    *os.File
	path string
	buf  []byte
}

// OpenGridResults opens (or creates) the results file of a grid run under g and calls each
// with every record it already holds (in file order). A torn last line is cut off; a new or
// empty file gets the settings line. A file made under other settings, or whose records
// name other decisions than tasks, is refused: it belongs to another run.
func OpenGridResults(path string, g GridSettings, tasks []Task, each func(GridRecord)) (*GridResults, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*GridResults, error) { return nil, errors.Join(err, f.Close()) }
	var prev gridKey
	n := 0
	have, good, torn, err := ScanGrid(f, path, func(have GridSettings, l GridLine) error {
		if n == 0 && !have.Equal(g) {
			return fmt.Errorf("%w: %s holds results made with %v, not %v; give another --out or the same settings", ErrMismatch, path, have, g)
		}
		r := l.GridRecord
		if r.Index >= len(tasks) || tasks[r.Index].ID != r.ID {
			return fmt.Errorf("%w: %s: decision %d (%s) is not decision %d of this benchmark; the data set or the sampling changed, give another --out", ErrMismatch, path, r.Index, r.ID, r.Index)
		}
		k := gridKey{g.TIndex(r.T), r.Index}
		if n > 0 && !prev.less(k) {
			return fmt.Errorf("%w: %s: decision %d at t=%d is out of order; the file was edited or concatenated, give another --out", ErrMismatch, path, r.Index, r.T)
		}
		prev = k
		n++
		if each != nil {
			each(r)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if have.Format != 0 && n == 0 && !have.Equal(g) {
		return fail(fmt.Errorf("%w: %s was started with %v, not %v; give another --out or the same settings", ErrMismatch, path, have, g))
	}
	if torn {
		if err := f.Truncate(good); err != nil {
			return fail(fmt.Errorf("cut the torn last line of %s: %w", path, err))
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		return fail(err)
	}
	r := &GridResults{f: f, path: path}
	if have.Format == 0 {
		line, err := json.Marshal(g)
		if err != nil {
			return fail(err)
		}
		if _, err := f.Write(append(line, '\n')); err != nil {
			return fail(fmt.Errorf("write %s: %w", path, err))
		}
	}
	return r, nil
}

// Write appends one record and returns once the line is in the file.
func (r *GridResults) Write(rec GridRecord) error {
	line, err := appendGridRecord(r.buf[:0], rec)
	if err != nil {
		return err
	}
	r.buf = line
	if _, err := r.f.Write(line); err != nil {
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	return nil
}

func appendGridRecord(dst []byte, rec GridRecord) ([]byte, error) {
	line, err := json.Marshal(rec)
	if err != nil {
		return dst, err
	}
	return append(append(dst, line...), '\n'), nil
}

// Close syncs and closes the file; it is idempotent.
func (r *GridResults) Close() error {
	if r == nil || r.f == nil {
		return nil
	}
	f := r.f
	r.f = nil
	return errors.Join(f.Sync(), f.Close())
}
