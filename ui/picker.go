package ui

// The picker: a list of the images a source offers (the SSH front's images folder and the
// user's uploads), each with a small preview, filtered as the user types; Enter picks image
// A, then image B, and the root opens the pair.

import (
	"fmt"
	"image"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/heatmap"
)

// ImageSource is a collection of images to pick from. Names are what the explorer's backend
// loads. Both methods are called off the UI goroutine.
type ImageSource interface {
	// List returns the images on offer, in the order to show them.
	List() ([]PickItem, error)
	// Thumbnail returns a small version of the image (a few hundred pixels at most), to draw
	// as a preview.
	Thumbnail(name string) (image.Image, error)
}

// PickItem is one image on offer.
type PickItem struct {
	Name string // as the backend loads it
	Note string // shown after the name: "yours", "uploaded 2m ago"…
}

// pickListMsg carries the source's list.
type pickListMsg struct {
	items []PickItem
	err   error
}

// pickThumbMsg carries one image's preview.
type pickThumbMsg struct {
	name string
	img  image.Image
	err  error
}

// pickedMsg asks the root to open the pair the user picked.
type pickedMsg struct{ a, b string }

// pickCancelMsg says the user left the picker without picking a pair.
type pickCancelMsg struct{}

// pickerKeyMap are the picker's keys; typed letters filter.
type pickerKeyMap struct {
	Up, Down, PageUp, PageDown key.Binding
	Pick, Erase, Back          key.Binding
	Interrupt                  key.Binding
}

func defaultPickerKeys() pickerKeyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return pickerKeyMap{
		Up:        b([]string{"up", "ctrl+p"}, "↑", "up"),
		Down:      b([]string{"down", "ctrl+n"}, "↓", "down"),
		PageUp:    b([]string{"pgup"}, "pgup", "page up"),
		PageDown:  b([]string{"pgdown"}, "pgdn", "page down"),
		Pick:      b([]string{"enter"}, "enter", "pick"),
		Erase:     b([]string{"backspace"}, "⌫", "erase"),
		Back:      b([]string{"esc"}, "esc", "clear / back"),
		Interrupt: b([]string{"ctrl+c"}, "ctrl+c", "quit"),
	}
}

func (k pickerKeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Pick, k.Up, k.Down, k.Erase, k.Back, k.Interrupt}
}

func (k pickerKeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Pick, k.Erase, k.Back, k.Interrupt}}
}

// Preview sizes in cells: each row of the list has a small one; the highlighted image has a
// larger one beside the list when the width allows.
const (
	thumbCols, thumbRows = 6, 2 // two lines per entry
	minPreviewCols       = 24   // narrower than this, no large preview
)

// picker lists a source's images. It owns its filter, cursor and previews; the root owns
// what happens with the pair picked.
type picker struct {
	st   Styles
	keys pickerKeyMap
	src  ImageSource
	mode heatmap.HalfBlockMode
	w, h int

	items   []PickItem
	shown   []int // indexes into items that match the filter
	filter  string
	cursor  int // into shown
	top     int // first entry of shown on screen
	first   string
	loading bool
	err     error

	thumbs map[string]image.Image
	failed map[string]error
	asked  map[string]bool
	drawn  map[string]string // rendered previews, by name and size
}

func newPicker(st Styles, src ImageSource, trueColor bool) picker {
	p := picker{st: st, keys: defaultPickerKeys(), src: src, mode: heatmap.ANSI256,
		thumbs: map[string]image.Image{}, failed: map[string]error{}, asked: map[string]bool{}, drawn: map[string]string{}}
	if trueColor {
		p.mode = heatmap.TrueColor
	}
	return p
}

// SetSize gives the picker its cells.
func (p *picker) SetSize(w, h int) { p.w, p.h = w, h }

// SetStyles restyles the picker (its previews keep their colours).
func (p *picker) SetStyles(st Styles) { p.st = st }

func (p picker) ShortHelp() []key.Binding  { return p.keys.ShortHelp() }
func (p picker) FullHelp() [][]key.Binding { return p.keys.FullHelp() }

// Open starts a pick: the list is read again (uploads may have arrived) and the filter and
// the first pick are cleared.
func (p *picker) Open() tea.Cmd {
	p.filter, p.first, p.cursor, p.top, p.loading, p.err = "", "", 0, 0, true, nil
	src := p.src
	return func() tea.Msg {
		items, err := src.List()
		return pickListMsg{items: items, err: err}
	}
}

// Update handles the picker's keys and messages.
func (p picker) Update(msg tea.Msg) (picker, tea.Cmd) {
	switch msg := msg.(type) {
	case pickListMsg:
		p.loading, p.items, p.err = false, msg.items, msg.err
		p.refilter()
		return p, p.thumbCmd()
	case pickThumbMsg:
		if msg.err != nil {
			p.failed[msg.name] = msg.err
		} else {
			p.thumbs[msg.name] = msg.img
		}
		return p, nil
	case tea.KeyPressMsg:
		return p.key(msg)
	}
	return p, nil
}

func (p picker) key(msg tea.KeyPressMsg) (picker, tea.Cmd) {
	k := p.keys
	switch {
	case key.Matches(msg, k.Up):
		p.move(-1)
	case key.Matches(msg, k.Down):
		p.move(1)
	case key.Matches(msg, k.PageUp):
		p.move(-max(p.rows(), 1))
	case key.Matches(msg, k.PageDown):
		p.move(max(p.rows(), 1))
	case key.Matches(msg, k.Pick):
		if len(p.shown) == 0 {
			return p, nil
		}
		name := p.items[p.shown[p.cursor]].Name
		if p.first == "" {
			p.first, p.filter = name, ""
			p.refilter()
			return p, p.thumbCmd()
		}
		a := p.first
		p.first = ""
		return p, func() tea.Msg { return pickedMsg{a: a, b: name} }
	case key.Matches(msg, k.Erase):
		if p.filter != "" {
			r := []rune(p.filter)
			p.filter = string(r[:len(r)-1])
			p.refilter()
		}
	case key.Matches(msg, k.Back):
		switch {
		case p.filter != "":
			p.filter = ""
			p.refilter()
		case p.first != "":
			p.first = ""
		default:
			return p, func() tea.Msg { return pickCancelMsg{} }
		}
	default:
		if msg.Text == "" || msg.Mod&(tea.ModCtrl|tea.ModAlt|tea.ModMeta|tea.ModSuper) != 0 {
			return p, nil
		}
		p.filter += msg.Text
		p.refilter()
	}
	return p, p.thumbCmd()
}

// refilter keeps the items whose name holds every word of the filter, ignoring case.
func (p *picker) refilter() {
	words := strings.Fields(strings.ToLower(p.filter))
	p.shown = p.shown[:0]
	for i, it := range p.items {
		name := strings.ToLower(it.Name)
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(name, w)
		}
		if ok {
			p.shown = append(p.shown, i)
		}
	}
	p.cursor, p.top = 0, 0
}

func (p *picker) move(d int) {
	if len(p.shown) == 0 {
		return
	}
	p.cursor = min(max(p.cursor+d, 0), len(p.shown)-1)
	if rows := max(p.rows(), 1); p.cursor >= p.top+rows {
		p.top = p.cursor - rows + 1
	}
	p.top = min(p.top, p.cursor)
}

// rows is how many entries the list shows: two lines each, under the one-line header.
func (p *picker) rows() int { return (p.h - 1) / thumbRows }

// thumbCmd asks for the previews of the entries on screen that have none yet.
func (p *picker) thumbCmd() tea.Cmd {
	var cmds []tea.Cmd
	for i := p.top; i < min(p.top+max(p.rows(), 1), len(p.shown)); i++ {
		name := p.items[p.shown[i]].Name
		if p.asked[name] {
			continue
		}
		p.asked[name] = true
		src := p.src
		cmds = append(cmds, func() tea.Msg {
			img, err := src.Thumbnail(name)
			return pickThumbMsg{name: name, img: img, err: err}
		})
	}
	return tea.Batch(cmds...)
}

// View draws the header line and the list, with the highlighted image's preview beside it.
func (p *picker) View() string {
	if p.w <= 0 || p.h <= 0 {
		return ""
	}
	st := p.st
	which := st.Prompt.Render("Image A")
	if p.first != "" {
		which = st.Prompt.Render("Image B") + st.Dim.Render(" (A: "+p.first+")")
	}
	count := fmt.Sprintf("  %d of %d", len(p.shown), len(p.items))
	header := " " + which + st.Label.Render(" · type to filter › ") + st.Value.Render(p.filter) + st.Cursorline.Render(" ") + st.Dim.Render(count)
	lines := []string{header}

	listW := p.w
	previewW := 0
	if p.w >= 2*minPreviewCols+thumbCols {
		previewW = p.w * 2 / 5
		listW = p.w - previewW - 1
	}
	var list []string
	switch {
	case p.loading:
		list = []string{st.Dim.Render(" reading the images folder…")}
	case p.err != nil:
		list = []string{st.Error.Render(" ✗ " + oneLine(p.err.Error()))}
	case len(p.items) == 0:
		list = []string{st.Dim.Render(" no images here yet: upload some with scp or sftp")}
	case len(p.shown) == 0:
		list = []string{st.Dim.Render(" nothing matches; ⌫ or esc to widen the filter")}
	}
	rows := max(p.rows(), 1)
	if list == nil {
		for i := p.top; i < min(p.top+rows, len(p.shown)); i++ {
			list = append(list, p.entry(i, listW)...)
		}
	}
	list = strings.Split(block(strings.Join(list, "\n"), listW, p.h-1), "\n")
	if previewW > 0 {
		pre := strings.Split(block(p.preview(previewW, p.h-1), previewW, p.h-1), "\n")
		for i := range list {
			list[i] += " " + pre[i]
		}
	}
	return block(strings.Join(append(lines, list...), "\n"), p.w, p.h)
}

// entry is the two lines of entry i of the shown list: the preview, then the name and the
// note, highlighted under the cursor.
func (p *picker) entry(i, w int) []string {
	it := p.items[p.shown[i]]
	cur := i == p.cursor
	mark := "  "
	if cur {
		mark = p.st.Selected.Render("▸ ")
	}
	thumb := strings.Split(p.thumb(it.Name, thumbCols, thumbRows), "\n")
	nameW := max(w-thumbCols-4, 1)
	name := padRight(ellipsize(it.Name, nameW), nameW)
	if cur {
		name = p.st.Selected.Render(name)
	}
	note := it.Note
	if err, ok := p.failed[it.Name]; ok {
		note = "✗ " + oneLine(err.Error())
	}
	return []string{
		mark + thumb[0] + " " + name,
		"  " + thumb[min(1, len(thumb)-1)] + " " + p.st.Dim.Render(ellipsize(note, nameW)),
	}
}

// thumb is name's preview in cols × rows half-block cells, or blank cells until it arrives.
func (p *picker) thumb(name string, cols, rows int) string {
	img, ok := p.thumbs[name]
	if !ok {
		return block("", cols, rows)
	}
	k := fmt.Sprintf("%s\x00%dx%d", name, cols, rows)
	if s, ok := p.drawn[k]; ok {
		return s
	}
	s := heatmap.HalfBlock(heatmap.Fit(img, cols, 2*rows), cols, rows, p.mode)
	if len(p.drawn) > 1024 { // resizes leave previews of sizes no longer drawn
		clear(p.drawn)
	}
	p.drawn[k] = s
	return s
}

// preview is the highlighted image, as large as w × h cells allow.
func (p *picker) preview(w, h int) string {
	if len(p.shown) == 0 || h < 2 {
		return ""
	}
	it := p.items[p.shown[p.cursor]]
	return p.st.Dim.Render(ellipsize(it.Name, w)) + "\n" + p.thumb(it.Name, w, h-1)
}
