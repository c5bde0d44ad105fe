package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
)

type serveFloat = api.Float

// fakeModel is a model with a feature cache: images must be run (PrefetchImages, or Score on
// images not kept) before they are scored, runs are counted as a session counts them, and a
// score is a hash of the pair, layer, t and metric. Files whose bytes start with "bad" are not
// images; a pair with a file holding "flat" scores NaN at layer 0, as an image without any
// variation can. keep bounds the features kept (the oldest go first); 0 keeps all.
type fakeModel struct {
	keep    int
	forgets bool // Forget drops features, as a session does; else it keeps them

	mu      sync.Mutex
	kept    []string // hash@t, oldest first
	maxKept int      // the most features kept at once
	stats   api.Stats
	flat    map[string]bool
}

func (f *fakeModel) Forget(t int, imgs ...*api.Image) {
	if !f.forgets {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, img := range imgs {
		f.kept = slices.DeleteFunc(f.kept, func(k string) bool { return k == fmt.Sprintf("%s@%d", img.Hash, t) })
	}
}

func (f *fakeModel) Load(path string) (*api.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, []byte("bad")) {
		return nil, fmt.Errorf("open %s: %w", path, imagefile.ErrBadImage)
	}
	h := fmt.Sprintf("%x", sha256.Sum256(data))
	f.mu.Lock()
	if f.flat == nil {
		f.flat = map[string]bool{}
	}
	f.flat[h] = bytes.Contains(data, []byte("flat"))
	f.mu.Unlock()
	return &api.Image{Path: path, Hash: h, Pixels: image.NewGray(image.Rect(0, 0, 1, 1))}, nil
}

func (f *fakeModel) has(hash string, t int) bool {
	return slices.Contains(f.kept, fmt.Sprintf("%s@%d", hash, t))
}

func (f *fakeModel) Cached(a, b *api.Image, t int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.has(a.Hash, t) && f.has(b.Hash, t)
}

func (f *fakeModel) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var missing []*api.Image
	for _, img := range imgs {
		if !f.has(img.Hash, t) && !slices.ContainsFunc(missing, func(m *api.Image) bool { return m.Hash == img.Hash }) {
			missing = append(missing, img)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	for _, img := range missing {
		if img.Pixels == nil {
			return fmt.Errorf("%s: asked to run an image without its pixels", img.Path)
		}
	}
	f.stats.Forwards++
	f.stats.Extracted += len(missing)
	for _, img := range missing {
		f.kept = append(f.kept, fmt.Sprintf("%s@%d", img.Hash, t))
	}
	if f.keep > 0 && len(f.kept) > f.keep {
		f.kept = slices.Clone(f.kept[len(f.kept)-f.keep:])
	}
	f.maxKept = max(f.maxKept, len(f.kept))
	return nil
}

func (f *fakeModel) Score(ctx context.Context, req api.Request) (api.Result, error) {
	if err := f.Prefetch(ctx, req.T, req.A, req.B); err != nil {
		return api.Result{}, err
	}
	f.mu.Lock()
	flat := f.flat[req.A.Hash] || f.flat[req.B.Hash]
	f.mu.Unlock()
	if flat && req.Layer == 0 {
		return api.Result{Score: math.NaN()}, nil
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d|%d|%s", req.A.Hash, req.B.Hash, req.Layer, req.T, req.Metric))
	// few distinct values, so some decisions are ties
	return api.Result{Score: float64(binary.BigEndian.Uint16(h[:])%64) / 63}, nil
}

func (f *fakeModel) Stats() api.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// gridSettings is a grid of layers 0 and 2, two timesteps and every metric over ds.
func gridSettings(ds *Dataset) GridSettings {
	return GridSettings{
		Format: GridFormat, Layout: ds.Layout, Model: "fake", Size: 64, Seed: 1,
		Layers: []GridLayer{{Index: 0, Name: "l0", Label: "l0"}, {Index: 2, Name: "l2", Label: "l2"}},
		T:      []int{101, 501}, Step: []int{900, 500}, Metrics: []string{"aas", "cos", "mse"},
		Sets: ds.Sets(), Total: len(ds.Tasks),
	}
}

func newGridRun(ds *Dataset, sh Shard, out string) *GridRun {
	return &GridRun{Scorer: Local{&fakeModel{}}, Dataset: ds, Settings: gridSettings(ds), Shard: sh, Out: out, Batch: 5}
}

// oddFiles adds an unreadable image and an image without variation to a triplet dataset.
func oddTriplets(t *testing.T) *Dataset {
	t.Helper()
	ds := tripletFiles(t, 3, 3)
	os.WriteFile(filepath.Join(ds.Root, "class0", "bad.png"), []byte("bad: not an image"), 0o644)
	os.WriteFile(filepath.Join(ds.Root, "class1", "flat.png"), []byte("flat grey"), 0o644)
	ds, err := Load("triplet", ds.Root, Options{SampleSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// cellLines derives, from a grid results file, the results file of the single-cell run at
// layer li, timestep ti and metric mi.
func cellLines(t *testing.T, path string, li, ti, mi int) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := ReadGridFile(path, func(g GridSettings, l GridLine) error {
		if l.T != g.T[ti] {
			return nil
		}
		line, err := json.Marshal(l.Decision(g, li, mi))
		b.Write(append(line, '\n'))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGridCellsEqualSingleCellRuns is the grid's promise: each cell's decisions are, byte for
// byte, those of a single-cell run at that layer, timestep and metric; and each image ran
// through the network once per timestep, for every cell at once.
func TestGridCellsEqualSingleCellRuns(t *testing.T) {
	ds := oddTriplets(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "grid.jsonl")
	var log bytes.Buffer
	r := newGridRun(ds, All, out)
	r.Log = &log
	res, err := r.Do(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	g := r.Settings
	if res.Made != len(ds.Tasks)*2 || res.InShard != res.Made {
		t.Fatalf("outcome %+v", res)
	}
	images := map[string]bool{}
	skipped := 0
	for _, task := range ds.Tasks {
		bad := false
		for _, p := range []string{task.Ref, task.A, task.B} {
			bad = bad || strings.Contains(p, "bad")
		}
		if bad {
			skipped++
			continue
		}
		for _, p := range []string{task.Ref, task.A, task.B} {
			images[p] = true
		}
	}
	if skipped == 0 || res.Images != len(images)*len(g.T) {
		t.Errorf("%d images through the network, want each of %d once per timestep (%d skipped decisions)", res.Images, len(images), skipped)
	}
	if res.Forwards > (res.Images+r.Batch-1)/r.Batch+len(g.T)*3 {
		t.Errorf("%d forwards for %d images in batches of %d", res.Forwards, res.Images, r.Batch)
	}
	if !strings.Contains(log.String(), "skipped decision") || strings.Count(log.String(), "\n") != skipped {
		t.Errorf("log says %q; want each of %d skipped decisions once", log.String(), skipped)
	}

	nanCells := 0
	for li, l := range g.Layers {
		for ti, tt := range g.T {
			for mi, m := range g.Metrics {
				single := filepath.Join(tmp, fmt.Sprintf("cell-%d-%d-%s.jsonl", li, tt, m))
				s := g.CellSettings(li, ti, mi)
				run := &Run{Scorer: &fakeModel{}, Dataset: ds, Settings: s, Layer: l.Index, T: tt, Metric: api.Metric(m), Shard: All, Out: single}
				if _, err := run.Do(t.Context()); err != nil {
					t.Fatal(err)
				}
				want, _ := os.ReadFile(single)
				got := cellLines(t, out, li, ti, mi)
				if !bytes.Equal(got, want) {
					t.Fatalf("cell %s t=%d %s differs from the single-cell run:\n got %s\nwant %s", l.Name, tt, m, got, want)
				}
				if bytes.Contains(want, []byte("not a number")) {
					nanCells++
				}
			}
		}
	}
	if nanCells != len(g.T)*len(g.Metrics) {
		t.Errorf("%d cells hold a NaN score's skipped decision; want every cell of layer 0", nanCells)
	}
}

func TestGridResumesAfterInterruptsToTheSameBytes(t *testing.T) {
	ds := tripletFiles(t, 3, 3) // 18 decisions, 36 at two timesteps
	tmp := t.TempDir()
	single := filepath.Join(tmp, "single.jsonl")
	if _, err := newGridRun(ds, All, single).Do(t.Context()); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(single)
	if n := bytes.Count(want, []byte("\n")); n != 37 {
		t.Fatalf("single run wrote %d lines, want the settings and 36 records", n)
	}
	out := filepath.Join(tmp, "resumed.jsonl")
	for _, tc := range []struct {
		stopAt    int
		tornAfter bool
	}{{5, true}, {17, false}, {18, false}, {30, true}} {
		ctx, cancel := context.WithCancel(t.Context())
		r := newGridRun(ds, All, out)
		r.Progress = func(done, total int) {
			if done == tc.stopAt {
				cancel()
			}
		}
		res, err := r.Do(ctx)
		cancel()
		if !errors.Is(err, context.Canceled) || !res.Interrupted || res.Resumed+res.Made != tc.stopAt {
			t.Fatalf("stop at %d: %+v, %v", tc.stopAt, res, err)
		}
		data, _ := os.ReadFile(out)
		if !bytes.HasPrefix(want, data) || bytes.Count(data, []byte("\n")) != tc.stopAt+1 {
			t.Fatalf("after a stop at %d the file is not the single run's first %d lines", tc.stopAt, tc.stopAt+1)
		}
		if tc.tornAfter {
			f, _ := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(`{"t":101,"index":5,"set":"all","id":"cut off`)
			f.Close()
		}
	}
	res, err := newGridRun(ds, All, out).Do(t.Context())
	if err != nil || res.Resumed != 30 || res.Made != 6 {
		t.Fatalf("resumed run: %+v, %v", res, err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Error("interrupted and resumed grid results differ from one uninterrupted run")
	}
	// finished: a rerun changes nothing and runs nothing
	r := newGridRun(ds, All, out)
	if res, err := r.Do(t.Context()); err != nil || res.Made != 0 || res.Images != 0 {
		t.Errorf("rerun of a finished grid: %+v, %v", res, err)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, want) {
		t.Error("a rerun of a finished grid changed its results file")
	}

	// a header cut short is started again
	os.WriteFile(out, []byte(`{"diffsim_grid":1,"lay`), 0o644)
	if _, err := newGridRun(ds, All, out).Do(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Error("a run over a torn settings line differs from one uninterrupted run")
	}

	// other settings, another data set, another shard's file, a single-cell file: refused
	other := newGridRun(ds, All, out)
	other.Settings.T = []int{101}
	other.Settings.Step = []int{900}
	if _, err := other.Do(t.Context()); !errors.Is(err, ErrMismatch) {
		t.Errorf("other timesteps: %v", err)
	}
	ds2 := tripletFiles(t, 3, 3)
	ds2.Tasks[4].ID = "changed"
	if _, err := newGridRun(ds2, All, out).Do(t.Context()); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "data set") {
		t.Errorf("another data set: %v", err)
	}
	half := filepath.Join(tmp, "half.jsonl")
	newGridRun(ds, Shard{0, 2}, half).Do(t.Context())
	if _, err := newGridRun(ds, Shard{1, 2}, half).Do(t.Context()); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "another shard") {
		t.Errorf("shard 1/2 resuming shard 0/2's file: %v", err)
	}
	cell := filepath.Join(tmp, "cell.jsonl")
	newRun(ds, All, cell).Do(t.Context())
	if _, err := newGridRun(ds, All, cell).Do(t.Context()); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "not a grid results file") {
		t.Errorf("a single-cell results file: %v", err)
	}
}

// TestGridSmallCache: features evicted before their decisions are made (a cache smaller than
// the working set) cost forwards again, never a wrong or missing decision.
func TestGridSmallCache(t *testing.T) {
	ds := tripletFiles(t, 4, 3)
	tmp := t.TempDir()
	want := filepath.Join(tmp, "big.jsonl")
	big := newGridRun(ds, All, want)
	if _, err := big.Do(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(tmp, "small.jsonl")
	small := newGridRun(ds, All, got)
	small.Scorer = Local{&fakeModel{keep: 2}}
	small.Batch = 3
	res, err := small.Do(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(want)
	b, _ := os.ReadFile(got)
	if !bytes.Equal(a, b) {
		t.Error("a run with a small cache differs from one with a large cache")
	}
	if res.Images <= 12*2 {
		t.Errorf("%d images through the network with a cache of 2: expected more than once per image", res.Images)
	}
}

func TestGridShardsMergeToTheSingleRun(t *testing.T) {
	ds := oddTriplets(t)
	tmp := t.TempDir()
	single := filepath.Join(tmp, "single.jsonl")
	if _, err := newGridRun(ds, All, single).Do(t.Context()); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(single)
	dir := filepath.Join(tmp, "results")
	os.Mkdir(dir, 0o755)
	for i := range 3 {
		sh := Shard{i, 3}
		if _, err := newGridRun(ds, sh, filepath.Join(dir, FileName(sh))).Do(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var merged bytes.Buffer
	g, n, err := MergeGridDir(dir, false, &merged, nil)
	if err != nil || n != len(ds.Tasks)*2 || g.Total != len(ds.Tasks) {
		t.Fatalf("MergeGridDir: %d records, %v", n, err)
	}
	if !bytes.Equal(merged.Bytes(), want) {
		t.Errorf("merged shards differ from the single run:\n got %s\nwant %s", merged.Bytes(), want)
	}
	// files given by name, one twice: the same
	merged.Reset()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if _, _, err := MergeGrid(append(files, single), &merged, nil); err != nil || !bytes.Equal(merged.Bytes(), want) {
		t.Errorf("MergeGrid of the shards and the single run: %v", err)
	}

	// an unfinished shard, a missing one, a conflicting line, other settings
	p := filepath.Join(dir, FileName(Shard{1, 3}))
	data, _ := os.ReadFile(p)
	lines := bytes.SplitAfter(data, []byte("\n"))
	os.WriteFile(p, bytes.Join(lines[:4], nil), 0o644)
	if _, _, err := MergeGridDir(dir, false, nil, nil); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "1/3 has 3 of") {
		t.Errorf("unfinished shard: %v", err)
	}
	var partial bytes.Buffer
	if _, n, err := MergeGridDir(dir, true, &partial, nil); err != nil || n >= len(ds.Tasks)*2 {
		t.Errorf("--partial: %d records, %v", n, err)
	}
	sts, _, err := GridStatus(dir, time.Now(), 0)
	if err != nil || sts[1].Done != 3 || sts[1].State != "stopped" || sts[0].State != "done" || sts[0].Size != sts[0].Done {
		t.Errorf("status: %+v, %v", sts, err)
	}
	os.WriteFile(p, bytes.Replace(data, []byte(`"human":"a"`), []byte(`"human":"b"`), 1), 0o644)
	if _, _, err := MergeGrid([]string{p, single}, nil, nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "differs") {
		t.Errorf("conflicting line: %v", err)
	}
	os.WriteFile(p, bytes.Replace(data, []byte(`"size":64`), []byte(`"size":65`), 1), 0o644)
	if _, _, err := MergeGridDir(dir, true, nil, nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "was made with") {
		t.Errorf("other settings: %v", err)
	}
	os.Remove(p)
	if _, _, err := MergeGridDir(dir, false, nil, nil); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "lacks shard 1") {
		t.Errorf("missing shard: %v", err)
	}
}

func TestReportCounts(t *testing.T) {
	g := GridSettings{
		Format: GridFormat, Layout: "triplet", Model: "fake",
		Layers: []GridLayer{{Index: 0, Name: "good", Label: "good"}, {Index: 1, Name: "poor", Label: "poor"}, {Index: 2, Name: "text", Label: "text", Meaningless: true}},
		T:      []int{101}, Step: []int{900}, Metrics: []string{"aas", "mse"}, Sets: []string{SetAll}, Total: 40,
	}
	tl := NewTally(g)
	for i := range 40 {
		rec := GridRecord{T: 101, Index: i, Set: SetAll, ID: fmt.Sprint(i), Human: "a", Scores: map[string][][2]serveFloat{}}
		if i == 39 {
			rec.Skipped = "unreadable"
			tl.Add(rec)
			continue
		}
		// aas: "good" right on 36 of 39, "poor" on 21; mse (lower = more similar) the reverse
		good := i < 36
		poor := i%2 == 0 || i == 37
		pick := func(right bool) [2]serveFloat {
			if right {
				return [2]serveFloat{0.9, 0.1}
			}
			return [2]serveFloat{0.1, 0.9}
		}
		rec.Scores["aas"] = [][2]serveFloat{pick(good), pick(poor), {1, 1}}
		rec.Scores["mse"] = [][2]serveFloat{pick(good), pick(poor), {1, 1}} // wrong where aas is right
		tl.Add(rec)
	}
	rep := tl.Report()
	if !rep.Complete() || len(rep.Cells) != 6 {
		t.Fatalf("report: %d cells, complete %v", len(rep.Cells), rep.Complete())
	}
	aGood, aPoor, aText := rep.At(0, 0, 0, 0), rep.At(0, 0, 1, 0), rep.At(0, 0, 2, 0)
	p, lo, hi := Wilson(36, 39)
	if aGood.N != 39 || aGood.Correct != 36 || aGood.Skipped != 1 || float64(aGood.Accuracy) != p || float64(aGood.Low) != lo || float64(aGood.High) != hi || !aGood.Best {
		t.Errorf("good cell %+v", aGood)
	}
	if aPoor.Correct != 21 || aPoor.Best || aPoor.Indistinguishable || !(float64(aPoor.PBest) < 0.01) {
		t.Errorf("poor cell %+v", aPoor)
	}
	if aText.Correct != 0 || aText.N != 39 || aText.Best || aText.Indistinguishable || !aText.Meaningless {
		t.Errorf("meaningless cell %+v", aText)
	}
	mGood := rep.At(0, 1, 0, 0)
	if mGood.Correct != 3 || mGood.Best {
		t.Errorf("mse good cell %+v", mGood)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"*92.3 [79.7, 97.3]", " 53.8 [38.6, 68.4]", "best: good t=101 (step 900), 92.3% [79.7, 97.3], 36 of 39; every other cell"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	rep.WriteJSON(&js)
	first, _, _ := bytes.Cut(js.Bytes(), []byte("\n"))
	var rec map[string]any
	json.Unmarshal(first, &rec)
	for _, k := range []string{"set", "layer", "t", "step", "metric", "accuracy", "ci_low", "ci_high", "n"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("JSON record lacks %q: %s", k, first)
		}
	}
}

func TestMcNemar(t *testing.T) {
	// two-sided exact McNemar p-values for discordant counts b, c: 2·P(Binomial(b+c, ½) ≤ min(b, c)),
	// computed with exact integers (Python: 2*sum(comb(n, k) for k in range(min(b, c)+1))/2**n)
	for _, tc := range []struct {
		b, c int
		p    float64
	}{{0, 0, 1}, {5, 5, 1}, {0, 6, 0.03125}, {2, 9, 0.0654296875}, {10, 30, 0.0022214337732293643}} {
		x := &cellCount{decided: newBitset(64), right: newBitset(64)}
		y := &cellCount{decided: newBitset(64), right: newBitset(64)}
		for i := range tc.b + tc.c {
			x.decided.set(i)
			y.decided.set(i)
			if i < tc.b {
				x.right.set(i)
			} else {
				y.right.set(i)
			}
		}
		if p := mcNemar(x, y); math.Abs(p-tc.p) > 1e-9 {
			t.Errorf("McNemar b=%d c=%d: p %v, want %v", tc.b, tc.c, p, tc.p)
		}
	}
	// Newcombe's example 1 for independent proportions: 56/70 − 48/80, interval [0.0524, 0.3339]
	d, lo, hi := Difference(56, 70, 48, 80)
	if math.Abs(d-0.2) > 1e-12 || math.Abs(lo-0.0524) > 1e-4 || math.Abs(hi-0.3339) > 1e-4 {
		t.Errorf("Newcombe: %v [%v, %v]", d, lo, hi)
	}
}

func TestStyleContentLayout(t *testing.T) {
	root := t.TempDir()
	styles, contents := []string{"ink", "oil", "pencil"}, []string{"circle", "square", "star", "tree"}
	for _, s := range styles {
		os.MkdirAll(filepath.Join(root, s), 0o755)
		for _, c := range contents {
			if s == "pencil" && c == "tree" {
				continue // one missing image
			}
			os.WriteFile(filepath.Join(root, s, c+".png"), []byte(s+c), 0o644)
		}
	}
	os.WriteFile(filepath.Join(root, "README.txt"), []byte("not a style"), 0o644)
	ds, err := Load("grid", root, Options{SampleSeed: 3})
	if err != nil {
		t.Fatal(err)
	}
	label := func(p string) (style, content string) {
		return filepath.Dir(p), strings.TrimSuffix(filepath.Base(p), ".png")
	}
	count := map[string]int{}
	for i, task := range ds.Tasks {
		rs, rc := label(task.Ref)
		as, ac := label(task.A)
		bs, bc := label(task.B)
		count[task.Set]++
		switch task.Set {
		case SetStyle:
			if as != rs || ac == rc || bs == rs || bc != ac {
				t.Errorf("style triplet %d: %s %s %s", i, task.Ref, task.A, task.B)
			}
		case SetContent:
			if ac != rc || as == rs || bc == rc || bs != as {
				t.Errorf("content triplet %d: %s %s %s", i, task.Ref, task.A, task.B)
			}
		default:
			t.Errorf("task %d in set %q", i, task.Set)
		}
		if task.Human != "a" || task.Index != i {
			t.Errorf("task %d: %+v", i, task)
		}
		if i < 2*min(count[SetStyle], count[SetContent])-1 && task.Set != []string{SetStyle, SetContent}[i%2] {
			t.Errorf("sets are not interleaved at %d", i)
		}
	}
	// style: each reference × the other contents of its style (ink and oil 4 × 3, pencil 3 × 2);
	// content: each reference × the other styles with its content (circle, square, star: 3 × 2
	// per style; tree: ink and oil, 1 each)
	if count[SetStyle] != 30 || count[SetContent] != 20 {
		t.Errorf("%d style and %d content triplets, want 30 and 20", count[SetStyle], count[SetContent])
	}
	again, _ := Load("grid", root, Options{SampleSeed: 3})
	if !slices.Equal(again.Tasks, ds.Tasks) {
		t.Error("the same seed drew other triplets")
	}
	if len(ds.Notes) == 0 || !strings.Contains(ds.Notes[0], "1 of the 12") {
		t.Errorf("notes %v", ds.Notes)
	}
	if _, err := Load("grid", filepath.Join(root, "ink"), Options{}); !errors.Is(err, ErrLayout) {
		t.Errorf("a folder of images, no style folders: %v", err)
	}
}

func TestCellDecisionsAndDisagreements(t *testing.T) {
	ds := oddTriplets(t)
	out := filepath.Join(t.TempDir(), "grid.jsonl")
	if _, err := newGridRun(ds, All, out).Do(t.Context()); err != nil {
		t.Fatal(err)
	}
	for mi, m := range []string{"aas", "cos", "mse"} {
		g, cell, err := CellDecisions(out, SetAll, 1, 1, mi)
		if err != nil || len(cell) != len(ds.Tasks) || g.Metrics[mi] != m {
			t.Fatalf("CellDecisions: %d decisions, %v", len(cell), err)
		}
		wrong := Disagreements(cell)
		n := 0
		for _, d := range cell {
			if d.Skipped == "" && !d.Correct {
				n++
			}
		}
		if len(wrong) != n || n == 0 {
			t.Fatalf("%s: %d disagreements of %d wrong decisions", m, len(wrong), n)
		}
		for i, d := range wrong {
			if Margin(d) > 0 || (i > 0 && Margin(d) < Margin(wrong[i-1])) {
				t.Errorf("%s: disagreement %d (margin %v) is out of order or right", m, i, Margin(d))
			}
			if d.T != 501 || d.Layer != "l2" || d.Metric != m {
				t.Errorf("decision of another cell: %+v", d.Settings)
			}
		}
	}
	// a single-cell results file reads as one cell
	single := filepath.Join(t.TempDir(), "cell.jsonl")
	newRun(ds, All, single).Do(t.Context())
	_, cell, err := CellDecisions(single, SetAll, 0, 0, 0)
	if err != nil || len(cell) != len(ds.Tasks) {
		t.Errorf("single-cell file: %d decisions, %v", len(cell), err)
	}
	rep, err := LoadReport(single)
	if err != nil || len(rep.Cells) != 1 || !rep.Complete() {
		t.Errorf("single-cell report: %+v, %v", rep, err)
	}
}

// TestGridKeepsOnlyWhatPendingDecisionsNeed: with a scorer that can forget, features go once
// their last decision at t is made, so a data set whose decisions share no images (NIGHTS)
// holds about a batch at a time, whatever its size; the results are the same.
func TestGridKeepsOnlyWhatPendingDecisionsNeed(t *testing.T) {
	root := t.TempDir()
	csv := "ref,a,b,choice\n"
	for i := range 40 {
		for _, n := range []string{"r", "x", "y"} {
			os.WriteFile(filepath.Join(root, fmt.Sprintf("%s%d.png", n, i)), []byte(fmt.Sprint(n, i)), 0o644)
		}
		csv += fmt.Sprintf("r%d.png,x%d.png,y%d.png,%s\n", i, i, i, []string{"a", "b"}[i%2])
	}
	os.WriteFile(filepath.Join(root, "data.csv"), []byte(csv), 0o644)
	ds, err := Load("2afc", root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	keeping, forgetful := &fakeModel{}, &fakeModel{forgets: true}
	r1 := newGridRun(ds, All, filepath.Join(tmp, "keep.jsonl"))
	r1.Scorer = Local{keeping}
	r2 := newGridRun(ds, All, filepath.Join(tmp, "forget.jsonl"))
	r2.Scorer = Local{forgetful}
	for _, r := range []*GridRun{r1, r2} {
		if _, err := r.Do(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(r1.Out)
	b, _ := os.ReadFile(r2.Out)
	if !bytes.Equal(a, b) {
		t.Error("forgetting features changed the results")
	}
	if keeping.maxKept != 2*120 || forgetful.maxKept > r2.Batch+2 {
		t.Errorf("features kept at once: %d without Forget (want all 240), %d with it (want at most a batch and a bit: %d)", keeping.maxKept, forgetful.maxKept, r2.Batch+2)
	}
	if forgetful.stats.Extracted != 240 {
		t.Errorf("%d images through the network, want each of 120 once per timestep", forgetful.stats.Extracted)
	}
}

func FuzzScanGrid(f *testing.F) {
	ds := &Dataset{Layout: "triplet", Tasks: []Task{{Index: 0, ID: "x", Human: "a"}, {Index: 1, ID: "y", Human: "b"}}}
	g := gridSettings(ds)
	head, _ := json.Marshal(g)
	rec := GridRecord{T: 101, Index: 1, Set: SetAll, ID: "y", Human: "b", Scores: map[string][][2]serveFloat{}}
	for _, m := range g.Metrics {
		rec.Scores[m] = [][2]serveFloat{{0.5, serveFloat(math.NaN())}, {1, 0}}
	}
	line, _ := json.Marshal(rec)
	file := append(append(append(head, '\n'), line...), '\n')
	f.Add(file)
	f.Add(file[:len(file)-7])
	f.Add(head[:20])
	f.Add([]byte("{}\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n int
		_, good, _, err := ScanGrid(bytes.NewReader(data), "fuzz", func(GridSettings, GridLine) error { n++; return nil })
		if err != nil {
			return
		}
		if good > int64(len(data)) {
			t.Fatalf("good %d > %d bytes", good, len(data))
		}
		var again int
		_, good2, torn, err := ScanGrid(bytes.NewReader(data[:good]), "fuzz", func(GridSettings, GridLine) error { again++; return nil })
		if err != nil || torn || good2 != good || again != n {
			t.Fatalf("prefix re-read: %d vs %d records, torn %v, %v", again, n, torn, err)
		}
	})
}
