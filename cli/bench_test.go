package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/imagefile"

	"golang.org/x/image/bmp"
	"golang.org/x/image/draw"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/bench"
)

// runCmd runs diffsim as main does and returns the exit code and both streams.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(args, nil, &stdout, &stderr)
	skipWithoutRuntime(t, code, stderr.String())
	return code, stdout.String(), stderr.String()
}

// runCtx runs diffsim under ctx (main's own context cannot be cancelled from a test).
func runCtx(ctx context.Context, args ...string) (error, string, string) {
	var stdout, stderr bytes.Buffer
	cmd := newRoot(&app{stdout: &stdout, stderr: &stderr})
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.ExecuteContext(ctx)
	return err, stdout.String(), stderr.String()
}

// samplePhoto loads a sample photograph scaled down to 96×96 px, to keep tests fast.
func samplePhoto(t testing.TB, name string) image.Image {
	t.Helper()
	img, _, err := imagefile.Load(context.Background(), filepath.Join("..", "testdata", "samples", name), imagefile.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return features.ResizeSquare(img, 96)
}

// variants are what the tests call "the same image": a crop, a mirror image, a colour shift.
func variants(src image.Image) []image.Image {
	b := src.Bounds()
	crop := image.NewRGBA(image.Rect(0, 0, 96, 96))
	draw.CatmullRom.Scale(crop, crop.Rect, src, image.Rect(b.Min.X+12, b.Min.Y+8, b.Max.X-10, b.Max.Y-14), draw.Src, nil)
	flip := image.NewRGBA(b)
	warm := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(src.At(x, y)).(color.RGBA)
			flip.SetRGBA(b.Max.X-1-(x-b.Min.X), y, c)
			warm.SetRGBA(x, y, color.RGBA{uint8(min(int(c.R)+20, 255)), c.G, uint8(max(int(c.B)-15, 0)), 255})
		}
	}
	return []image.Image{src, crop, flip, warm}
}

func writePNG(t testing.TB, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tripletDataset writes class folders: each sample photo and its variants form a class.
func tripletDataset(t testing.TB, photos ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range photos {
		class := strings.TrimSuffix(p, filepath.Ext(p))
		for i, v := range variants(samplePhoto(t, p)) {
			writePNG(t, filepath.Join(dir, class, fmt.Sprintf("v%d.png", i)), v)
		}
	}
	return dir
}

var benchPhotos = []string{"grass.png", "gravel.png", "brick.png", "coffee.png"}

// small settings keep the built-in model fast; --t 300 makes a few decisions go wrong, so the
// accuracy is not trivially 100%.
var benchSettings = []string{"--size", "64", "--t", "300", "--layer", "coarse", "--quiet"}

func benchArgs(extra ...string) []string {
	return append(append([]string{}, extra...), benchSettings...)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestBenchTripletAccuracyMatchesIndependentCount(t *testing.T) {
	dir := tripletDataset(t, benchPhotos...)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	code, stdout, stderr := runCmd(t, benchArgs("bench", "triplet", dir, "--out", out, "--json")...)
	if code != 0 {
		t.Fatalf("bench: exit %d: %s", code, stderr)
	}
	var sum bench.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, stdout)
	}

	// Count again, independently: the tasks from the layout, scores from a session of our own.
	ds, err := bench.Load("triplet", dir, bench.Options{SampleSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.Open(t.Context(), session.Options{Spec: builtinAt(64), Families: families.All()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	layer, err := s.Info().ResolveLayer("coarse")
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for _, task := range ds.Tasks {
		score := func(p string) float64 {
			ref, err := s.Load(ds.Path(task.Ref))
			if err != nil {
				t.Fatal(err)
			}
			img, err := s.Load(ds.Path(p))
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Score(t.Context(), api.Request{A: ref, B: img, Layer: layer, T: 300, Metric: api.AAS, Token: -1})
			if err != nil {
				t.Fatal(err)
			}
			return r.Score
		}
		if score(task.A) > score(task.B) { // A is the positive
			correct++
		}
	}
	n := len(ds.Tasks)
	if n != 4*12 { // 4 classes × 4 images × 3 positives each
		t.Fatalf("triplet layout made %d decisions, want 48", n)
	}
	if sum.Made != n || sum.Correct != correct || sum.Skipped != 0 || !sum.Complete {
		t.Errorf("summary %+v; independent count: %d of %d correct", sum, correct, n)
	}
	if correct == n {
		t.Log("every decision is right: the test would not notice a choice flipped the wrong way")
	}
	p, lo, hi := bench.Wilson(correct, n)
	if sum.Accuracy != p || sum.Low != lo || sum.High != hi {
		t.Errorf("accuracy %v [%v, %v], want %v [%v, %v]", sum.Accuracy, sum.Low, sum.High, p, lo, hi)
	}
	if lines := readLines(t, out); len(lines) != n {
		t.Errorf("%s has %d lines, want %d", out, len(lines), n)
	}
	// the text summary says the same
	code, text, _ := runCmd(t, benchArgs("bench", "triplet", dir, "--out", out)...)
	if want := fmt.Sprintf("%d of %d correct", correct, n); code != 0 || !strings.Contains(text, want) {
		t.Errorf("text summary (exit %d) lacks %q:\n%s", code, want, text)
	}
}

func TestBenchShardsMergeEqualsOneRun(t *testing.T) {
	dir := tripletDataset(t, benchPhotos...)
	tmp := t.TempDir()
	single := filepath.Join(tmp, "single.jsonl")
	if code, _, stderr := runCmd(t, benchArgs("bench", "triplet", dir, "--out", single)...); code != 0 {
		t.Fatalf("single run: exit %d: %s", code, stderr)
	}
	var shards []string
	for i := range 3 {
		f := filepath.Join(tmp, fmt.Sprintf("shard%d.jsonl", i))
		shards = append(shards, f)
		code, _, stderr := runCmd(t, benchArgs("bench", "triplet", dir, "--shard", fmt.Sprintf("%d/3", i), "--out", f)...)
		if code != 0 {
			t.Fatalf("shard %d: exit %d: %s", i, code, stderr)
		}
		for _, line := range readLines(t, f) {
			var d bench.Decision
			if err := json.Unmarshal([]byte(line), &d); err != nil || d.Index%3 != i {
				t.Fatalf("shard %d holds decision %d (%v)", i, d.Index, err)
			}
		}
	}
	for _, format := range [][]string{nil, {"--json"}} {
		// the single run's summary, printed again by a rerun that finds nothing left to do
		code, want, stderr := runCmd(t, benchArgs(append([]string{"bench", "triplet", dir, "--out", single}, format...)...)...)
		if code != 0 {
			t.Fatalf("single run %v: exit %d: %s", format, code, stderr)
		}
		merged := filepath.Join(tmp, "merged.jsonl")
		// shards given out of order: merge sorts by decision index
		code, got, stderr := runCmd(t, append([]string{"bench", "merge", shards[2], shards[0], shards[1], "--out", merged}, format...)...)
		if code != 0 {
			t.Fatalf("merge: exit %d: %s", code, stderr)
		}
		if got != want {
			t.Errorf("merged summary differs from the single run's:\n got %q\nwant %q", got, want)
		}
		a, _ := os.ReadFile(single)
		b, _ := os.ReadFile(merged)
		if !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("merged JSONL (%d bytes) differs from the single run's (%d bytes)", len(b), len(a))
		}
	}
	// an incomplete merge says so
	code, got, stderr := runCmd(t, "bench", "merge", shards[0], shards[1])
	if code != 0 || !strings.Contains(got, "INCOMPLETE") || !strings.Contains(stderr, "missing") {
		t.Errorf("merge of 2 of 3 shards: exit %d, stdout %q, stderr %q", code, got, stderr)
	}
}

func TestBenchResumesAKilledRun(t *testing.T) {
	dir := tripletDataset(t, benchPhotos...)
	tmp := t.TempDir()
	single := filepath.Join(tmp, "single.jsonl")
	if code, _, stderr := runCmd(t, benchArgs("bench", "triplet", dir, "--out", single)...); code != 0 {
		t.Fatalf("single run: exit %d: %s", code, stderr)
	}
	want, _ := os.ReadFile(single)

	// what a run killed during its eighth write leaves: 7 lines and half of one
	// (session/bench's tests stop runs at exact points; this checks the command's wiring)
	out := filepath.Join(tmp, "resumed.jsonl")
	lines := bytes.SplitAfter(want, []byte("\n"))
	killed := append(bytes.Join(lines[:7], nil), lines[7][:20]...)
	if err := os.WriteFile(out, killed, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"bench", "triplet", dir, "--out", out, "--size", "64", "--t", "300", "--layer", "coarse"}
	code, _, stderr := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("resumed run: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "7 already in "+out+", 41 to make") {
		t.Errorf("the resumed run does not say what it resumed:\n%s", stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Errorf("killed and resumed results differ from one uninterrupted run:\n got %s\nwant %s", got, want)
	}
	// another setting must not mix into this file
	code, _, stderr = runCmd(t, "bench", "triplet", dir, "--out", out, "--size", "64", "--t", "500", "--layer", "coarse", "--quiet")
	if code != exitUsage || !strings.Contains(stderr, "another --out") {
		t.Errorf("resume with another --t: exit %d, %s", code, stderr)
	}
}

// clearShardEnv unsets the batch engines' variables, so a test run inside a Slurm job or a
// Kubernetes pod sees only what the test sets.
func clearShardEnv(t *testing.T) {
	for _, k := range []string{"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "JOB_COMPLETION_INDEX", bench.ShardsVar} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestBenchShardFromEngineEnvironment(t *testing.T) {
	dir := tripletDataset(t, benchPhotos...) // 48 decisions
	for _, tc := range []struct {
		env   map[string]string
		extra []string
		shard bench.Shard
		from  string
	}{
		{map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"}, nil, bench.Shard{I: 1, N: 3}, "from the Slurm array (SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=3)"},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "2"}, []string{"--shards", "4"}, bench.Shard{I: 2, N: 4}, "--shards 4"},
		{map[string]string{"JOB_COMPLETION_INDEX": "3", "DIFFSIM_SHARDS": "5"}, nil, bench.Shard{I: 3, N: 5}, "from the Kubernetes Indexed Job (JOB_COMPLETION_INDEX=3, --shards 5)"},
		{map[string]string{"JOB_COMPLETION_INDEX": "0"}, []string{"--shards", "2"}, bench.Shard{I: 0, N: 2}, "Kubernetes"},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"}, []string{"--shard", "0/2"}, bench.Shard{I: 0, N: 2}, ""},
	} {
		t.Run(fmt.Sprint(tc.env, tc.extra), func(t *testing.T) {
			clearShardEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			res := filepath.Join(t.TempDir(), "results") + "/"
			args := append([]string{"bench", "triplet", dir, "--out", res, "--size", "64", "--t", "300", "--layer", "coarse"}, tc.extra...)
			code, _, stderr := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if tc.from != "" && !strings.Contains(stderr, "diffsim: shard "+tc.shard.String()+" ") || !strings.Contains(stderr, tc.from) {
				t.Errorf("stderr does not say the shard came from the engine (%q):\n%s", tc.from, stderr)
			}
			if tc.from == "" && strings.Contains(stderr, "from the") {
				t.Errorf("--shard given, yet stderr names an engine:\n%s", stderr)
			}
			entries, _ := os.ReadDir(res)
			if len(entries) != 1 || entries[0].Name() != bench.FileName(tc.shard) {
				t.Fatalf("results folder holds %v, want only %s", entries, bench.FileName(tc.shard))
			}
			got := readLines(t, filepath.Join(res, entries[0].Name()))
			if len(got) != tc.shard.Size(48) {
				t.Errorf("%d decisions, want %d", len(got), tc.shard.Size(48))
			}
			for _, line := range got {
				var d bench.Decision
				if err := json.Unmarshal([]byte(line), &d); err != nil || !tc.shard.Has(d.Index) {
					t.Fatalf("shard %s holds decision %d (%v)", tc.shard, d.Index, err)
				}
			}
		})
	}
}

func TestBenchResultsFolderMergeAndStatus(t *testing.T) {
	clearShardEnv(t)
	dir := tripletDataset(t, benchPhotos...)
	tmp := t.TempDir()
	single := filepath.Join(tmp, "single.jsonl")
	code, wantSummary, stderr := runCmd(t, benchArgs("bench", "triplet", dir, "--out", single, "--json")...)
	if code != 0 {
		t.Fatalf("single run: exit %d: %s", code, stderr)
	}
	res := filepath.Join(tmp, "results")
	run := func(i int, extra ...string) (int, string) {
		t.Setenv("SLURM_ARRAY_TASK_ID", fmt.Sprint(i))
		t.Setenv("SLURM_ARRAY_TASK_COUNT", "4")
		code, _, stderr := runCmd(t, append([]string{"bench", "triplet", dir, "--out", res + "/", "--size", "64", "--t", "300", "--layer", "coarse"}, extra...)...)
		return code, stderr
	}
	for _, i := range []int{0, 1, 3} {
		if code, stderr := run(i); code != 0 {
			t.Fatalf("shard %d: exit %d: %s", i, code, stderr)
		}
	}
	// status while shard 2 has not started
	code, status, stderr := runCmd(t, "bench", "status", res)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = strings.Join(f, " ")
		}
	}
	for shard, want := range map[string]string{"0/4": "0/4 12 12 0", "2/4": "2/4 0 12 0 - missing", "36": "36 of 48 decisions (75.0%);"} {
		if !strings.HasPrefix(rows[shard], want) || (shard == "0/4" && !strings.HasSuffix(rows[shard], "done")) {
			t.Errorf("status row %q is %q, want %q…:\n%s", shard, rows[shard], want, status)
		}
	}
	code, _, stderr = runCmd(t, "bench", "merge", res)
	if code != exitUsage || !strings.Contains(stderr, "lacks shard 2 of 4") {
		t.Errorf("merge without shard 2: exit %d, %s", code, stderr)
	}
	// a rerun of task 2 alone, as sbatch --array=2 makes it, must keep the 4-way split
	t.Setenv("SLURM_ARRAY_TASK_MIN", "2")
	t.Setenv("SLURM_ARRAY_TASK_MAX", "2")
	t.Setenv("SLURM_ARRAY_TASK_ID", "2")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "1")
	code, _, stderr = runCmd(t, "bench", "triplet", dir, "--out", res+"/", "--size", "64", "--t", "300", "--layer", "coarse")
	if code != exitUsage || !strings.Contains(stderr, "--shards") {
		t.Errorf("rerun of one task without --shards: exit %d, %s", code, stderr)
	}
	if code, stderr := run(2, "--shards", "4", "--log-every", "5"); code != 0 {
		t.Fatalf("shard 2 with --shards 4: exit %d: %s", code, stderr)
	} else if n := strings.Count(stderr, "decisions ("); n != 3 || !strings.Contains(stderr, "/s, ETA ") || !strings.Contains(stderr, "12/12 decisions (100%)") {
		t.Errorf("progress lines every 5 of 12 decisions: %d lines, want 3 (5, 10, 12):\n%s", n, stderr)
	}
	merged := filepath.Join(tmp, "merged.jsonl")
	code, got, stderr := runCmd(t, "bench", "merge", res, "--out", merged, "--json")
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	if got != wantSummary {
		t.Errorf("merged summary differs from the single run's:\n got %q\nwant %q", got, wantSummary)
	}
	a, _ := os.ReadFile(single)
	b, _ := os.ReadFile(merged)
	if !bytes.Equal(a, b) || len(a) == 0 {
		t.Errorf("merged JSONL (%d bytes) differs from the single run's (%d bytes)", len(b), len(a))
	}
	code, status, _ = runCmd(t, "bench", "status", res, "--json")
	var st struct {
		Total  int                 `json:"total"`
		Shards []bench.ShardStatus `json:"shards"`
	}
	if err := json.Unmarshal([]byte(status), &st); code != 0 || err != nil || st.Total != 48 || len(st.Shards) != 4 || st.Shards[2].State != "done" {
		t.Errorf("status --json: exit %d, %v: %s", code, err, status)
	}
}

func TestBenchLayouts(t *testing.T) {
	tmp := t.TempDir()
	photos := map[string]image.Image{}
	for _, p := range []string{"grass.png", "brick.png", "coffee.png"} {
		photos[p] = samplePhoto(t, p)
	}
	// 2AFC: a reference, its crop, and another photo; the human picks the crop
	dirA := filepath.Join(tmp, "2afc")
	var csv strings.Builder
	csv.WriteString("id,reference,left,right,human\n")
	for i, p := range []string{"grass.png", "brick.png", "coffee.png"} {
		v := variants(photos[p])
		other := []string{"brick.png", "coffee.png", "grass.png"}[i]
		writePNG(t, filepath.Join(dirA, "img", fmt.Sprintf("%d_ref.png", i)), v[0])
		writePNG(t, filepath.Join(dirA, "img", fmt.Sprintf("%d_crop.png", i)), v[1])
		writePNG(t, filepath.Join(dirA, "img", fmt.Sprintf("%d_other.png", i)), photos[other])
		// alternate sides so the answer is not always the same letter
		if i%2 == 0 {
			fmt.Fprintf(&csv, "q%d,img/%d_ref.png,img/%d_crop.png,img/%d_other.png,left\n", i, i, i, i)
		} else {
			fmt.Fprintf(&csv, "q%d,img/%d_ref.png,img/%d_other.png,img/%d_crop.png,right\n", i, i, i, i)
		}
	}
	fmt.Fprintf(&csv, "q9,img/0_ref.png,img/missing.png,img/0_crop.png,b\n") // unreadable: skipped
	if err := os.WriteFile(filepath.Join(dirA, "pairs.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// NIGHTS: data.csv as DreamSim ships it (an unnamed pandas index column first)
	dirN := filepath.Join(tmp, "nights")
	var ncsv strings.Builder
	ncsv.WriteString(",id,votes,left_vote,right_vote,ref_path,left_path,right_path,split,is_imagenet\n")
	for i, p := range []string{"grass.png", "brick.png", "coffee.png"} {
		v := variants(photos[p])
		writePNG(t, filepath.Join(dirN, "ref", fmt.Sprintf("%03d", i), "000.png"), v[0])
		writePNG(t, filepath.Join(dirN, "distort", fmt.Sprintf("%03d", i), "000_0.png"), v[2])
		writePNG(t, filepath.Join(dirN, "distort", fmt.Sprintf("%03d", i), "000_1.png"), photos[[]string{"coffee.png", "grass.png", "brick.png"}[i]])
		fmt.Fprintf(&ncsv, "%d,%d,6,%d,%d,ref/%03d/000.png,distort/%03d/000_0.png,distort/%03d/000_1.png,test,True\n", i, i, 5+i%2, 1-i%2, i, i, i)
	}
	ncsv.WriteString("3,3,6,3,3,ref/000/000.png,distort/000/000_0.png,distort/000/000_1.png,test,True\n") // tie: left out
	ncsv.WriteString("4,4,4,4,0,ref/000/000.png,distort/000/000_0.png,distort/000/000_1.png,test,True\n") // too few votes
	ncsv.WriteString("5,5,6,6,0,ref/000/000.png,distort/000/000_0.png,distort/000/000_1.png,train,True\n")
	if err := os.WriteFile(filepath.Join(dirN, "data.csv"), []byte(ncsv.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// TID2013: levels as stronger and stronger colour shifts of the reference
	dirT := filepath.Join(tmp, "tid2013")
	for r, p := range []string{"grass.png", "brick.png"} {
		writePNG(t, filepath.Join(dirT, "reference_images", fmt.Sprintf("I%02d.BMP.png", r+1)), photos[p]) // not a reference name: ignored
		writeBMP(t, filepath.Join(dirT, "reference_images", fmt.Sprintf("I%02d.BMP", r+1)), photos[p])
		for d := 1; d <= 2; d++ {
			for lvl := 1; lvl <= 5; lvl++ {
				writeBMP(t, filepath.Join(dirT, "distorted_images", fmt.Sprintf("i%02d_%02d_%d.bmp", r+1, d, lvl)), shift(photos[p], 12*lvl*d))
			}
		}
	}

	for _, tc := range []struct {
		layout, path       string
		made, correct, skp int
		extra              []string
	}{
		{"2afc", filepath.Join(dirA, "pairs.csv"), 3, 3, 1, nil},
		{"nights", dirN, 3, 3, 0, nil},
		{"nights", dirN, 5, 5, 0, []string{"--split", "all", "--min-votes", "0"}},
		{"tid2013", dirT, 4, 4, 0, nil},
	} {
		t.Run(tc.layout+strings.Join(tc.extra, ""), func(t *testing.T) {
			args := append([]string{"bench", tc.layout, tc.path, "--json", "--size", "64", "--t", "50", "--layer", "fine", "--quiet"}, tc.extra...)
			code, stdout, stderr := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var sum bench.Summary
			if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
				t.Fatal(err)
			}
			if sum.Made != tc.made || sum.Correct != tc.correct || sum.Skipped != tc.skp || sum.Layout != tc.layout {
				t.Errorf("summary %+v; want %d made, %d correct, %d skipped\n%s", sum, tc.made, tc.correct, tc.skp, stderr)
			}
		})
	}
}

func shift(src image.Image, k int) image.Image {
	b := src.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(src.At(x, y)).(color.RGBA)
			out.SetRGBA(x, y, color.RGBA{uint8(min(int(c.R)+k, 255)), uint8(max(int(c.G)-k/2, 0)), c.B, 255})
		}
	}
	return out
}

func writeBMP(t testing.TB, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := bmp.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	clearShardEnv(t)
	dir := tripletDataset(t, "grass.png", "brick.png")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "cute", dir}, "unknown layout"},
		{[]string{"bench", "triplet", dir, "--shard", "3/3"}, "--shard"},
		{[]string{"bench", "triplet", filepath.Join(dir, "grass")}, "two class folders"},
		{[]string{"bench", "nights", dir}, "data.csv"},
		{[]string{"bench", "triplet", filepath.Join(dir, "nope")}, "no such file"},
		{[]string{"bench", "merge", filepath.Join(dir, "grass", "v0.png")}, "not a diffsim bench decision"},
		{[]string{"bench", "merge", dir}, "no shard files"},
		{[]string{"bench", "status", dir}, "no shard files"},
		{[]string{"bench", "triplet", dir, "--shard", "0/2", "--shards", "2"}, "not both"},
		{[]string{"bench", "triplet", dir, "--shards", "3"}, "SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX"},
		{[]string{"bench", "triplet", dir, "--log-every", "-1"}, "--log-every"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// builtinAt is the built-in model's spec at size px.
func builtinAt(size int) api.Spec {
	sp := api.DefaultSpec()
	sp.Size = size
	return sp
}
