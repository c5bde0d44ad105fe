package video

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNaturalCompare(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"frame10.png", "frame2.png", "frame1.png"}, []string{"frame1.png", "frame2.png", "frame10.png"}},
		{[]string{"f010.png", "f9.png", "f0100.png"}, []string{"f9.png", "f010.png", "f0100.png"}},
		{[]string{"b1", "a10", "a2"}, []string{"a2", "a10", "b1"}},
		{[]string{"x1y10", "x1y9", "x01y9"}, []string{"x01y9", "x1y9", "x1y10"}}, // equal by value: plain order decides
		{[]string{"shot", "shot2", "shot1"}, []string{"shot", "shot1", "shot2"}},
		{[]string{"99999999999999999999999.png", "100000000000000000000000.png"}, []string{"99999999999999999999999.png", "100000000000000000000000.png"}},
	} {
		got := slices.Clone(tc.in)
		slices.SortFunc(got, NaturalCompare)
		if !slices.Equal(got, tc.want) {
			t.Errorf("sort %q = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, p := range [][2]string{{"a", "a"}, {"f1", "f01"}, {"", "0"}} {
		if a, b := NaturalCompare(p[0], p[1]), NaturalCompare(p[1], p[0]); a != -b || (a == 0) != (p[0] == p[1]) {
			t.Errorf("NaturalCompare(%q, %q) = %d, reversed %d", p[0], p[1], a, b)
		}
	}
}

// solid is a small PNG of one colour, so frames can be told apart by their pixels.
func solid(t testing.TB, v uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	return encode(t, img)
}

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for i, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), solid(t, uint8(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t *testing.T, s Source) []Frame {
	t.Helper()
	var out []Frame
	for {
		f, err := s.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end: %v, want io.EOF again", err)
	}
	return out
}

func TestOpenDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "f10.png", "f2.png", "f1.png", "f3.png", "f11.png", ".hidden.png", "notes.txt")
	if err := os.Mkdir(filepath.Join(dir, "sub.png"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o     Options
		names []string
		nums  []int
	}{
		{Options{}, []string{"f1.png", "f2.png", "f3.png", "f10.png", "f11.png"}, []int{0, 1, 2, 3, 4}},
		{Options{Every: 2}, []string{"f1.png", "f3.png", "f11.png"}, []int{0, 2, 4}},
		{Options{Every: 2, MaxFrames: 2}, []string{"f1.png", "f3.png"}, []int{0, 2}},
		{Options{MaxFrames: 9}, []string{"f1.png", "f2.png", "f3.png", "f10.png", "f11.png"}, []int{0, 1, 2, 3, 4}},
	} {
		s, err := Open(context.Background(), dir, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != len(tc.names) {
			t.Errorf("%+v: Len %d, want %d", tc.o, s.Len(), len(tc.names))
		}
		var names []string
		var nums []int
		for _, f := range readAll(t, s) {
			names, nums = append(names, f.Name), append(nums, f.Frame)
		}
		if !slices.Equal(names, tc.names) || !slices.Equal(nums, tc.nums) {
			t.Errorf("%+v: frames %q numbered %v, want %q numbered %v", tc.o, names, nums, tc.names, tc.nums)
		}
		s.Close()
	}
}

func TestOpenRefusesWhatIsNotAClip(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "still.png", "readme.txt")
	empty := t.TempDir()
	for _, tc := range []struct{ input, want string }{
		{filepath.Join(dir, "still.png"), "single image"},
		{empty, "holds no frames"},
		{filepath.Join(dir, "missing"), "does not exist"},
	} {
		_, err := Open(context.Background(), tc.input, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s): %v, want an error saying %q", tc.input, err, tc.want)
		}
	}
}

func TestReadPNGSplitsAStream(t *testing.T) {
	var stream bytes.Buffer
	var want [][]byte
	for v := range 3 {
		p := solid(t, uint8(40*v))
		want = append(want, p)
		stream.Write(p)
	}
	r := bytes.NewReader(stream.Bytes())
	for i, w := range want {
		got, err := ReadPNG(r, 1<<20)
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("PNG %d: %d bytes, %v; want the %d bytes written", i, len(got), err, len(w))
		}
	}
	if _, err := ReadPNG(r, 1<<20); !errors.Is(err, io.EOF) {
		t.Errorf("at the end: %v, want io.EOF", err)
	}

	p := solid(t, 7)
	for _, tc := range []struct {
		name  string
		in    []byte
		limit int
		want  error
	}{
		{"truncated", p[:len(p)-5], 1 << 20, io.ErrUnexpectedEOF},
		{"signature only", p[:8], 1 << 20, io.ErrUnexpectedEOF},
		{"half a signature", p[:4], 1 << 20, io.ErrUnexpectedEOF},
		{"too large", p, len(p) - 1, nil},
		{"not a PNG", []byte("GIF89a........"), 1 << 20, nil},
	} {
		_, err := ReadPNG(bytes.NewReader(tc.in), tc.limit)
		if err == nil || errors.Is(err, io.EOF) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err %v, want a failure (%v)", tc.name, err, tc.want)
		}
	}
}

// FuzzReadPNG: any bytes either fail or yield a prefix of the stream that starts like a PNG;
// nothing panics or allocates what a header merely claims.
func FuzzReadPNG(f *testing.F) {
	p := solid(f, 3)
	f.Add(p)
	f.Add(append(append([]byte{}, p...), p...))
	f.Add([]byte("\x89PNG\r\n\x1a\n\xff\xff\xff\xffIDAT"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		off := 0
		for {
			got, err := ReadPNG(r, 1<<16)
			if err != nil {
				return
			}
			if !bytes.Equal(got, data[off:off+len(got)]) || !bytes.HasPrefix(got, pngSignature) {
				t.Fatalf("ReadPNG returned bytes that are not the next PNG of the stream")
			}
			off += len(got)
		}
	})
}

func TestWithoutFFmpeg(t *testing.T) {
	video := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(video, []byte("not really a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err := Open(context.Background(), video, Options{})
	if !errors.Is(err, ErrNoFFmpeg) {
		t.Fatalf("without ffmpeg: %v, want ErrNoFFmpeg", err)
	}
	for _, want := range []string{video, "ffmpeg", "apt-get install ffmpeg", "folder of frames"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

// ffmpegOrSkip returns ffmpeg's path. The suite passes on machines without it, except in
// CI, where scripts/test.sh installs it so that the video path is always tested there.
func ffmpegOrSkip(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg not installed: scripts/test.sh installs it in CI")
		}
		t.Skip("ffmpeg is not installed")
	}
	return bin
}

// gradient is a frame whose pixels encode its number, so decoded frames can be identified.
func gradient(n int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for y := range 24 {
		for x := range 32 {
			img.SetRGBA(x, y, color.RGBA{uint8(10 * n), uint8(8 * x), uint8(10 * y), 255})
		}
	}
	return img
}

func TestFFmpegDecodesTheKeptFrames(t *testing.T) {
	bin := ffmpegOrSkip(t)
	dir := t.TempDir()
	for i := range 9 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("in%03d.png", i)), encode(t, gradient(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// FFV1 in RGB is lossless: decoded frames must equal the originals exactly.
	clip := filepath.Join(dir, "clip.mkv")
	if out, err := exec.Command(bin, "-v", "error", "-y", "-framerate", "10", "-i", filepath.Join(dir, "in%03d.png"),
		"-c:v", "ffv1", "-pix_fmt", "bgr0", clip).CombinedOutput(); err != nil {
		t.Fatalf("making the test clip: %v: %s", err, out)
	}
	for _, tc := range []struct {
		o    Options
		want []int
	}{
		{Options{}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{Options{Every: 3}, []int{0, 3, 6}},
		{Options{Every: 2, MaxFrames: 3}, []int{0, 2, 4}},
	} {
		s, err := Open(context.Background(), clip, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		frames := readAll(t, s)
		s.Close()
		if s.Len() != len(tc.want) {
			t.Errorf("%+v: Len %d, want %d", tc.o, s.Len(), len(tc.want))
		}
		if len(frames) != len(tc.want) {
			t.Fatalf("%+v: %d frames, want %d", tc.o, len(frames), len(tc.want))
		}
		for i, f := range frames {
			img, err := Image(f)
			if err != nil {
				t.Fatal(err)
			}
			n := tc.want[i]
			if f.Frame != n || f.Name != fmt.Sprintf("frame %d", n) {
				t.Errorf("%+v: frame %d is numbered %d (%q), want %d", tc.o, i, f.Frame, f.Name, n)
			}
			if r, _, _, _ := img.Pixels.At(5, 5).RGBA(); r>>8 != uint32(10*n) {
				t.Errorf("%+v: frame %d holds the pixels of frame %d, want %d", tc.o, i, r>>8/10, n)
			}
		}
	}
}

func TestFFmpegRefusesWhatItCannotDecode(t *testing.T) {
	ffmpegOrSkip(t)
	bad := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(bad, []byte("not really a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), bad, Options{})
	if err == nil || !strings.Contains(err.Error(), "Invalid data") {
		t.Errorf("a broken video: %v, want ffmpeg's reason", err)
	}
}

func encode(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
