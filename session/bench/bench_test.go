package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWilson(t *testing.T) {
	// values from statsmodels' proportion_confint(k, n, method="wilson")
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{
		{0, 10, 0, 0.2775327998628892},
		{10, 10, 0.7224672001371107, 1},
		{5, 10, 0.236593090512564, 0.7634069094874361},
		{81, 263, 0.2552885198782742, 0.36620957698280004},
	} {
		p, lo, hi := Wilson(tc.k, tc.n)
		if p != float64(tc.k)/float64(tc.n) || math.Abs(lo-tc.lo) > 1e-12 || math.Abs(hi-tc.hi) > 1e-12 {
			t.Errorf("Wilson(%d, %d) = %v [%v, %v], want [%v, %v]", tc.k, tc.n, p, lo, hi, tc.lo, tc.hi)
		}
	}
	if p, _, _ := Wilson(0, 0); !math.IsNaN(p) {
		t.Errorf("Wilson(0, 0) = %v, want NaN", p)
	}
}

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"0/1": {0, 1}, "2/3": {2, 3}, "0/8": {0, 8}} {
		if got, err := ParseShard(in); err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"3/3", "-1/2", "1/0", "1", "a/b", "1/2/3", "1/2x", ""} {
		if _, err := ParseShard(in); err == nil {
			t.Errorf("ParseShard(%q): no error", in)
		}
	}
	sh := Shard{1, 3}
	if sh.Has(0) || !sh.Has(1) || !sh.Has(4) || !All.Has(5) {
		t.Error("Shard.Has is wrong")
	}
}

func TestDecide(t *testing.T) {
	task := Task{Index: 3, ID: "x", Ref: "r", A: "a", B: "b", Human: "a"}
	for _, tc := range []struct {
		a, b    float64
		higher  bool
		choice  string
		correct bool
	}{
		{0.9, 0.8, true, "a", true},
		{0.8, 0.9, true, "b", false},
		{0.1, 0.2, false, "a", true}, // MSE: lower is more similar
		{0.5, 0.5, true, "tie", false},
	} {
		d := Decide(task, tc.a, tc.b, tc.higher, Settings{})
		if d.Choice != tc.choice || d.Correct != tc.correct || d.Index != 3 {
			t.Errorf("Decide(%v, %v, higher=%v) = %s %v", tc.a, tc.b, tc.higher, d.Choice, d.Correct)
		}
	}
	if d := Decide(task, math.NaN(), 1, true, Settings{}); d.Skipped == "" {
		t.Error("a NaN score was not skipped")
	}
	if _, err := json.Marshal(Decide(task, math.NaN(), 1, true, Settings{})); err != nil {
		t.Errorf("a skipped decision does not encode: %v", err)
	}
}

var testSettings = Settings{Layout: "triplet", Model: "builtin", Layer: "l", T: 101, Metric: "aas", Size: 64, Seed: 1, Total: 3}

func testTasks() []Task {
	return []Task{{Index: 0, ID: "t0", Human: "a"}, {Index: 1, ID: "t1", Human: "a"}, {Index: 2, ID: "t2", Human: "b"}}
}

func TestResultsResumeAndTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	tasks := testTasks()
	r, done, err := OpenResults(path, testSettings, tasks)
	if err != nil || len(done) != 0 {
		t.Fatal(err, done)
	}
	if err := r.Write(Decide(tasks[0], 0.9, 0.1, true, testSettings)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close() // idempotent
	whole, _ := os.ReadFile(path)
	// a torn write after it
	os.WriteFile(path, append(bytes.Clone(whole), `{"index":1,"id":"t1","sco`...), 0o644)
	r, done, err = OpenResults(path, testSettings, tasks)
	if err != nil || len(done) != 1 || !done[0].Correct {
		t.Fatalf("resume: %v, %v", done, err)
	}
	if err := r.Write(Decide(tasks[1], 0.2, 0.1, true, testSettings)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	recs, _, torn, err := ReadResults(mustOpen(t, path), path)
	if err != nil || torn || len(recs) != 2 || recs[1].Index != 1 {
		t.Fatalf("after resume: %d records, torn %v, %v", len(recs), torn, err)
	}

	// other settings, or another data set, are refused
	other := testSettings
	other.T = 500
	if _, _, err := OpenResults(path, other, tasks); !errors.Is(err, ErrMismatch) {
		t.Errorf("other settings: %v", err)
	}
	changed := testTasks()
	changed[1].ID = "other"
	if _, _, err := OpenResults(path, testSettings, changed); !errors.Is(err, ErrMismatch) {
		t.Errorf("another data set: %v", err)
	}
	// damage in the middle is an error, not silently dropped
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("garbage\n"), data...), 0o644)
	if _, _, err := OpenResults(path, testSettings, tasks); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("damaged file: %v", err)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	tasks := testTasks()
	var files []string
	for i := range 2 {
		p := filepath.Join(dir, string(rune('a'+i))+".jsonl")
		r, _, err := OpenResults(p, testSettings, tasks)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if (Shard{i, 2}).Has(task.Index) {
				r.Write(Decide(task, 0.3, 0.2, true, testSettings))
			}
		}
		r.Close()
		files = append(files, p)
	}
	recs, s, err := Merge([]string{files[1], files[0], files[1]}) // a file twice is harmless
	if err != nil || s != testSettings || len(recs) != 3 {
		t.Fatalf("Merge: %d records, %v, %v", len(recs), s, err)
	}
	for i, r := range recs {
		if r.Index != i {
			t.Errorf("record %d has index %d", i, r.Index)
		}
	}
	sum := Summarize(s, []Decision{recs[0].Decision, recs[1].Decision, recs[2].Decision})
	if sum.Made != 3 || sum.Correct != 2 || !sum.Complete {
		t.Errorf("summary %+v", sum)
	}
	var text bytes.Buffer
	sum.WriteText(&text)
	if !strings.HasPrefix(text.String(), "accuracy 66.67%  95% CI [") {
		t.Errorf("text summary:\n%s", text.String())
	}
	// a conflicting decision is refused
	other := filepath.Join(dir, "c.jsonl")
	r, _, _ := OpenResults(other, testSettings, tasks)
	r.Write(Decide(tasks[0], 0.1, 0.2, true, testSettings))
	r.Close()
	if _, _, err := Merge([]string{files[0], other}); !errors.Is(err, ErrMismatch) {
		t.Errorf("conflicting decision: %v", err)
	}
}

func FuzzReadResults(f *testing.F) {
	line, _ := json.Marshal(Decide(Task{ID: "x", Human: "a"}, 1, 0, true, testSettings))
	f.Add(append(line, '\n'))
	f.Add(append(append(line, '\n'), line[:10]...))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, good, _, err := ReadResults(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		if good > int64(len(data)) {
			t.Fatalf("good %d > %d bytes", good, len(data))
		}
		// the good prefix reads back to the same records, and is not torn
		again, good2, torn, err := ReadResults(bytes.NewReader(data[:good]), "fuzz")
		if err != nil || torn || good2 != good || len(again) != len(recs) {
			t.Fatalf("prefix re-read: %d vs %d records, torn %v, %v", len(again), len(recs), torn, err)
		}
	})
}

func TestTwoAFCChoices(t *testing.T) {
	dir := t.TempDir()
	csv := "\ufeffRef, Image_A ,image_b,Winner\n" +
		"r.png,x.png,y.png,left\n" +
		"r.png,x.png,y.png,B\n" +
		"r.png,x.png,y.png,0\n" +
		"r.png,x.png,y.png,0.8\n" +
		"r.png,x.png,y.png,y.png\n" +
		"r.png,x.png,y.png,0.5\n" +
		"r.png,x.png,y.png,\n"
	p := filepath.Join(dir, "d.csv")
	os.WriteFile(p, []byte(csv), 0o644)
	d, err := TwoAFC(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, task := range d.Tasks {
		got = append(got, task.Human)
	}
	if strings.Join(got, "") != "abab"+"b" || d.Dropped != 2 {
		t.Errorf("choices %v, dropped %d", got, d.Dropped)
	}
	os.WriteFile(p, []byte("ref,a,b\nr,x,y\n"), 0o644)
	if _, err := TwoAFC(p); !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "human choice") {
		t.Errorf("no choice column: %v", err)
	}
}

func TestTripletSampling(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a/1.png", "a/2.png", "a/3.png", "b/1.png", "b/2.png", "c/1.png"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644)
	}
	d1, err := Load("triplet", dir, Options{SampleSeed: 7})
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := Load("triplet", dir, Options{SampleSeed: 7})
	d3, _ := Load("triplet", dir, Options{SampleSeed: 8})
	if len(d1.Tasks) != 3*2+2*1 {
		t.Fatalf("%d tasks, want 8", len(d1.Tasks))
	}
	same, diff := true, false
	for i := range d1.Tasks {
		a := d1.Tasks[i]
		same = same && a == d2.Tasks[i]
		diff = diff || a.ID != d3.Tasks[i].ID
		if a.Index != i || filepath.Dir(a.Ref) != filepath.Dir(a.A) || filepath.Dir(a.Ref) == filepath.Dir(a.B) || a.Ref == a.A {
			t.Errorf("bad triplet %+v", a)
		}
	}
	if !same || !diff {
		t.Errorf("sampling: same seed same tasks %v, other seed differs %v", same, diff)
	}
	dm, _ := Load("triplet", dir, Options{SampleSeed: 7, Max: 3})
	if len(dm.Tasks) != 3 || dm.Tasks[2] != d1.Tasks[2] {
		t.Errorf("--max 3: %v", dm.Tasks)
	}
}
