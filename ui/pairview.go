package ui

// The pair view: the two photos and the three maps with their captions, the token cursor
// and the overlay. Its pictures are composed off the UI goroutine (render.go) and either
// drawn here as half-block or kitty placeholder text, or placed over blank cells by the
// Writer (placement.go). It is a component like the layer list: the root hands it its size
// and what it shows (the pair, the layer, the latest result), routes its keys and clicks
// to it, and answers its tokenMsg by asking the backend for the new token's maps, since
// every request depends on the whole view.

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// overlayMode is what is blended over the photographs.
type overlayMode int

const (
	overlayNone overlayMode = iota
	overlayCos              // A's and B's token cosine maps
	overlayAttn             // the selected token's attention over B
	overlayModes
)

func (o overlayMode) String() string {
	return [...]string{"off", "cosine maps", "attention"}[o]
}

// pairKeyMap are the pair view's own keys: the token cursor and the overlay.
type pairKeyMap struct{ Up, Down, Left, Right, Overlay key.Binding }

// pairKeys takes the pair view's keys from the explorer's, so that rebinding them there
// (a clip gives ← and → to the frames) rebinds them here.
func pairKeys(k KeyMap) pairKeyMap {
	return pairKeyMap{Up: k.Up, Down: k.Down, Left: k.Left, Right: k.Right, Overlay: k.Overlay}
}

func (k pairKeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.Left, k.Right, k.Overlay}
}

func (k pairKeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.Up, k.Down, k.Left, k.Right}, {k.Overlay}}
}

// pairData is what the pair view shows that the root owns.
type pairData struct {
	a, b         *api.Image
	pathA, pathB string
	res          *api.Result // nil unless it answers the current layer: maps of another grid would mislead
	layer        api.Layer   // the current layer; its grid is the token grid
	show         bool        // the main screen with its images is on screen
}

// tokenMsg says the token cursor was set; the root asks the backend for the token's maps.
type tokenMsg struct{}

// pairView is the pair view component. Create it with newPairView.
type pairView struct {
	st      Styles
	keys    pairKeyMap
	caps    termgfx.Caps
	placer  imagePlacer // nil unless images are placed outside the View
	onFirst func()      // called once, when both photos are first shown
	first   bool        // onFirst was called

	x, y, w, h int // cells on screen
	panes      [numPanes]rect

	d pairData

	cx, cy  float64 // token cursor as a fraction of the grid: it survives a change of grid
	overlay overlayMode

	render *renderer
	pics   pictures // the pictures on screen
	seq    int      // last render asked for
	shown  int      // seq of the pictures shown
}

// newPairView returns the pair view drawing with caps. Half-blocks start without the
// overlay: two pixels per cell cannot show a photo and a map at once, the tint wins and
// the photo becomes a blob; the maps stay in their own panes and o turns the overlay on.
func newPairView(st Styles, keys pairKeyMap, caps termgfx.Caps) pairView {
	p := pairView{st: st, keys: keys, caps: caps, cx: 0.5, cy: 0.5, overlay: overlayCos, render: newRenderer()}
	if p.textImages() {
		p.overlay = overlayNone
	}
	return p
}

// SetSize lays the panes out in w×h cells.
func (p *pairView) SetSize(w, h int) {
	p.w, p.h = w, h
	p.panes = [numPanes]rect{}
	if w > 0 && h > 0 {
		_, p.panes = pairPanes(rect{p.x, p.y, w, h}, p.cellAspect())
	}
}

// setOrigin puts the view's top left corner at cell (x, y) of the screen: sixel and kitty
// images are placed at screen cells.
func (p *pairView) setOrigin(x, y int) {
	p.x, p.y = x, y
	p.SetSize(p.w, p.h)
}

// SetData hands the view what the root owns.
func (p *pairView) SetData(d pairData) { p.d = d }

func (p *pairView) SetStyles(st Styles) { p.st = st }

// Update moves the token cursor, cycles the overlay and takes new pictures. Clicks come
// in the view's own coordinates.
func (p pairView) Update(msg tea.Msg) (pairView, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		// The command is taken before p is returned: p's fields change in the call, and Go
		// does not order reading p against a call in the same return statement.
		var cmd tea.Cmd
		k := p.keys
		switch {
		case key.Matches(msg, k.Up):
			cmd = p.moveToken(0, -1)
		case key.Matches(msg, k.Down):
			cmd = p.moveToken(0, 1)
		case key.Matches(msg, k.Left):
			cmd = p.moveToken(-1, 0)
		case key.Matches(msg, k.Right):
			cmd = p.moveToken(1, 0)
		case key.Matches(msg, k.Overlay):
			p.overlay = (p.overlay + 1) % overlayModes
			cmd = p.renderCmd()
		}
		return p, cmd
	case tea.MouseClickMsg:
		x, y := msg.X+p.x, msg.Y+p.y
		for _, pn := range []pane{paneA, paneB, paneMapA} {
			if r := p.panes[pn]; r.contains(x, y) {
				cmd := p.clickToken(pn, x-r.X, y-r.Y)
				return p, cmd
			}
		}
	case picturesMsg:
		if msg.seq > p.shown {
			p.shown = msg.seq
			p.pics = msg.pics
			p.place(true)
			if !p.first && p.onFirst != nil && hasPhoto(p.pics.panes[paneA]) && hasPhoto(p.pics.panes[paneB]) {
				p.first = true
				p.onFirst()
			}
		}
	}
	return p, nil
}

// View draws the view: exactly its size, one line per row.
func (p pairView) View() string { return strings.Join(p.lines(), "\n") }

func (p pairView) ShortHelp() []key.Binding  { return p.keys.ShortHelp() }
func (p pairView) FullHelp() [][]key.Binding { return p.keys.FullHelp() }

// grid returns the current layer's token grid (0×0 when it has none).
func (p *pairView) grid() (w, h int) { return p.d.layer.GridW, p.d.layer.GridH }

// tokenIn returns the cursor's token in a w×h grid, and its index (-1 without a grid).
func (p *pairView) tokenIn(w, h int) (tx, ty, idx int) {
	if w <= 0 || h <= 0 {
		return 0, 0, -1
	}
	tx = min(max(int(p.cx*float64(w)), 0), w-1)
	ty = min(max(int(p.cy*float64(h)), 0), h-1)
	return tx, ty, ty*w + tx
}

func (p *pairView) token() (tx, ty, idx int) { return p.tokenIn(p.grid()) }

// setToken puts the cursor on token (tx, ty) of the current grid.
func (p *pairView) setToken(tx, ty int) tea.Cmd {
	w, h := p.grid()
	if w <= 0 || h <= 0 {
		return nil
	}
	tx, ty = min(max(tx, 0), w-1), min(max(ty, 0), h-1)
	p.cx, p.cy = (float64(tx)+0.5)/float64(w), (float64(ty)+0.5)/float64(h)
	return func() tea.Msg { return tokenMsg{} }
}

func (p *pairView) moveToken(dx, dy int) tea.Cmd {
	tx, ty, idx := p.token()
	if idx < 0 {
		return nil
	}
	return p.setToken(tx+dx, ty+dy)
}

// lines draws the photos and the maps with their captions, one string per row of
// exactly the column's width. The half-block rows are known to be their pane's width, so
// nothing here measures them: measuring ANSI text is what makes a View slow.
func (p *pairView) lines() []string {
	st := p.st
	w := p.w
	pa, pb := p.panes[paneA], p.panes[paneB]
	tx, ty, _ := p.token()
	rows := make([]string, 0, p.h)
	pad := func(used int) string { return strings.Repeat(" ", max(w-used, 0)) }
	rows = append(rows, block(st.Caption.Render("A "+filepath.Base(p.d.pathA)+rangeNote(p.pics.panes[paneA])), pa.W, 1)+" "+
		block(st.Caption.Render("B "+filepath.Base(p.d.pathB)+rangeNote(p.pics.panes[paneB])), pb.W, 1)+pad(pa.W+pb.W+1))
	for i := range pa.H {
		rows = append(rows, p.paneLine(paneA, i)+" "+p.paneLine(paneB, i)+pad(pa.W+pb.W+1))
	}
	maps := []pane{paneMapA, paneMapB, paneAttn}
	titles := []string{"cos A (self vs cross)", "cos B", fmt.Sprintf("attention of A %d,%d over B", tx, ty)}
	if p.panes[paneMapA].W < 24 {
		// Short titles, so that narrow panes keep them apart and whole.
		titles = []string{"cos A", "cos B", fmt.Sprintf("attn A %d,%d → B", tx, ty)}
	}
	var capRow strings.Builder
	used := 0
	for i, pn := range maps {
		if i > 0 {
			capRow.WriteByte(' ')
			used++
		}
		capRow.WriteString(block(st.Caption.Render(titles[i]), p.panes[pn].W, 1))
		used += p.panes[pn].W
	}
	rows = append(rows, capRow.String()+pad(used))
	for i := range p.panes[paneMapA].H {
		rows = append(rows, p.paneLine(paneMapA, i)+" "+p.paneLine(paneMapB, i)+" "+p.paneLine(paneAttn, i)+pad(used))
	}
	for len(rows) < p.h {
		rows = append(rows, pad(0))
	}
	return rows[:p.h]
}

func rangeNote(p picture) string {
	if !p.ok {
		return ""
	}
	return " " + fmtRange(float64(p.lo), float64(p.hi))
}

// fmtRange prints lo–hi with enough decimals to tell them apart.
func fmtRange(lo, hi float64) string {
	d := 2
	if span := hi - lo; span > 0 {
		d = min(max(int(math.Ceil(-math.Log10(span)))+1, 2), 5)
	}
	return fmt.Sprintf("%.*f–%.*f", d, lo, d, hi)
}

// paneLine returns row i of pane p, exactly its width.
func (p *pairView) paneLine(pn pane, i int) string {
	r := p.panes[pn]
	pic := p.pics.panes[pn]
	switch {
	case !p.d.show:
	case p.caps.Protocol == termgfx.None:
		if (pn == paneA || pn == paneB) && i == 1 {
			return block(p.st.Dim.Render(" images off (--graphics none)"), r.W, 1)
		}
	case (p.textImages() || p.caps.Protocol == termgfx.Kitty) && pic.rect == r && i < len(pic.lines):
		return pic.lines[i]
	}
	return strings.Repeat(" ", r.W)
}

// clickToken picks the token under cell (cx, cy) of pane p, through the same fitting the
// renderer used.
func (p *pairView) clickToken(pn pane, cx, cy int) tea.Cmd {
	gw, gh := p.grid()
	if gw <= 0 || gh <= 0 {
		return nil
	}
	r := p.panes[pn]
	pw, ph := r.W, 2*r.H
	sx, sy := 1.0, 2.0
	if p.caps.Protocol == termgfx.Quadrant {
		pw, ph, sx, sy = 2*r.W, 4*r.H, 2, 4
	}
	if p.pixelImages() {
		cw, ch := p.cellSize()
		pw, ph, sx, sy = r.W*cw, r.H*ch, float64(cw), float64(ch)
	}
	var fr = fitRect(gw, gh, pw, ph)
	switch pn {
	case paneA:
		fr = fitRect(p.d.a.W, p.d.a.H, pw, ph)
	case paneB:
		fr = fitRect(p.d.b.W, p.d.b.H, pw, ph)
	}
	px, py := (float64(cx)+0.5)*sx, (float64(cy)+0.5)*sy
	if px < float64(fr.Min.X) || py < float64(fr.Min.Y) || px >= float64(fr.Max.X) || py >= float64(fr.Max.Y) {
		return nil
	}
	tx := int((px - float64(fr.Min.X)) * float64(gw) / float64(fr.Dx()))
	ty := int((py - float64(fr.Min.Y)) * float64(gh) / float64(fr.Dy()))
	return p.setToken(tx, ty)
}
