package main

import (
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// imageMagick is Debian's convert, named by its path: a stand-in convert may come first on
// PATH.
const imageMagick = "/usr/bin/convert"

// kittyPackages are the Debian packages TestKittyShowsPhotos needs.
const kittyPackages = "kitty xvfb xdotool x11-apps imagemagick libgl1-mesa-dri fonts-dejavu-core"

// TestKittyShowsPhotos runs the explorer in a real kitty (Debian's 0.26.5 under Xvfb with
// Mesa's software OpenGL), with the graphics detected, not forced: kitty answers XTVERSION,
// has no Unicode placeholders before 0.28, so the images must be placed directly at their
// cells. The screenshot must show the photos where the View reserved their cells: many
// distinct colours in photo A's area (empty placeholder boxes or text give a handful).
// It fails in CI when kitty is missing, and skips elsewhere.
func TestKittyShowsPhotos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts X and kitty; skipped with -short")
	}
	for _, tool := range []string{"Xvfb", "kitty", "xdotool", "xwd", imageMagick} {
		_, err := exec.LookPath(tool)
		if err == nil && tool == imageMagick {
			// Machine images may put a stand-in convert on PATH: only ImageMagick's will do.
			if out, verr := exec.Command(tool, "-version").Output(); verr != nil || !strings.Contains(string(out), "ImageMagick") {
				err = fmt.Errorf("%s is not ImageMagick", tool)
			}
		}
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found: scripts/test.sh installs %s in CI", tool, kittyPackages)
			}
			t.Skipf("%s not found (apt-get install -y %s)", tool, kittyPackages)
		}
	}
	bin := filepath.Join(t.TempDir(), "diffsim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	args := []string{bin, "testdata/samples/chelsea.png", "testdata/samples/coffee.png"}
	shot := filepath.Join(t.TempDir(), "kitty.png")
	var err error
	for try := range 2 { // a loaded machine may not bring X or kitty up in time: that says nothing about diffsim
		if err = kittyShot(t, args, shot); err == nil {
			break
		}
		t.Logf("try %d: %v", try+1, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("DIFFSIM_KEEP_SHOTS") != "" {
		keep(t, shot)
	}
	img := readPNG(t, shot)
	b := img.Bounds()
	// Photo A sits in the top-left of the window: below the title and caption, in the left
	// half of the image column (which is about two thirds of the width).
	area := image.Rect(b.Min.X+b.Dx()/30, b.Min.Y+b.Dy()/10, b.Min.X+b.Dx()*3/10, b.Min.Y+b.Dy()*4/10)
	if n := distinctColours(img, area); n < 1000 {
		keep(t, shot)
		t.Errorf("photo A's area %v has %d distinct colours: the photo is not drawn (empty placeholder cells or text only)", area, n)
	}
	if f := colourful(t, shot); f < 0.15 {
		keep(t, shot)
		t.Errorf("only %.1f%% of the window is colourful; the photos and heatmaps are missing", 100*f)
	}
}

func distinctColours(img image.Image, r image.Rectangle) int {
	seen := map[[3]uint32]bool{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			seen[[3]uint32{cr >> 8, cg >> 8, cb >> 8}] = true
		}
	}
	return len(seen)
}

// kittyShot starts Xvfb and kitty running argv at 120×40 cells, waits for the explorer to
// draw, and saves a screenshot of kitty's window to path.
func kittyShot(t *testing.T, argv []string, path string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	display, stop, err := startXvfb(ctx)
	if err != nil {
		return err
	}
	defer stop()
	env := append(os.Environ(), "DISPLAY="+display, "LIBGL_ALWAYS_SOFTWARE=1")
	// Drop what would tell diffsim where it runs other than the terminal's own answers.
	env = append(env, "TMUX=", "STY=", "KITTY_WINDOW_ID=", "COLORTERM=")
	cmd := strings.Join(quoteAll(argv), " ") + "; sleep 600"
	term := exec.CommandContext(ctx, "kitty", "--config", "NONE", "-o", "font_size=10",
		"-o", "initial_window_width=120c", "-o", "initial_window_height=40c", "-o", "remember_window_size=no",
		"-o", "background=white", "-o", "foreground=black", "/bin/bash", "-c", cmd)
	term.Env = env
	termLog := &lockedBuffer{}
	term.Stdout, term.Stderr = termLog, termLog
	if err := term.Start(); err != nil {
		return fmt.Errorf("kitty: %w", err)
	}
	defer func() { term.Process.Kill(); term.Wait() }()
	x := &xsession{t: t, env: env}
	for i := 0; i < 900 && x.win == ""; i++ {
		out, _ := x.run("xdotool", "search", "--pid", fmt.Sprint(term.Process.Pid))
		x.win = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		time.Sleep(100 * time.Millisecond)
	}
	if x.win == "" {
		return fmt.Errorf("the kitty window did not appear on %s (kitty said %q)", display, termLog.String())
	}
	x.wait(8 * time.Second) // model load, first score and the images
	// kitty's OpenGL window does not answer xwd -id; the root window holds what it drew,
	// on the black of an empty X screen, which -trim cuts away.
	c := exec.Command("sh", "-c", "xwd -silent -root | "+imageMagick+" xwd:- -trim +repage "+path)
	c.Env = env
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("screenshot: %v %s", err, out)
	}
	return nil
}
