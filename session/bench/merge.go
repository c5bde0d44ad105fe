package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Merge reads results files and combines them: records sorted by index, each decision once.
// Files must share settings; the same decision in two files must be the same line. A file
// named as a shard (shard-I-of-N.jsonl) must hold only that shard's decisions, and no shard
// may be given twice.
func Merge(paths []string) ([]Record, Settings, error) {
	files := make([]ShardFile, len(paths))
	for i, p := range paths {
		sh, ok := ParseFileName(p)
		if !ok {
			sh = Shard{}
		}
		files[i] = ShardFile{sh, p}
	}
	return merge(files)
}

// MergeDir merges the shard files of a results folder (bench --out DIR/). It refuses a
// folder with a shard missing or present twice, shards of different splits or settings, and,
// unless partial, a shard that has not made all its decisions.
func MergeDir(dir string, partial bool) ([]Record, Settings, error) {
	files, missing, err := ListDir(dir)
	if err != nil {
		return nil, Settings{}, err
	}
	n := files[0].Shard.N
	if len(missing) > 0 && !partial {
		return nil, Settings{}, fmt.Errorf("%w: %s lacks shard%s %s of %d (no %s); run those tasks, then merge", ErrIncomplete, dir, plural(len(missing)), joinInts(missing), n, FileName(Shard{missing[0], n}))
	}
	recs, s, err := merge(files)
	if err != nil {
		return nil, s, err
	}
	if partial {
		return recs, s, nil
	}
	count := make([]int, n)
	for _, r := range recs {
		count[r.Index%n]++
	}
	var short []string
	for i, c := range count {
		if want := (Shard{i, n}).Size(s.Total); c < want {
			short = append(short, fmt.Sprintf("%d/%d has %d of %d", i, n, c, want))
		}
	}
	if len(short) > 0 {
		return nil, s, fmt.Errorf("%w: unfinished shard%s in %s: %s; rerun those tasks (they resume), or give --partial", ErrIncomplete, plural(len(short)), dir, strings.Join(short, ", "))
	}
	return recs, s, nil
}

// ErrIncomplete marks a merge refused because shards have not made all their decisions.
var ErrIncomplete = errors.New("results are incomplete")

func merge(files []ShardFile) ([]Record, Settings, error) {
	byIndex := map[int]Record{}
	var s Settings
	var from string
	seen := map[Shard]string{}
	for _, file := range files {
		p, sh := file.Path, file.Shard
		if sh.N > 0 {
			if prev, dup := seen[sh]; dup {
				return nil, s, fmt.Errorf("%w: shard %s is given twice (%s and %s)", ErrMismatch, sh, prev, p)
			}
			seen[sh] = p
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, s, err
		}
		recs, _, _, err := ReadResults(f, p)
		f.Close()
		if err != nil {
			return nil, s, err
		}
		for _, r := range recs {
			if from == "" {
				s, from = r.Settings, p
			} else if r.Settings != s {
				return nil, s, fmt.Errorf("%w: %s was made with %v but %s with %v", ErrMismatch, p, r.Settings, from, s)
			}
			if sh.N > 0 && !sh.Has(r.Index) {
				return nil, s, fmt.Errorf("%w: %s holds decision %d, which is not in shard %s; the file was renamed or copied", ErrMismatch, p, r.Index, sh)
			}
			if old, ok := byIndex[r.Index]; ok && !bytes.Equal(old.Line, r.Line) {
				return nil, s, fmt.Errorf("%w: decision %d differs between files (%s in %s)", ErrMismatch, r.Index, r.ID, p)
			}
			byIndex[r.Index] = r
		}
	}
	if from == "" {
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = f.Path
		}
		return nil, s, fmt.Errorf("%w: no decisions in %s", ErrIncomplete, strings.Join(names, ", "))
	}
	out := make([]Record, 0, len(byIndex))
	for _, r := range byIndex {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return a.Index - b.Index })
	return out, s, nil
}

// ShardStatus is how far one shard of a results folder has got.
type ShardStatus struct {
	Shard    string    `json:"shard"` // I/N
	Index    int       `json:"index"`
	File     string    `json:"file,omitempty"` // "" when the shard has no file yet
	Done     int       `json:"done"`           // decisions recorded, skipped ones included
	Skipped  int       `json:"skipped"`
	Size     int       `json:"size"` // decisions in the shard; 0 when no shard file says how many
	Correct  int       `json:"correct"`
	Modified time.Time `json:"modified,omitzero"` // the file's last write
	State    string    `json:"state"`             // missing, empty, running or stopped, done
}

// Status reads a results folder and says how far each shard has got. now dates the state:
// a file written in the last stale period counts as running, an older one as stopped.
func Status(dir string, now time.Time, stale time.Duration) ([]ShardStatus, Settings, error) {
	return shardStatuses(dir, now, stale, func(f *os.File, path string, st *ShardStatus) (Settings, bool, error) {
		recs, _, _, err := ReadResults(f, path)
		if err != nil || len(recs) == 0 {
			return Settings{}, false, err
		}
		s := recs[0].Settings
		for _, r := range recs {
			if r.Settings != s {
				return s, true, fmt.Errorf("%w: %s holds records made with %v and with %v", ErrMismatch, path, r.Settings, s)
			}
			st.Done++
			switch {
			case r.Skipped != "":
				st.Skipped++
			case r.Correct:
				st.Correct++
			}
		}
		return s, true, nil
	}, func(a, b Settings) bool { return a == b }, func(sh Shard, s Settings) int { return sh.Size(s.Total) })
}

// shardStatuses is Status for any kind of results: scan reads one shard's file, counting
// into st, and returns the settings it was made with (ok false: none yet); every file must
// have the same settings (same), and size is a shard's work under them.
func shardStatuses[S any](dir string, now time.Time, stale time.Duration,
	scan func(f *os.File, path string, st *ShardStatus) (S, bool, error),
	same func(a, b S) bool, size func(Shard, S) int) ([]ShardStatus, S, error) {
	var s S
	files, missing, err := ListDir(dir)
	if err != nil {
		return nil, s, err
	}
	n := files[0].Shard.N
	out := make([]ShardStatus, n)
	for _, i := range missing {
		out[i] = ShardStatus{Shard: Shard{i, n}.String(), Index: i, State: "missing"}
	}
	var from string
	for _, file := range files {
		st := ShardStatus{Shard: file.Shard.String(), Index: file.Shard.I, File: filepath.Base(file.Path), State: "empty"}
		f, err := os.Open(file.Path)
		if err != nil {
			return nil, s, err
		}
		if fi, err := f.Stat(); err == nil {
			st.Modified = fi.ModTime().UTC()
		}
		have, ok, err := scan(f, file.Path, &st)
		f.Close()
		if err != nil {
			return nil, s, err
		}
		if ok {
			if from == "" {
				s, from = have, file.Path
			} else if !same(have, s) {
				return nil, s, fmt.Errorf("%w: %s was made with %v but %s with %v", ErrMismatch, file.Path, have, from, s)
			}
		}
		out[file.Shard.I] = st
	}
	for i := range out {
		st := &out[i]
		if from != "" {
			st.Size = size(Shard{i, n}, s)
		}
		st.State = shardState(*st, now, stale)
	}
	return out, s, nil
}

// shardState dates a shard: done, running (written within stale), stopped, empty or missing.
func shardState(st ShardStatus, now time.Time, stale time.Duration) string {
	switch {
	case st.State == "missing":
		return "missing"
	case st.Size > 0 && st.Done >= st.Size:
		return "done"
	case st.Done == 0 && now.Sub(st.Modified) >= stale:
		return "empty"
	case now.Sub(st.Modified) < stale:
		return "running"
	}
	return "stopped"
}

// WriteStatus prints Status's answer for people: a row per shard, then the total.
func WriteStatus(w io.Writer, s Settings, sts []ShardStatus, now time.Time) error {
	return writeStatus(w, sts, now, s.Total, "decisions", s.String())
}

// WriteGridStatus prints GridStatus's answer for people, in decisions × timesteps.
func WriteGridStatus(w io.Writer, g GridSettings, sts []ShardStatus, now time.Time) error {
	return writeStatus(w, sts, now, g.Total*len(g.T), "decisions × timesteps", g.String())
}

func writeStatus(w io.Writer, sts []ShardStatus, now time.Time, total int, unit, settings string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "shard\tdone\tof\tskipped\tlast write\tstate")
	done, size := 0, 0
	for _, st := range sts {
		last, of := "-", "?"
		if !st.Modified.IsZero() {
			last = now.Sub(st.Modified).Round(time.Second).String() + " ago"
		}
		if st.Size > 0 {
			of = fmt.Sprint(st.Size)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", st.Shard, st.Done, of, st.Skipped, last, st.State)
		done += st.Done
		size += st.Size
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if total == 0 {
		_, err := fmt.Fprintf(w, "%d %s recorded; no shard has written one yet, so the total is unknown\n", done, unit)
		return err
	}
	_, err := fmt.Fprintf(w, "%d of %d %s (%.1f%%); %s\n", done, total, unit, 100*float64(done)/float64(total), settings)
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
