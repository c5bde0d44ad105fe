package ui

// The pair view: the two photos and the three maps with their captions and colour bars,
// the token cursor and the overlay. Its pictures are composed off the UI goroutine
// (render.go) and either drawn here as half-block or kitty placeholder text, or placed over
// blank cells by the Writer (placement.go). The root hands it its size and what it shows
// (the pair, the layer and t, the result when one answers them), routes its keys and clicks
// to it, and answers its tokenMsg by asking the backend for the new token's maps, since
// every request depends on the whole view.
//
// Pictures carry what they show (pictureKey). A pane whose picture shows another layer, t or
// token than the view is blank with "computing…" until its own arrives, so the pictures never
// disagree with the score panel beside them.

import (
	"fmt"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

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
	layer        api.Layer // the current layer; its grid is the token grid
	t            int
	// res answers the current layer and t (its token may be another one); nil while they
	// are computing: maps of another layer or t would disagree with the panel.
	res  *api.Result
	show bool // the main screen with its images is on screen
}

// pictureKey is what a set of pictures shows.
type pictureKey struct {
	a, b     string // image hashes
	layer, t int
	token    int
	maps     bool // the cosine maps answer layer and t
	attn     bool // the attention row answers token too
	overlay  overlayMode
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
	captions   [2]int
	legend     int

	d pairData

	cx, cy  float64 // token cursor as a fraction of the grid: it survives a change of grid
	overlay overlayMode

	render *renderer
	pics   pictures // the pictures on screen
	seq    int      // last render asked for
	shown  int      // seq of the pictures shown
}

// newPairView returns the pair view drawing with caps. overlayOn chooses the overlay at
// start; nil: on, except with half-blocks, whose two pixels per cell cannot show a photo
// and a map at once (the tint wins and the photo becomes a blob): there the maps stay in
// their own panes and o turns the overlay on. onFirst, when set, is called once, when both
// photos are first on screen.
func newPairView(st Styles, keys pairKeyMap, caps termgfx.Caps, overlayOn *bool, onFirst func()) pairView {
	p := pairView{st: st, keys: keys, caps: caps, cx: 0.5, cy: 0.5, overlay: overlayCos, render: newRenderer(), onFirst: onFirst}
	switch {
	case overlayOn != nil && *overlayOn:
	case overlayOn != nil, p.textImages():
		p.overlay = overlayNone
	}
	return p
}

// SetPlacer gives the view the writer that draws sixel and kitty images at their cells.
func (p *pairView) SetPlacer(pl imagePlacer) { p.placer = pl }

// SetKeys rebinds the view's keys (a clip takes ← and → for its frames).
func (p *pairView) SetKeys(k pairKeyMap) { p.keys = k }

// SetSize lays the panes out in w×h cells.
func (p *pairView) SetSize(w, h int) {
	p.w, p.h = w, h
	p.panes = [numPanes]rect{}
	if w > 0 && h > 0 {
		p.captions, p.legend, p.panes = pairPanes(rect{p.x, p.y, w, h}, p.CellAspect())
	}
}

// SetOrigin puts the view's top left corner at cell (x, y) of the screen: sixel and kitty
// images are placed at screen cells.
func (p *pairView) SetOrigin(x, y int) {
	p.x, p.y = x, y
	p.SetSize(p.w, p.h)
}

// SetData hands the view what the root owns.
func (p *pairView) SetData(d pairData) { p.d = d }

func (p *pairView) SetStyles(st Styles) { p.st = st }

// Forget drops the photos scaled for the old pair (a new pair was loaded).
func (p *pairView) Forget() { p.render.forget() }

// Overlay is what is blended over the photos.
func (p *pairView) Overlay() overlayMode { return p.overlay }

// Protocol is how the view draws images.
func (p *pairView) Protocol() termgfx.Protocol { return p.caps.Protocol }

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
			cmd = p.RenderCmd()
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
			p.Place(true)
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

// Token returns the cursor's token in a w×h grid, and its index (-1 without a grid).
func (p *pairView) Token(w, h int) (tx, ty, idx int) {
	if w <= 0 || h <= 0 {
		return 0, 0, -1
	}
	tx = min(max(int(p.cx*float64(w)), 0), w-1)
	ty = min(max(int(p.cy*float64(h)), 0), h-1)
	return tx, ty, ty*w + tx
}

func (p *pairView) token() (tx, ty, idx int) { return p.Token(p.grid()) }

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

// want is what the pictures should show now.
func (p *pairView) want() pictureKey {
	k := pictureKey{layer: p.d.layer.Index, t: p.d.t, overlay: p.overlay}
	if p.d.a != nil && p.d.b != nil {
		k.a, k.b = p.d.a.Hash, p.d.b.Hash
	}
	_, _, k.token = p.token()
	if r := p.d.res; r != nil && r.Meaningless == "" {
		k.maps = true
		k.attn = r.Req.Token == k.token
	}
	return k
}

// paneCurrent reports whether the picture of pane pn shows what the view shows, and if
// not, what the pane says instead.
func (p *pairView) paneCurrent(pn pane) (ok bool, why string) {
	want, got := p.want(), p.pics.key
	if want.a != got.a || want.b != got.b {
		return false, ""
	}
	if pn == paneA || pn == paneB {
		// A photo is the photo: a tint of another layer lasts only until the new pictures
		// are drawn (milliseconds; the root asks for them with every change of view).
		return true, ""
	}
	if r := p.d.res; r != nil && r.Meaningless != "" {
		return false, "n/a: no image information"
	}
	if !want.maps {
		return false, "computing…"
	}
	if !got.maps || got.layer != want.layer || got.t != want.t ||
		pn == paneAttn && (!want.attn || !got.attn || got.token != want.token) {
		return false, "computing…"
	}
	return true, ""
}

// tintCurrent reports whether the photos' tint is the overlay of the view's layer, t and
// token.
func (p *pairView) tintCurrent() bool {
	want, got := p.want(), p.pics.key
	return got.a == want.a && got.b == want.b && got.overlay == want.overlay && got.maps && want.maps &&
		got.layer == want.layer && got.t == want.t &&
		(want.overlay != overlayAttn || got.attn && want.attn && got.token == want.token)
}

// lines draws the photos and the maps with their captions and colour bars, one string per
// row of exactly the view's width. The half-block rows are known to be their pane's width,
// so nothing here measures them: measuring ANSI text is what makes a View slow.
func (p *pairView) lines() []string {
	st := p.st
	w := p.w
	pa, pb := p.panes[paneA], p.panes[paneB]
	tx, ty, _ := p.token()
	rows := make([]string, 0, p.h)
	pad := func(used int) string { return strings.Repeat(" ", max(w-used, 0)) }
	rows = append(rows, p.photoCaption(paneA)+" "+p.photoCaption(paneB)+pad(pa.W+pb.W+1))
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
		capRow.WriteString(block(st.Caption.Render(fitWords(titles[i], p.panes[pn].W)), p.panes[pn].W, 1))
		used += p.panes[pn].W
	}
	rows = append(rows, capRow.String()+pad(used))
	for i := range p.panes[paneMapA].H {
		rows = append(rows, p.paneLine(paneMapA, i)+" "+p.paneLine(paneMapB, i)+" "+p.paneLine(paneAttn, i)+pad(used))
	}
	rows = append(rows, p.legendRow()+pad(used))
	for len(rows) < p.h {
		rows = append(rows, pad(0))
	}
	return rows[:p.h]
}

// photoCaption is the caption over photo pn: its file name and, when a map tints it, the
// map's name and range ("A cat.png · cos 0.31–0.92"); the range goes first when narrow.
func (p *pairView) photoCaption(pn pane) string {
	st := p.st
	r := p.panes[pn]
	letter, path := "A ", p.d.pathA
	if pn == paneB {
		letter, path = "B ", p.d.pathB
	}
	name := filepath.Base(path)
	note := ""
	if pic := p.pics.panes[pn]; pic.ok && p.overlay != overlayNone {
		if p.tintCurrent() {
			what := "cos"
			if p.overlay == overlayAttn {
				what = "attn"
			}
			note = " · " + what + " " + fmtRange(float64(pic.lo), float64(pic.hi))
		}
	}
	if ansi.StringWidth(letter+name+note) > r.W {
		note = ""
	}
	if ansi.StringWidth(letter+name) > r.W {
		name = ellipsize(name, r.W-len(letter))
	}
	return block(st.Caption.Render(letter+name)+st.Label.Render(note), r.W, 1)
}

// legendRow is the colour bars under the maps: the cosine maps' shared scale under the
// two of them, the attention's under it.
func (p *pairView) legendRow() string {
	ma, mb, at := p.panes[paneMapA], p.panes[paneMapB], p.panes[paneAttn]
	cosW := ma.W + 1 + mb.W
	cos, attn := strings.Repeat(" ", cosW), strings.Repeat(" ", at.W)
	if ok, _ := p.paneCurrent(paneMapA); ok && p.pics.panes[paneMapA].ok {
		pic := p.pics.panes[paneMapA]
		cos = colourBar(p.st, "cos A, B", float64(pic.lo), float64(pic.hi), cosW)
	}
	if ok, _ := p.paneCurrent(paneAttn); ok && p.pics.panes[paneAttn].ok {
		pic := p.pics.panes[paneAttn]
		attn = colourBar(p.st, "attn", float64(pic.lo), float64(pic.hi), at.W)
	}
	return cos + " " + attn
}

// paneLine returns row i of pane pn, exactly its width.
func (p *pairView) paneLine(pn pane, i int) string {
	r := p.panes[pn]
	pic := p.pics.panes[pn]
	switch {
	case !p.d.show:
	case p.caps.Protocol == termgfx.None:
		if (pn == paneA || pn == paneB) && i == 1 {
			return block(p.st.Dim.Render(" images off (--graphics none)"), r.W, 1)
		}
	default:
		ok, why := p.paneCurrent(pn)
		switch {
		case !ok && why != "":
			if i == (r.H-1)/2 {
				return lipgloss.PlaceHorizontal(r.W, lipgloss.Center, p.st.Dim.Render(firstFit(r.W, why, strings.TrimSuffix(why, "rmation"), "n/a", "…")))
			}
		case !ok:
		case (p.textImages() || p.caps.Protocol == termgfx.Kitty) && pic.rect == r && i < len(pic.lines):
			return pic.lines[i]
		}
	}
	return strings.Repeat(" ", r.W)
}

// fitWords keeps the words of s that fit in w columns, whole.
func fitWords(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	out := ""
	for _, f := range strings.Fields(s) {
		next := f
		if out != "" {
			next = out + " " + f
		}
		if ansi.StringWidth(next) > w {
			break
		}
		out = next
	}
	return out
}

// clickToken picks the token under cell (cx, cy) of pane p, through the same fitting the
// renderer used.
func (p *pairView) clickToken(pn pane, cx, cy int) tea.Cmd {
	gw, gh := p.grid()
	if gw <= 0 || gh <= 0 || p.d.a == nil || p.d.b == nil {
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
