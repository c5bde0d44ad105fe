// Command demo shows one heatmap and one photograph placed through termgfx.Writer in a
// Bubble Tea v2 program: the example of the placement pattern, and what
// ../shared/tools/term-shot screenshots. Keys: → / space moves the hot spot, q quits.
//
//	go run ./ui/termgfx/internal/demo [--graphics auto|sixel|kitty|halfblock|quadrant|none] [PHOTO]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"math"
	"os"
	"strings"

	_ "image/jpeg"
	_ "image/png"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/ui/termgfx"
)

func main() { os.Exit(run()) }

const (
	imgCols, imgRows = 30, 12
	top, left, gap   = 2, 2, 4
)

func run() int {
	var force termgfx.Protocol
	flag.Var(&force, "graphics", "auto|sixel|kitty|halfblock|quadrant|none")
	doctor := flag.Bool("doctor", false, "print what was detected and why, then exit")
	flag.Parse()
	path := "../shared/samples/chelsea.png"
	if flag.NArg() > 0 {
		path = flag.Arg(0)
	}
	caps, err := termgfx.Detect(context.Background(), os.Stdin, os.Stdout, 0, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: terminal detection:", err)
	}
	caps = caps.Force(force)
	if *doctor {
		fmt.Printf("graphics: %s, cell %d×%d px, true colour %v\n", caps.Protocol, caps.CellW, caps.CellH, caps.TrueColor)
		for _, r := range caps.Reason {
			fmt.Println("  " + r)
		}
		return 0
	}

	photo, err := load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	w := termgfx.NewWriter(os.Stdout)
	defer w.Close()
	m := newModel(caps, w, photo)
	// Bubble Tea guessed a 16-colour profile under xterm (docs/terminal.md), which ruins
	// half-blocks: tell it what Detect found.
	profile := colorprofile.ANSI256
	if caps.TrueColor {
		profile = colorprofile.TrueColor
	}
	if _, err := tea.NewProgram(m, tea.WithOutput(w), tea.WithColorProfile(profile)).Run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	return 0
}

// keyMap holds the demo's two bindings.
type keyMap struct {
	Next, Quit key.Binding
}

func defaultKeyMap() keyMap {
	return keyMap{
		Next: key.NewBinding(key.WithKeys("right", "space", "l"), key.WithHelp("→", "move the hot spot")),
		Quit: key.NewBinding(key.WithKeys("q", "esc", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

type model struct {
	keys     keyMap
	caps     termgfx.Caps
	w        *termgfx.Writer
	photo    image.Image
	photoEnc []byte // encoded once: photos never change
	heatEnc  []byte
	sixel    *heatmap.SixelEncoder
	step     int
	width    int
}

func newModel(caps termgfx.Caps, w *termgfx.Writer, photo image.Image) *model {
	m := &model{keys: defaultKeyMap(), caps: caps, w: w, sixel: &heatmap.SixelEncoder{}}
	pw, ph := caps.Pixels(imgCols, imgRows)
	m.photo = heatmap.Fit(photo, pw, ph)
	switch caps.Protocol {
	case termgfx.Sixel:
		var b bytes.Buffer
		_ = m.sixel.Encode(&b, heatmap.Quantize(m.photo, 255))
		m.photoEnc = b.Bytes()
		w.Place("photo", termgfx.Area{Row: top, Col: left + imgCols + gap, Rows: imgRows, Cols: imgCols}, m.photoEnc)
	case termgfx.Kitty:
		var b bytes.Buffer
		_ = (&heatmap.KittyEncoder{ID: 2, Compress: true, Virtual: true, Cols: imgCols, Rows: imgRows}).Encode(&b, m.photo)
		w.Transmit("photo", b.Bytes(), []byte(heatmap.KittyDelete(2)))
	}
	m.placeHeat()
	return m
}

func (m *model) grid() heatmap.Grid {
	g := heatmap.Grid{W: 16, H: 16, Values: make([]float32, 256)}
	cx := 0.2 + 0.6*math.Mod(float64(m.step)*0.15, 1)
	for y := range 16 {
		for x := range 16 {
			fx, fy := float64(x)/15, float64(y)/15
			g.Values[y*16+x] = float32(math.Exp(-((fx-cx)*(fx-cx)+(fy-0.5)*(fy-0.5))*8) + 0.2*math.Sin(5*fx*fy))
		}
	}
	return g
}

func (m *model) heatImage() *image.Paletted {
	g := m.grid()
	lo, hi, _ := g.Range()
	pw, ph := m.caps.Pixels(imgCols, imgRows)
	img := heatmap.Render(g, heatmap.Viridis(), lo, hi, pw, ph)
	heatmap.DrawCursor(img, g.W, g.H, m.step%16, 8, image.White)
	return img
}

func (m *model) placeHeat() {
	area := termgfx.Area{Row: top, Col: left, Rows: imgRows, Cols: imgCols}
	var b bytes.Buffer
	switch m.caps.Protocol {
	case termgfx.Sixel:
		_ = m.sixel.Encode(&b, m.heatImage())
		m.heatEnc = b.Bytes()
		m.w.Place("heat", area, m.heatEnc)
	case termgfx.Kitty:
		_ = (&heatmap.KittyEncoder{ID: 1, Compress: true, Virtual: true, Cols: imgCols, Rows: imgRows}).Encode(&b, m.heatImage())
		m.heatEnc = b.Bytes()
		m.w.Transmit("heat", m.heatEnc, []byte(heatmap.KittyDelete(1)))
	}
}

func (m *model) Init() tea.Cmd { return nil }

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, m.keys.Quit):
			m.w.Clear() // no image writes may follow the last frame
			return m, tea.Quit
		case key.Matches(msg, m.keys.Next):
			m.step++
			m.placeHeat()
		}
	}
	return m, nil
}

func (m *model) View() tea.View {
	var sb strings.Builder
	fmt.Fprintf(&sb, "  termgfx demo: %s, cell %d×%d px   (→ moves the hot spot, q quits)\n\n", m.caps.Protocol, m.caps.CellW, m.caps.CellH)
	var heat, photo []string
	switch m.caps.Protocol {
	case termgfx.HalfBlock:
		mode := heatmap.ANSI256
		if m.caps.TrueColor {
			mode = heatmap.TrueColor
		}
		heat = strings.Split(heatmap.HalfBlock(m.heatImage(), imgCols, imgRows, mode), "\n")
		photo = strings.Split(heatmap.HalfBlock(m.photo, imgCols, imgRows, mode), "\n")
	case termgfx.Kitty:
		heat = strings.Split(heatmap.KittyPlaceholder(1, imgCols, imgRows), "\n")
		photo = strings.Split(heatmap.KittyPlaceholder(2, imgCols, imgRows), "\n")
	}
	blank := strings.Repeat(" ", imgCols)
	for r := range imgRows {
		h, p := blank, blank
		if r < len(heat) {
			h = heat[r]
		}
		if r < len(photo) {
			p = photo[r]
		}
		sb.WriteString(strings.Repeat(" ", left) + h + strings.Repeat(" ", gap) + p + "\n")
	}
	fmt.Fprintf(&sb, "\n  step %d: token (%d, 8) boxed   heatmap %d bytes", m.step, m.step%16, len(m.heatEnc))
	v := tea.NewView(sb.String())
	v.AltScreen = true
	return v
}

func load(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open photo: %w (pass a PNG or JPEG path)", err)
	}
	defer f.Close()
	m, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return m, nil
}
