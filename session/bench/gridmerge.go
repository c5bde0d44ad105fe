package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// MergeGrid combines grid results files into the file one run would have written: the
// settings line, then every record once, by timestep and decision index. It streams: each
// file is read once, in order, and only one record per file is held. Files must share
// settings; a record in two files must be the same line; a file named as a shard
// (shard-I-of-N.jsonl) must hold only that shard's decisions, and no shard may be given twice.
// out receives the merged file (nil: nothing is written); each, when set, every record with
// the settings.
func MergeGrid(paths []string, out io.Writer, each func(GridSettings, GridRecord)) (GridSettings, int, error) {
	files := make([]ShardFile, len(paths))
	for i, p := range paths {
		sh, ok := ParseFileName(p)
		if !ok {
			sh = Shard{}
		}
		files[i] = ShardFile{sh, p}
	}
	return mergeGrid(files, out, each)
}

// MergeGridDir merges the shard files of a grid results folder, refusing, as MergeDir does, a
// missing or unfinished shard unless partial. The merged file is written to out only once
// every check has passed (the folder is read twice).
func MergeGridDir(dir string, partial bool, out io.Writer, each func(GridSettings, GridRecord)) (GridSettings, int, error) {
	files, missing, err := ListDir(dir)
	if err != nil {
		return GridSettings{}, 0, err
	}
	n := files[0].Shard.N
	if len(missing) > 0 && !partial {
		return GridSettings{}, 0, fmt.Errorf("%w: %s lacks shard%s %s of %d (no %s); run those tasks, then merge", ErrIncomplete, dir, plural(len(missing)), joinInts(missing), n, FileName(Shard{missing[0], n}))
	}
	if partial {
		return mergeGrid(files, out, each)
	}
	count := make([]int, n)
	g, _, err := mergeGrid(files, nil, func(_ GridSettings, r GridRecord) { count[r.Index%n]++ })
	if err != nil {
		return g, 0, err
	}
	var short []string
	for i, c := range count {
		if want := (Shard{i, n}).Size(g.Total) * len(g.T); c < want {
			short = append(short, fmt.Sprintf("%d/%d has %d of %d", i, n, c, want))
		}
	}
	if len(short) > 0 {
		return g, 0, fmt.Errorf("%w: unfinished shard%s in %s (decisions × timesteps): %s; rerun those tasks (they resume), or give --partial", ErrIncomplete, plural(len(short)), dir, strings.Join(short, ", "))
	}
	return mergeGrid(files, out, each)
}

// mergeSource is one file being merged: its reader and the record it is at.
type mergeSource struct {
	file ShardFile
	f    *os.File
	r    *gridReader
	cur  GridLine
	key  gridKey
	ok   bool
}

func (s *mergeSource) advance() error {
	prev, had := s.key, s.ok
	l, ok, err := s.r.next()
	if err != nil || !ok {
		s.ok = false
		return err
	}
	k := gridKey{s.r.g.TIndex(l.T), l.Index}
	if had && !prev.less(k) {
		return fmt.Errorf("%w: %s: decision %d at t=%d is out of order; the file was edited or concatenated", ErrMismatch, s.file.Path, l.Index, l.T)
	}
	if sh := s.file.Shard; sh.N > 0 && !sh.Has(l.Index) {
		return fmt.Errorf("%w: %s holds decision %d, which is not in shard %s; the file was renamed or copied", ErrMismatch, s.file.Path, l.Index, sh)
	}
	s.cur, s.key, s.ok = l, k, true
	return nil
}

func mergeGrid(files []ShardFile, out io.Writer, each func(GridSettings, GridRecord)) (GridSettings, int, error) {
	var g GridSettings
	var from string
	seen := map[Shard]string{}
	var srcs []*mergeSource
	defer func() {
		for _, s := range srcs {
			s.f.Close()
		}
	}()
	for _, file := range files {
		if sh := file.Shard; sh.N > 0 {
			if prev, dup := seen[sh]; dup {
				return g, 0, fmt.Errorf("%w: shard %s is given twice (%s and %s)", ErrMismatch, sh, prev, file.Path)
			}
			seen[sh] = file.Path
		}
		f, err := os.Open(file.Path)
		if err != nil {
			return g, 0, err
		}
		s := &mergeSource{file: file, f: f, r: newGridReader(f, file.Path)}
		srcs = append(srcs, s)
		if err := s.advance(); err != nil {
			return g, 0, err
		}
		if s.r.g.Format == 0 {
			continue // no settings line yet: a shard that has not started
		}
		if from == "" {
			g, from = s.r.g, file.Path
		} else if !s.r.g.Equal(g) {
			return g, 0, fmt.Errorf("%w: %s was made with %v but %s with %v", ErrMismatch, file.Path, s.r.g, from, g)
		}
	}
	if from == "" {
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = f.Path
		}
		return g, 0, fmt.Errorf("%w: no grid results in %s", ErrIncomplete, strings.Join(names, ", "))
	}
	var bw *bufio.Writer
	if out != nil {
		bw = bufio.NewWriterSize(out, 1<<16)
		line, err := json.Marshal(g)
		if err != nil {
			return g, 0, err
		}
		bw.Write(append(line, '\n'))
	}
	n := 0
	for {
		var low *mergeSource
		for _, s := range srcs {
			if s.ok && (low == nil || s.key.less(low.key)) {
				low = s
			}
		}
		if low == nil {
			break
		}
		rec, line, key := low.cur.GridRecord, low.cur.Line, low.key
		for _, s := range srcs {
			if !s.ok || s.key != key {
				continue
			}
			if !bytes.Equal(s.cur.Line, line) {
				return g, 0, fmt.Errorf("%w: decision %d at t=%d differs between %s and %s", ErrMismatch, rec.Index, rec.T, low.file.Path, s.file.Path)
			}
			if err := s.advance(); err != nil {
				return g, 0, err
			}
		}
		if bw != nil {
			bw.Write(line)
			bw.WriteByte('\n')
		}
		if each != nil {
			each(g, rec)
		}
		n++
	}
	if bw != nil {
		if err := bw.Flush(); err != nil {
			return g, n, err
		}
	}
	return g, n, nil
}

// GridStatus reads a grid results folder and says how far each shard has got, in decisions ×
// timesteps, as Status does for single-cell results.
func GridStatus(dir string, now time.Time, stale time.Duration) ([]ShardStatus, GridSettings, error) {
	return shardStatuses(dir, now, stale, func(f *os.File, path string, st *ShardStatus) (GridSettings, bool, error) {
		have, _, _, err := ScanGrid(f, path, func(_ GridSettings, l GridLine) error {
			st.Done++
			if l.Skipped != "" {
				st.Skipped++
			}
			return nil
		})
		return have, have.Format != 0, err
	}, GridSettings.Equal, func(sh Shard, g GridSettings) int { return sh.Size(g.Total) * len(g.T) })
}
