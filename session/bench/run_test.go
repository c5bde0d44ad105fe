package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
)

// fakeScorer scores a pair by a hash of the two images' bytes: deterministic, different for
// every pair, and fast, so the run's bookkeeping is tested apart from any model.
type fakeScorer struct {
	mu     sync.Mutex
	scored int
	// inFlight, when set, is closed by the first Score, which then holds until its context
	// ends: a decision in flight.
	inFlight chan struct{}
}

func (f *fakeScorer) Load(path string) (*api.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(data)
	return &api.Image{Path: path, Hash: fmt.Sprintf("%x", h)}, nil
}

func (f *fakeScorer) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	return ctx.Err()
}

func (f *fakeScorer) Score(ctx context.Context, req api.Request) (api.Result, error) {
	if f.inFlight != nil {
		close(f.inFlight)
		f.inFlight = nil
		<-ctx.Done()
		return api.Result{}, ctx.Err()
	}
	f.mu.Lock()
	f.scored++
	f.mu.Unlock()
	h := sha256.Sum256([]byte(req.A.Hash + "|" + req.B.Hash))
	return api.Result{Score: float64(binary.BigEndian.Uint16(h[:])) / 65535}, nil
}

// tripletFiles writes classes × per distinct small files as a triplet layout.
func tripletFiles(t *testing.T, classes, per int) *Dataset {
	t.Helper()
	root := t.TempDir()
	for c := range classes {
		for i := range per {
			p := filepath.Join(root, fmt.Sprintf("class%d", c), fmt.Sprintf("%d.png", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(fmt.Sprintf("image %d of class %d", i, c)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ds, err := Load("triplet", root, Options{SampleSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func newRun(ds *Dataset, sh Shard, out string) *Run {
	return &Run{
		Scorer: &fakeScorer{}, Dataset: ds, Shard: sh, Out: out, Metric: api.AAS,
		Settings: Settings{Layout: ds.Layout, Model: "fake", Layer: "l", Metric: "aas", Size: 64, Total: len(ds.Tasks)},
	}
}

func TestRunResumesAfterInterruptsToTheSameBytes(t *testing.T) {
	ds := tripletFiles(t, 3, 3) // 3 classes × 3 × 2 = 18 decisions
	tmp := t.TempDir()
	single := filepath.Join(tmp, "single.jsonl")
	if _, err := newRun(ds, All, single).Do(t.Context()); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(single)
	if n := bytes.Count(want, []byte("\n")); n != 18 {
		t.Fatalf("single run wrote %d lines, want 18", n)
	}

	out := filepath.Join(tmp, "resumed.jsonl")
	for _, tc := range []struct {
		stopAt    int  // cancel once this many decisions are done (resumed ones included)
		tornAfter bool // then append half a line, as a write cut by SIGKILL
	}{{5, true}, {11, false}, {12, false}} {
		ctx, cancel := context.WithCancel(t.Context())
		r := newRun(ds, All, out)
		r.Progress = func(done, total int) {
			if done == tc.stopAt {
				cancel() // as SIGTERM arriving while decision stopAt+1 would start
			}
		}
		res, err := r.Do(ctx)
		cancel()
		if !errors.Is(err, context.Canceled) || !res.Interrupted {
			t.Fatalf("stop at %d: err %v, interrupted %v; want context.Canceled and interrupted", tc.stopAt, err, res.Interrupted)
		}
		if got := res.Resumed + res.Made; got != tc.stopAt {
			t.Errorf("stop at %d: %d resumed + %d made", tc.stopAt, res.Resumed, res.Made)
		}
		data, _ := os.ReadFile(out)
		if n := bytes.Count(data, []byte("\n")); n != tc.stopAt {
			t.Fatalf("after a stop at %d the file holds %d lines", tc.stopAt, n)
		}
		if !bytes.HasPrefix(want, data) {
			t.Fatalf("after a stop at %d the file is not a prefix of the single run's", tc.stopAt)
		}
		if tc.tornAfter {
			f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(`{"index":5,"id":"cut off mid-wr`)
			f.Close()
		}
	}
	res, err := newRun(ds, All, out).Do(t.Context())
	if err != nil || res.Resumed != 12 || res.Made != 6 || !res.Summary.Complete {
		t.Fatalf("resumed run: %+v, %v; want 12 resumed, 6 made, complete", res, err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Errorf("interrupted and resumed results differ from one uninterrupted run:\n got %s\nwant %s", got, want)
	}
	// finished: a rerun scores nothing and changes nothing
	r := newRun(ds, All, out)
	if res, err := r.Do(t.Context()); err != nil || res.Made != 0 || r.Scorer.(*fakeScorer).scored != 0 {
		t.Errorf("rerun of a finished run: %+v, %v, %d scores", res, err, r.Scorer.(*fakeScorer).scored)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, want) {
		t.Error("a rerun of a finished benchmark changed its results file")
	}
}

func TestRunSecondStopAbandonsTheDecisionInFlight(t *testing.T) {
	ds := tripletFiles(t, 2, 3)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	r := newRun(ds, All, out)
	inFlight := make(chan struct{})
	r.Scorer = &fakeScorer{inFlight: inFlight}
	abandon := make(chan struct{})
	r.Abandon = abandon
	var log bytes.Buffer
	r.Log = &log
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := r.Do(ctx)
		errc <- err
	}()
	<-inFlight
	cancel() // the first stop: the decision in flight (blocked) is waited for
	select {
	case err := <-errc:
		t.Fatalf("the run ended on the first stop, with a decision in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(abandon)
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("abandoned run: err %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing Abandon did not end the run")
	}
	if !strings.Contains(log.String(), "interrupt again") {
		t.Errorf("the first stop does not say how to abandon: %q", log.String())
	}
	if data, _ := os.ReadFile(out); len(data) != 0 {
		t.Errorf("an abandoned decision was saved: %q", data)
	}
}

func TestRunRefusesAnotherShardsFile(t *testing.T) {
	ds := tripletFiles(t, 2, 3)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	if _, err := newRun(ds, Shard{0, 2}, out).Do(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := newRun(ds, Shard{1, 2}, out).Do(t.Context())
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "another shard") {
		t.Errorf("shard 1/2 resuming shard 0/2's file: %v", err)
	}
}

func TestRunShardsAndProgress(t *testing.T) {
	ds := tripletFiles(t, 3, 3) // 18 decisions
	for _, sh := range []Shard{{0, 4}, {1, 4}, {3, 4}, {2, 5}, All} {
		var calls [][2]int
		r := newRun(ds, sh, "")
		r.Progress = func(done, total int) { calls = append(calls, [2]int{done, total}) }
		res, err := r.Do(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for i := range ds.Tasks {
			if i%sh.N == sh.I {
				want++
			}
		}
		if res.InShard != want || res.Made != want || sh.Size(len(ds.Tasks)) != want {
			t.Errorf("shard %s: %d in shard, %d made, Size %d; want %d", sh, res.InShard, res.Made, sh.Size(len(ds.Tasks)), want)
		}
		if len(calls) != want+1 || calls[0] != [2]int{0, want} || calls[want] != [2]int{want, want} {
			t.Errorf("shard %s: progress calls %v", sh, calls)
		}
	}
}

func TestProgressLines(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	p := &ProgressLines{W: &buf, Label: "nights shard 1/4", Every: 10, Now: func() time.Time { return clock }}
	p.Update(20, 60) // resumed: 20 already done
	for done := 21; done <= 60; done++ {
		clock = clock.Add(500 * time.Millisecond) // 2 decisions a second
		p.Update(done, 60)
	}
	want := []string{
		"diffsim: nights shard 1/4: 30/60 decisions (50%), 2.00/s, ETA 15s",
		"diffsim: nights shard 1/4: 40/60 decisions (67%), 2.00/s, ETA 10s",
		"diffsim: nights shard 1/4: 50/60 decisions (83%), 2.00/s, ETA 5s",
		"diffsim: nights shard 1/4: 60/60 decisions (100%), 2.00/s, took 20s",
	}
	if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress lines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// automatic interval: about every 5%
	buf.Reset()
	p = &ProgressLines{W: &buf, Label: "x", Now: func() time.Time { return clock }}
	for done := 0; done <= 200; done++ {
		clock = clock.Add(time.Second)
		p.Update(done, 200)
	}
	if n := strings.Count(buf.String(), "\n"); n != 20 {
		t.Errorf("200 decisions, automatic interval: %d lines, want 20:\n%s", n, buf.String())
	}
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env    map[string]string
		shards int
		want   Shard
		ok     bool
		err    string // a substring of the error; "" for none
	}{
		{env: nil, want: All},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"}, want: Shard{1, 3}, ok: true},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"}, want: Shard{2, 4}, ok: true},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"}, want: Shard{2, 4}, ok: true},
		// a rerun of task 2 alone: Slurm says an array of one task; --shards keeps the split
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "2"}, shards: 4, want: Shard{2, 4}, ok: true},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "2"}, err: "numbers shards from 0"},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}, err: "--array=0-3"},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "4"}, err: "gaps"},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, err: "--shards N"},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"}, err: "not a non-negative number"},
		{env: map[string]string{"SLURM_ARRAY_TASK_ID": "5"}, shards: 4, err: "not below --shards 4"},
		{env: map[string]string{"JOB_COMPLETION_INDEX": "2"}, shards: 4, want: Shard{2, 4}, ok: true},
		{env: map[string]string{"JOB_COMPLETION_INDEX": "2"}, err: "DIFFSIM_SHARDS"},
		{env: map[string]string{"JOB_COMPLETION_INDEX": "4"}, shards: 4, err: "completions"},
		{env: map[string]string{"JOB_COMPLETION_INDEX": "-1"}, shards: 4, err: "not a task index"},
		{env: nil, shards: 4, err: "give --shard I/N"},
		{env: nil, shards: 1, want: All},
	} {
		sh, from, ok, err := FromEnv(func(k string) string { return tc.env[k] }, tc.shards)
		name := fmt.Sprintf("%v --shards %d", tc.env, tc.shards)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want one with %q", name, err, tc.err)
			}
			continue
		}
		if err != nil || sh != tc.want || ok != tc.ok || (ok && from == "") {
			t.Errorf("%s: %v %q %v %v; want %v ok=%v", name, sh, from, ok, err, tc.want, tc.ok)
		}
	}
}

func TestShardFileNames(t *testing.T) {
	for _, tc := range []struct {
		sh   Shard
		name string
	}{{Shard{1, 3}, "shard-1-of-3.jsonl"}, {Shard{3, 16}, "shard-03-of-16.jsonl"}, {Shard{0, 1}, "shard-0-of-1.jsonl"}, {Shard{99, 100}, "shard-099-of-100.jsonl"}} {
		if got := FileName(tc.sh); got != tc.name {
			t.Errorf("FileName(%v) = %q, want %q", tc.sh, got, tc.name)
		}
		if back, ok := ParseFileName(filepath.Join("some", "dir", tc.name)); !ok || back != tc.sh {
			t.Errorf("ParseFileName(%q) = %v, %v", tc.name, back, ok)
		}
	}
	for _, bad := range []string{"shard-3-of-3.jsonl", "shard-1-of-0.jsonl", "shard-1-of-3.json", "results.jsonl", "shard-a-of-3.jsonl", "xshard-1-of-3.jsonl"} {
		if sh, ok := ParseFileName(bad); ok {
			t.Errorf("ParseFileName(%q) = %v, want no shard", bad, sh)
		}
	}
}

// shardDir runs the 4 shards of ds into a results folder and returns the folder and the single
// run's results file.
func shardDir(t *testing.T, ds *Dataset, n int) (dir, single string) {
	t.Helper()
	tmp := t.TempDir()
	single = filepath.Join(tmp, "single.jsonl")
	if _, err := newRun(ds, All, single).Do(t.Context()); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(tmp, "results")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		sh := Shard{i, n}
		if _, err := newRun(ds, sh, filepath.Join(dir, FileName(sh))).Do(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return dir, single
}

func TestMergeDir(t *testing.T) {
	ds := tripletFiles(t, 3, 3)
	dir, single := shardDir(t, ds, 4)
	recs, s, err := MergeDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	var merged bytes.Buffer
	for _, r := range recs {
		merged.Write(r.Line)
		merged.WriteByte('\n')
	}
	if want, _ := os.ReadFile(single); !bytes.Equal(merged.Bytes(), want) || s.Total != 18 {
		t.Errorf("merged folder differs from the single run (total %d)", s.Total)
	}

	copyFile := func(t *testing.T, from, to string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		is     error
		want   string
	}{
		{"missing shard", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "shard-2-of-4.jsonl")) }, ErrIncomplete, "lacks shard 2 of 4"},
		{"shard twice", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "shard-1-of-4.jsonl"), filepath.Join(dir, "shard-01-of-4.jsonl"))
		}, ErrMismatch, "twice"},
		{"two splits", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "shard-1-of-4.jsonl"), filepath.Join(dir, "shard-1-of-2.jsonl"))
		}, ErrMismatch, "4-way and a 2-way"},
		{"renamed shard", func(t *testing.T, dir string) {
			a, b := filepath.Join(dir, "shard-1-of-4.jsonl"), filepath.Join(dir, "shard-2-of-4.jsonl")
			tmp := a + ".x"
			os.Rename(a, tmp)
			os.Rename(b, a)
			os.Rename(tmp, b)
		}, ErrMismatch, "not in shard"},
		{"unfinished shard", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "shard-3-of-4.jsonl")
			data, _ := os.ReadFile(p)
			lines := bytes.SplitAfter(data, []byte("\n"))
			os.WriteFile(p, bytes.Join(lines[:2], nil), 0o644)
		}, ErrIncomplete, "3/4 has 2 of 4"},
		{"other settings", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "shard-0-of-4.jsonl")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.ReplaceAll(data, []byte(`"size":64`), []byte(`"size":128`)), 0o644)
		}, ErrMismatch, "was made with"},
		{"empty folder", func(t *testing.T, dir string) {
			for i := range 4 {
				os.Remove(filepath.Join(dir, FileName(Shard{i, 4})))
			}
		}, ErrMismatch, "no shard files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := shardDir(t, ds, 4)
			tc.change(t, dir)
			_, _, err := MergeDir(dir, false)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v; want %v with %q", err, tc.is, tc.want)
			}
		})
	}
	// --partial merges an unfinished folder
	p := filepath.Join(dir, "shard-3-of-4.jsonl")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.SplitAfter(data, []byte("\n"))[0], 0o644)
	if recs, _, err := MergeDir(dir, true); err != nil || len(recs) != 15 {
		t.Errorf("partial merge: %d records, %v; want 15", len(recs), err)
	}
	os.Remove(filepath.Join(dir, "shard-0-of-4.jsonl"))
	if recs, _, err := MergeDir(dir, true); err != nil || len(recs) != 10 {
		t.Errorf("partial merge without shard 0: %d records, %v; want 10", len(recs), err)
	}
}

func TestStatus(t *testing.T) {
	ds := tripletFiles(t, 3, 3) // 18 decisions: shards of 5, 5, 4, 4
	dir, _ := shardDir(t, ds, 4)
	p := filepath.Join(dir, "shard-1-of-4.jsonl")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.SplitAfter(data, []byte("\n"))[0], 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	os.Remove(filepath.Join(dir, "shard-2-of-4.jsonl"))
	os.WriteFile(filepath.Join(dir, "shard-3-of-4.jsonl"), nil, 0o644)

	sts, s, err := Status(dir, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 18 || len(sts) != 4 {
		t.Fatalf("total %d, %d shards", s.Total, len(sts))
	}
	for i, want := range []struct {
		done, size int
		state      string
	}{{5, 5, "done"}, {1, 5, "stopped"}, {0, 4, "missing"}, {0, 4, "running"}} {
		if st := sts[i]; st.Done != want.done || st.Size != want.size || st.State != want.state || st.Index != i {
			t.Errorf("shard %d: %+v; want done %d of %d, %s", i, st, want.done, want.size, want.state)
		}
	}
}

func TestRoundDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond:                       "850ms",
		12*time.Second + 300*time.Millisecond:        "12s",
		3*time.Minute + 20*time.Second:               "3m20s",
		2*time.Hour + 5*time.Minute + 10*time.Second: "2h5m",
	} {
		if got := roundDuration(d); got != want {
			t.Errorf("roundDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSummaryTextSaysWhatItCovers(t *testing.T) {
	s := Settings{Layout: "nights", Total: 10}
	for _, tc := range []struct {
		sum  Summary
		want string
	}{
		{Summary{Settings: s, Made: 10, Complete: true}, "nights: 10 of 10 decisions made, 0 skipped (complete)"},
		{Summary{Settings: s, Made: 7}, "nights: 7 of 10 decisions made, 0 skipped (INCOMPLETE: 3 missing)"},
		{Summary{Settings: s, Made: 2, Skipped: 1, Shard: "1/3", ShardSize: 3}, "nights shard 1/3: 2 of 3 decisions made, 1 skipped (shard complete; the benchmark has 10: merge the shards)"},
		{Summary{Settings: s, Made: 1, Shard: "1/3", ShardSize: 3}, "nights shard 1/3: 1 of 3 decisions made, 0 skipped (INCOMPLETE: 2 of the shard missing)"},
	} {
		var buf bytes.Buffer
		if err := tc.sum.WriteText(&buf); err != nil || !strings.Contains(buf.String(), "\n"+tc.want+"\n") {
			t.Errorf("%+v:\n%s\nwant the line %q", tc.sum, buf.String(), tc.want)
		}
	}
}

func TestResultsFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.jsonl")
	os.WriteFile(file, nil, 0o644)
	for out, want := range map[string]bool{
		dir: true, dir + "/": true, filepath.Join(dir, "new") + "/": true,
		file: false, filepath.Join(dir, "new"): false, "results.jsonl": false,
	} {
		if got := IsDirOut(out); got != want {
			t.Errorf("IsDirOut(%q) = %v, want %v", out, got, want)
		}
	}
	os.WriteFile(filepath.Join(dir, FileName(Shard{1, 4})), nil, 0o644)
	if err := CheckSplit(dir, Shard{2, 4}, ""); err != nil {
		t.Errorf("shard 2/4 beside shard 1/4: %v", err)
	}
	err := CheckSplit(dir, Shard{0, 1}, "Slurm array (SLURM_ARRAY_TASK_ID=2, SLURM_ARRAY_TASK_COUNT=1)")
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "--shards 4") || !strings.Contains(err.Error(), "SLURM_ARRAY_TASK_COUNT=1") {
		t.Errorf("shard 0/1 beside a 4-way split: %v", err)
	}
}
