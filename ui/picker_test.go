package ui

import (
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/ui/internal/fake"

	"github.com/diffsim/diffsim/ui/termgfx"
)

// testSource offers fake images (the fake backend loads any "fake:NAME") with solid-colour
// thumbnails; "fake:broken" has none.
type testSource struct{ names []string }

func (s testSource) List() ([]PickItem, error) {
	items := make([]PickItem, len(s.names))
	for i, n := range s.names {
		items[i] = PickItem{Name: n}
	}
	items[0].Note = "yours"
	return items, nil
}

func (s testSource) Thumbnail(name string) (image.Image, error) {
	if name == "fake:broken" {
		return nil, errors.New("not a PNG, JPEG, WebP, BMP, TIFF or GIF image")
	}
	img := image.NewRGBA(image.Rect(0, 0, 16, 12))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})
	return img, nil
}

// pickerModel is a model that starts in the picker over src, sized w×h, its list read.
func pickerModel(t *testing.T, w, h int, src ImageSource, pathA, pathB string) *Model {
	t.Helper()
	m, _ := newTestModelWith(t, w, h, pathA, pathB, func(o *Options) { o.Picker = src })
	if pathA == "" {
		drive(m, m.pk.Open())
	}
	return m
}

func newTestModelWith(t *testing.T, w, h int, pathA, pathB string, change func(*Options)) (*Model, tea.Cmd) {
	t.Helper()
	f := testBackend{fake.New()}
	opts := DefaultOptions()
	opts.Graphics = termgfx.HalfBlock
	dark := true
	opts.Dark = &dark
	opts.ExportDir = t.TempDir()
	change(&opts)
	m := New(t.Context(), f, pathA, pathB, opts)
	m.now = func() time.Time { return fixedNow }
	_, cmd := m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m, cmd
}

func TestPickerPicksAPair(t *testing.T) {
	src := testSource{names: []string{"fake:mine", "fake:brick", "fake:broken", "fake:chelsea", "fake:coffee"}}
	m := pickerModel(t, 100, 30, src, "", "")
	if m.sel.screen != screenPick {
		t.Fatalf("no images given: screen %v, want the picker", m.sel.screen)
	}
	v := m.content()
	for _, want := range []string{"Image A", "type to filter", "5 of 5", "fake:chelsea", "yours", "not a PNG"} {
		if !strings.Contains(v, want) {
			t.Errorf("the picker lacks %q:\n%s", want, v)
		}
	}
	typeText(m, "co q") // letters filter, q among them: it does not quit here
	if v := m.content(); !strings.Contains(v, "0 of 5") {
		t.Errorf("filter %q: %s", m.pk.filter, v)
	}
	send(m, press("backspace"))
	send(m, press("backspace"))
	if v := m.content(); !strings.Contains(v, "1 of 5") || !strings.Contains(v, "fake:coffee") || strings.Contains(v, "fake:chelsea") {
		t.Errorf("filter %q does not show coffee alone:\n%s", m.pk.filter, v)
	}
	send(m, press("enter"))
	if v := m.content(); !strings.Contains(v, "Image B") || !strings.Contains(v, "A: fake:coffee") || !strings.Contains(v, "5 of 5") {
		t.Errorf("after picking A the picker does not ask for B over the whole list:\n%s", v)
	}
	typeText(m, "chel")
	send(m, press("enter"))
	if m.sel.screen != screenMain || m.pair.pathA != "fake:coffee" || m.pair.pathB != "fake:chelsea" || m.pair.a == nil {
		t.Errorf("after picking B: screen %v, pair %q %q loaded %v", m.sel.screen, m.pair.pathA, m.pair.pathB, m.pair.a != nil)
	}
}

func TestPickerBackAndQuit(t *testing.T) {
	src := testSource{names: []string{"fake:a", "fake:b"}}
	m := pickerModel(t, 100, 30, src, "", "")
	typeText(m, "a")
	send(m, press("esc")) // clears the filter
	if m.pk.filter != "" || m.sel.screen != screenPick {
		t.Fatalf("esc with a filter: filter %q, screen %v", m.pk.filter, m.sel.screen)
	}
	send(m, press("enter"))
	send(m, press("esc")) // forgets image A
	if m.pk.first != "" {
		t.Errorf("esc after picking A kept it: %q", m.pk.first)
	}
	send(m, press("esc")) // nothing loaded yet: stays, and says what to do
	if m.sel.screen != screenPick || !strings.Contains(m.content(), "pick two images") {
		t.Errorf("esc with no pair: screen %v\n%s", m.sel.screen, m.content())
	}
	if quit := send(m, press("ctrl+c")); !quit {
		t.Error("ctrl+c does not quit the picker")
	}

	// From the explorer: p opens the picker, esc goes back to the pair.
	m = pickerModel(t, 100, 30, src, "fake:a", "fake:b")
	drive(m, m.loadCmd(m.pair.pathA, m.pair.pathB))
	send(m, press("p"))
	if m.sel.screen != screenPick || !strings.Contains(m.content(), "fake:b") {
		t.Fatalf("p with a picker: screen %v\n%s", m.sel.screen, m.content())
	}
	send(m, press("esc"))
	if m.sel.screen != screenMain {
		t.Errorf("esc in the picker over a loaded pair: screen %v, want the pair", m.sel.screen)
	}
}

// TestPickerNarrow: at 80×24 the list scrolls with its cursor and every line fits.
func TestPickerNarrow(t *testing.T) {
	names := make([]string, 30)
	for i := range names {
		names[i] = "fake:image-with-a-long-name-" + strings.Repeat("x", i)
	}
	m := pickerModel(t, 80, 24, testSource{names: names}, "", "")
	for range 12 {
		send(m, press("down"))
	}
	v := m.content()
	for i, l := range strings.Split(v, "\n") {
		if w := lipglossWidth(l); w > 80 {
			t.Errorf("line %d is %d wide at 80 columns", i, w)
		}
	}
	if !strings.Contains(v, "▸") {
		t.Errorf("the cursor scrolled off the list:\n%s", v)
	}
}
