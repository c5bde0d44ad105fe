package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/image/draw"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/session/video"
)

const clipFrames, clipCut = 12, 6

// panClip writes a slow pan across a sample photo: 160 px crops sliding 5 px right and 3 px
// down per frame. With cutTo, frames from clipCut on pan across that photo instead: a cut.
// Names are unpadded (frame2, frame10) so that only natural sorting puts them in order.
func panClip(t *testing.T, photo, cutTo string) string {
	t.Helper()
	load := func(name string) image.Image {
		img, _, err := imagefile.Load(context.Background(), filepath.Join("..", "testdata", "samples", name), imagefile.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	src := load(photo)
	var other image.Image
	if cutTo != "" {
		other = load(cutTo)
	}
	dir := t.TempDir()
	for i := range clipFrames {
		from := src
		if other != nil && i >= clipCut {
			from = other
		}
		dst := image.NewRGBA(image.Rect(0, 0, 160, 160))
		draw.Copy(dst, image.Point{}, from, image.Rect(5*i, 3*i, 5*i+160, 3*i+160), draw.Src, nil)
		writePNG(t, filepath.Join(dir, fmt.Sprintf("frame%d.png", i)), dst)
	}
	return dir
}

var videoSettings = []string{"--size", "64", "--quiet"}

func videoArgs(extra ...string) []string {
	return append(append([]string{"video"}, extra...), videoSettings...)
}

func runVideoJSON(t *testing.T, args ...string) video.Report {
	t.Helper()
	code, stdout, stderr := runCmd(t, videoArgs(append(args, "--json")...)...)
	if code != 0 {
		t.Fatalf("video %v: exit %d: %s", args, code, stderr)
	}
	var out video.Report
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("video --json: %v\n%s", err, stdout)
	}
	return out
}

func TestVideoPanIsMoreConsistentThanACut(t *testing.T) {
	pan := runVideoJSON(t, panClip(t, "astronaut.png", ""))
	cut := runVideoJSON(t, panClip(t, "astronaut.png", "coffee.png"))
	if !(pan.ToFirst.Mean > cut.ToFirst.Mean) || !(pan.ToPrevious.Mean > cut.ToPrevious.Mean) {
		t.Errorf("pan: mean to first %.5f, to previous %.5f; clip with a cut: %.5f, %.5f; want the pan higher on both",
			pan.ToFirst.Mean, pan.ToPrevious.Mean, cut.ToFirst.Mean, cut.ToPrevious.Mean)
	}
	if m := cut.ToPrevious.Min; m.Index != clipCut || m.Name != fmt.Sprintf("frame%d.png", clipCut) {
		t.Errorf("the clip's least similar frame to its previous is %+v, want the cut, frame %d", m, clipCut)
	}
	if m := pan.ToPrevious.Min; m.Score < cut.ToPrevious.Min.Score {
		t.Errorf("the pan's worst step (%v) is worse than the cut (%v)", m.Score, cut.ToPrevious.Min.Score)
	}
	for _, out := range []video.Report{pan, cut} {
		if out.FeatureExtractions != clipFrames || out.NetworkRuns != clipFrames/2 {
			t.Errorf("%d frames cost %d feature extractions in %d network runs; want %d in %d",
				clipFrames, out.FeatureExtractions, out.NetworkRuns, clipFrames, clipFrames/2)
		}
	}
}

// The curves are the scores `score` gives for the same pairs.
func TestVideoScoresEqualScore(t *testing.T) {
	dir := panClip(t, "astronaut.png", "coffee.png")
	out := runVideoJSON(t, dir, "--layer", "coarse", "--t", "300", "--every", "2", "--max-frames", "5")
	if len(out.Frames) != 5 || out.Frames[4].Frame != 8 || out.Frames[4].Name != "frame8.png" {
		t.Fatalf("--every 2 --max-frames 5 kept %+v", out.Frames)
	}
	if out.Layer != "coarse.attn" || *out.T != 300 || out.Every != 2 || *out.MaxFrames != 5 {
		t.Errorf("settings: layer %q, t %d, every %d, max %d", out.Layer, *out.T, out.Every, *out.MaxFrames)
	}
	for _, pair := range []struct {
		a, b int
		got  api.Float
	}{{0, 4, out.Frames[4].ToFirst}, {3, 4, *out.Frames[4].ToPrevious}} {
		code, stdout, stderr := runCmd(t, "score", filepath.Join(dir, out.Frames[pair.a].Name), filepath.Join(dir, out.Frames[pair.b].Name),
			"--layer", "coarse", "--t", "300", "--size", "64", "--json", "--quiet")
		if code != 0 {
			t.Fatalf("score: exit %d: %s", code, stderr)
		}
		var one api.Record
		if err := json.Unmarshal([]byte(stdout), &one); err != nil {
			t.Fatal(err)
		}
		if one.Score != pair.got {
			t.Errorf("frames %d and %d: video %v, score %v", pair.a, pair.b, pair.got, one.Score)
		}
	}
}

func TestVideoJSONShape(t *testing.T) {
	code, stdout, stderr := runCmd(t, videoArgs(panClip(t, "astronaut.png", ""), "--json", "--max-frames", "3")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"model", "layer", "layer_index", "t", "step", "metric", "higher_is_more_similar", "size", "seed",
		"device", "input", "every", "max_frames", "feature_extractions", "network_runs", "frames", "to_first", "to_previous"} {
		if _, ok := m[k]; !ok {
			t.Errorf("--json has no %q", k)
		}
	}
	frames := m["frames"].([]any)
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3", len(frames))
	}
	first := frames[0].(map[string]any)
	if v, ok := first["to_previous"]; !ok || v != nil || first["to_first"] != 1.0 {
		t.Errorf("frame 0: %v; want to_first 1 and to_previous null", first)
	}
	for _, k := range []string{"index", "frame", "name", "to_first", "to_previous"} {
		if _, ok := frames[2].(map[string]any)[k]; !ok {
			t.Errorf("a frame has no %q", k)
		}
	}
	for _, curve := range []string{"to_first", "to_previous"} {
		s := m[curve].(map[string]any)
		for _, k := range []string{"mean", "min", "max"} {
			if _, ok := s[k]; !ok {
				t.Errorf("%s has no %q", curve, k)
			}
		}
		for _, k := range []string{"index", "frame", "name", "score"} {
			if _, ok := s["min"].(map[string]any)[k]; !ok {
				t.Errorf("%s.min has no %q", curve, k)
			}
		}
	}
}

func TestVideoTableCSVAndPNG(t *testing.T) {
	dir := panClip(t, "astronaut.png", "coffee.png")
	chart := filepath.Join(t.TempDir(), "curves.png")
	code, stdout, stderr := runCmd(t, videoArgs(dir, "--png", chart)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(stdout, "\n")
	if !strings.Contains(lines[0], "aas (higher = more similar)") || !strings.Contains(lines[1], "to previous") {
		t.Errorf("table header:\n%s", stdout)
	}
	for _, want := range []string{"frame11.png", "to first     mean", fmt.Sprintf("at frame %d (frame%d.png)", clipCut, clipCut),
		"12 frames: 12 feature extractions in 6 network runs", "model: built-in"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table does not show %q:\n%s", want, stdout)
		}
	}

	if !regexp.MustCompile(fmt.Sprintf(`to previous  mean 0\.\d{4}, lowest 0\.\d{4} at frame %d \(frame%d\.png\)`, clipCut, clipCut)).MatchString(stdout) {
		t.Errorf("the table's summary does not put the least similar step on the cut:\n%s", stdout)
	}

	f, err := os.Open(chart)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 500 {
		t.Errorf("chart is %v, too small to read", b)
	}
	found := map[string]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}
			switch c {
			case [3]uint8{toFirstInk.R, toFirstInk.G, toFirstInk.B}:
				found["to first"]++
			case [3]uint8{toPreviousInk.R, toPreviousInk.G, toPreviousInk.B}:
				found["to previous"]++
			}
		}
	}
	for _, curve := range []string{"to first", "to previous"} {
		if found[curve] < 500 {
			t.Errorf("the %s curve has %d pixels in the chart", curve, found[curve])
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(chart))
	if len(entries) != 1 {
		t.Errorf("the chart's folder holds %d files: a temporary file was left behind", len(entries))
	}

	code, stdout, stderr = runCmd(t, videoArgs(dir, "--csv", "--every", "3")...)
	if code != 0 {
		t.Fatalf("--csv: exit %d: %s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"index", "frame", "name"}, {"0", "0", "frame0.png"}, {"1", "3", "frame3.png"}, {"2", "6", "frame6.png"}, {"3", "9", "frame9.png"}}
	if len(rows) != len(want) {
		t.Fatalf("--csv --every 3: %d rows, want %d:\n%s", len(rows), len(want), stdout)
	}
	for i, w := range want {
		if strings.Join(rows[i][:3], ",") != strings.Join(w, ",") || len(rows[i]) != 5 {
			t.Errorf("row %d: %q, want %q…", i, rows[i], w)
		}
	}
	if rows[1][4] != "" || rows[2][4] == "" {
		t.Errorf("to_previous: first frame %q (want empty), second %q", rows[1][4], rows[2][4])
	}
}

func TestVideoUsageErrors(t *testing.T) {
	dir := panClip(t, "astronaut.png", "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{dir, "--explore", "--json"}, exitUsage, "not both"},
		{[]string{dir, "--json", "--csv"}, exitUsage, "not both"},
		{[]string{dir, "--every", "0"}, exitUsage, "--every 0"},
		{[]string{dir, "--max-frames", "1"}, exitUsage, "at least two frames"},
		{[]string{dir, "--every", "50"}, exitUsage, "at least two frames"},
		{[]string{dir, "--png", "out.jpg"}, exitUsage, ".png"},
		{[]string{dir, "--layer", "nope"}, exitUsage, "no layer"},
		{[]string{filepath.Join(dir, "missing")}, exitUsage, "does not exist"},
		{[]string{filepath.Join(dir, "frame0.png")}, exitUsage, "single image"},
		{[]string{t.TempDir()}, exitUsage, "holds no frames"},
		{[]string{}, exitUsage, "takes a folder of frames or a video file, got 0"},
	} {
		code, _, stderr := runCmd(t, videoArgs(tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("video %q: exit %d, stderr %q; want exit %d and one line saying %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestVideoExploreNeedsATerminal: --explore is available, and says so clearly when standard
// output is not a terminal (a pipe, a file), before scoring anything.
func TestVideoExploreNeedsATerminal(t *testing.T) {
	dir := panClip(t, "astronaut.png", "")
	out, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for name, stdout := range map[string]io.Writer{"buffer": new(bytes.Buffer), "file": out} {
		var stderr bytes.Buffer
		code := Run(videoArgs(dir, "--explore"), nil, stdout, &stderr)
		msg := strings.TrimSpace(stderr.String())
		if code != exitUsage || !strings.Contains(msg, "--explore needs a terminal") ||
			strings.Contains(msg, "not yet available") || strings.Contains(msg, "\n") {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line saying it needs a terminal", name, code, msg)
		}
	}
}

func TestVideoFileWithoutFFmpeg(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(clip, []byte("not decoded"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	code, _, stderr := runCmd(t, videoArgs(clip)...)
	if code != exitFailure || !strings.Contains(stderr, "needs ffmpeg") || !strings.Contains(stderr, "apt-get install ffmpeg") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming the ffmpeg package", code, stderr)
	}
}

// A lossless video of the frames scores exactly as the folder does (needs ffmpeg; skipped
// without it).
func TestVideoFileEqualsFolder(t *testing.T) {
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg not installed: scripts/test.sh installs it in CI")
		}
		t.Skip("ffmpeg is not installed")
	}
	dir := panClip(t, "astronaut.png", "coffee.png")
	clip := filepath.Join(t.TempDir(), "clip.mkv")
	if out, err := exec.Command(bin, "-v", "error", "-framerate", "10", "-i", filepath.Join(dir, "frame%d.png"),
		"-c:v", "ffv1", "-pix_fmt", "bgr0", clip).CombinedOutput(); err != nil {
		t.Fatalf("making the clip: %v: %s", err, out)
	}
	fromDir := runVideoJSON(t, dir, "--every", "2")
	fromFile := runVideoJSON(t, clip, "--every", "2")
	if len(fromFile.Frames) != len(fromDir.Frames) {
		t.Fatalf("video file: %d frames, folder %d", len(fromFile.Frames), len(fromDir.Frames))
	}
	for i, f := range fromFile.Frames {
		d := fromDir.Frames[i]
		if f.Frame != d.Frame || f.ToFirst != d.ToFirst || (i > 0 && *f.ToPrevious != *d.ToPrevious) {
			t.Errorf("frame %d: file %+v, folder %+v", i, f, d)
		}
	}
	if fromFile.FeatureExtractions != len(fromFile.Frames) {
		t.Errorf("%d frames cost %d extractions", len(fromFile.Frames), fromFile.FeatureExtractions)
	}
}

func TestVideoInterrupted(t *testing.T) {
	enginetest.Runtime(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err, stdout, _ := runCtx(ctx, videoArgs(panClip(t, "astronaut.png", ""), "--png", filepath.Join(t.TempDir(), "c.png"))...)
	if !errors.Is(err, context.Canceled) || stdout != "" {
		t.Errorf("interrupted: err %v, stdout %q; want context.Canceled and no output", err, stdout)
	}
}
