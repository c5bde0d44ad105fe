package main

import (
	"context"
	"fmt"
	"github.com/diffsim/diffsim/engine/enginetest"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSixelSurvivesResize runs the explorer in a real sixel terminal (xterm as a VT340 under
// Xvfb, as ../shared/tools/term-shot does), presses a key, resizes the window, and compares
// the screen with the explorer launched at the new size from the start: the same state must
// give the same pixels, so no image was left at an old place or lost in the redraw.
// It also checks that the images are there at all (colourful pixels in the image rows).
func TestSixelSurvivesResize(t *testing.T) {
	if testing.Short() {
		t.Skip("starts X and xterm; skipped with -short")
	}
	enginetest.Runtime(t) // the explorer needs ONNX Runtime: skip (or fail in CI) by the usual rule
	for _, tool := range []string{"Xvfb", "xterm", "xdotool", "xwd", "convert"} {
		_, err := exec.LookPath(tool)
		if err == nil && tool == "convert" {
			// Machine images may put a stand-in convert on PATH: only ImageMagick's will do.
			if out, verr := exec.Command("convert", "-version").Output(); verr != nil || !strings.Contains(string(out), "ImageMagick") {
				err = fmt.Errorf("convert on PATH is not ImageMagick")
			}
		}
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found: scripts/test.sh installs xterm xvfb xdotool x11-apps imagemagick xfonts-base in CI", tool)
			}
			t.Skipf("%s not found (apt-get install -y xterm xvfb xdotool x11-apps imagemagick xfonts-base)", tool)
		}
	}
	bin := filepath.Join(t.TempDir(), "diffsim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	args := []string{bin, "testdata/samples/chelsea.png", "testdata/samples/coffee.png", "--graphics", "sixel"}
	dir := t.TempDir()

	resized := filepath.Join(dir, "resized.png")
	first := filepath.Join(dir, "first.png")
	xtermRetry(t, "120x40", args, func(x *xsession) {
		x.wait(5 * time.Second)
		x.key("Right") // move the token cursor: a new attention map is drawn
		x.wait(2 * time.Second)
		x.shot(first)
		x.resize(100, 32)
		x.wait(4 * time.Second)
		x.shot(resized)
	})
	fresh := filepath.Join(dir, "fresh.png")
	xtermRetry(t, "100x32", args, func(x *xsession) {
		x.wait(5 * time.Second)
		x.key("Right")
		x.wait(3 * time.Second)
		x.shot(fresh)
	})

	for _, p := range []string{first, resized} {
		if f := colourful(t, p); f < 0.15 {
			t.Errorf("%s: only %.1f%% of the window is colourful; the photos and heatmaps are missing", filepath.Base(p), 100*f)
		}
	}
	if os.Getenv("DIFFSIM_KEEP_SHOTS") != "" {
		keep(t, first, resized, fresh)
	}
	if d := difference(t, resized, fresh); d > 0.03 {
		keep(t, resized, fresh)
		t.Errorf("after a resize to 100x32 the screen differs from a fresh start at 100x32 in %.1f%% of its pixels", 100*d)
	}
}

type xsession struct {
	t   *testing.T
	win string
	env []string
}

// xtermRetry is xterm, tried once more when the X server or the terminal did not come up
// (a loaded machine): that says nothing about diffsim.
func xtermRetry(t *testing.T, geom string, argv []string, steps func(*xsession)) {
	t.Helper()
	err := xterm(t, geom, argv, steps)
	if err != nil {
		t.Logf("%v; trying again", err)
		err = xterm(t, geom, argv, steps)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// xterm starts Xvfb and an xterm running argv, calls steps, and tears everything down.
func xterm(t *testing.T, geom string, argv []string, steps func(*xsession)) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	display, stop, err := startXvfb(ctx)
	if err != nil {
		return err
	}
	defer stop()
	env := append(os.Environ(), "DISPLAY="+display, "COLORTERM=truecolor")
	cmd := strings.Join(quoteAll(argv), " ") + "; sleep 600"
	term := exec.CommandContext(ctx, "xterm", "-ti", "vt340", "-fa", "", "-fs", "10", "-geometry", geom+"+0+0",
		"-xrm", "XTerm*allowWindowOps: true", "-xrm", "XTerm*sixelScrolling: true",
		"-xrm", "XTerm*numColorRegisters: 1024", "-xrm", "XTerm*maxGraphicSize: 4096x4096",
		"-bg", "white", "-fg", "black", "-e", "bash", "-c", cmd)
	term.Env = env
	termLog := &lockedBuffer{}
	term.Stdout, term.Stderr = termLog, termLog
	if err := term.Start(); err != nil {
		return fmt.Errorf("xterm: %w", err)
	}
	defer func() { term.Process.Kill(); term.Wait() }()
	x := &xsession{t: t, env: env}
	for i := 0; i < 900 && x.win == ""; i++ { // 90 s: the test suite may be compiling beside us
		out, _ := x.run("xdotool", "search", "--pid", fmt.Sprint(term.Process.Pid))
		x.win = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		time.Sleep(100 * time.Millisecond)
	}
	if x.win == "" {
		out, _ := exec.Command("sh", "-c", "ls -la /tmp/.X11-unix/; ps aux | grep -c '[X]vfb'").CombinedOutput()
		return fmt.Errorf("the xterm window did not appear on %s (xterm said %q; %s)", display, termLog.String(), out)
	}
	steps(x)
	return nil
}

func (x *xsession) run(name string, args ...string) ([]byte, error) {
	c := exec.Command(name, args...)
	c.Env = x.env
	return c.Output()
}

func (x *xsession) wait(d time.Duration) { time.Sleep(d) }

func (x *xsession) key(k string) {
	if _, err := x.run("xdotool", "key", "--window", x.win, k); err != nil {
		x.t.Fatalf("xdotool key %s: %v", k, err)
	}
}

func (x *xsession) resize(cols, rows int) {
	if _, err := x.run("xdotool", "windowsize", "--usehints", x.win, fmt.Sprint(cols), fmt.Sprint(rows)); err != nil {
		x.t.Fatalf("xdotool windowsize: %v", err)
	}
}

func (x *xsession) shot(path string) {
	c := exec.Command("sh", "-c", "xwd -silent -id "+x.win+" | convert xwd:- "+path)
	c.Env = x.env
	if out, err := c.CombinedOutput(); err != nil {
		x.t.Fatalf("screenshot: %v %s", err, out)
	}
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// colourful is the fraction of pixels whose channels differ by more than 40 levels: text is
// black on white, the photos and heatmaps are not.
func colourful(t *testing.T, path string) float64 {
	img := readPNG(t, path)
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			hi, lo := max(r, g, bl)>>8, min(r, g, bl)>>8
			if hi-lo > 40 {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

// difference is the fraction of pixels that differ by more than 48 levels in some channel
// (1 when the sizes differ).
func difference(t *testing.T, a, b string) float64 {
	ia, ib := readPNG(t, a), readPNG(t, b)
	if ia.Bounds() != ib.Bounds() {
		t.Logf("sizes differ: %v vs %v", ia.Bounds(), ib.Bounds())
		return 1
	}
	bd := ia.Bounds()
	n := 0
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r1, g1, b1, _ := ia.At(x, y).RGBA()
			r2, g2, b2, _ := ib.At(x, y).RGBA()
			d := max(absDiff(r1, r2), absDiff(g1, g2), absDiff(b1, b2)) >> 8
			if d > 48 {
				n++
			}
		}
	}
	return float64(n) / float64(bd.Dx()*bd.Dy())
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// keep copies failing screenshots where a person can look at them.
func keep(t *testing.T, paths ...string) {
	dir := filepath.Join(os.TempDir(), "diffsim-screenshots")
	os.MkdirAll(dir, 0o755)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err == nil {
			os.WriteFile(filepath.Join(dir, filepath.Base(p)), data, 0o644)
		}
	}
	t.Logf("screenshots kept in %s", dir)
}

// lockedBuffer collects a process's output while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startXvfb starts a private X server on the first free display from :90 and waits for its
// socket; stop ends it.
func startXvfb(ctx context.Context) (display string, stop func(), err error) {
	for d := 90; d < 200; d++ {
		_, e1 := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", d))
		_, e2 := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", d))
		if os.IsNotExist(e1) && os.IsNotExist(e2) {
			display = fmt.Sprintf(":%d", d)
			break
		}
	}
	if display == "" {
		return "", nil, fmt.Errorf("Xvfb: no free display between :90 and :199")
	}
	xvfb := exec.CommandContext(ctx, "Xvfb", display, "-screen", "0", "1920x1200x24", "-nolisten", "tcp")
	if err := xvfb.Start(); err != nil {
		return "", nil, fmt.Errorf("Xvfb: %w", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat("/tmp/.X11-unix/X" + display[1:]); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return display, func() { xvfb.Process.Signal(os.Interrupt); xvfb.Wait() }, nil
}
