package ui

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// overlayAlpha is how strongly a map tints a photograph (heatmap.Tint keeps the photo's
// brightness, so its edges and shadows stay whatever the weight): enough to read the map,
// little enough to still see the photo's own colours. Half-blocks have two pixels a cell,
// where colour is most of what is left of a photo, so their tint is lighter (and off
// until o turns it on).
func overlayAlpha(p termgfx.Protocol) float64 {
	if p == termgfx.Sixel || p == termgfx.Kitty {
		return 0.65
	}
	return 0.55
}

// picture is one pane's image, ready for the screen.
type picture struct {
	rect   rect     // cells
	lines  []string // half-block or kitty placeholder cells, one string per row of exactly rect.W cells
	sixel  []byte   // sixel payload, for the placer
	kitty  []byte   // kitty transmission with a virtual placement, for the placer
	lo, hi float32
	ok     bool // has a map (false: not computed, or no map for this layer)
}

// hasPhoto reports whether a photo pane has something to show.
func hasPhoto(p picture) bool { return len(p.lines) > 0 || len(p.sixel) > 0 || len(p.kitty) > 0 }

// pictures are every pane's image for one state of the view, and what they show.
type pictures struct {
	panes [numPanes]picture
	key   pictureKey
}

// renderer composes and encodes pictures off the UI goroutine. It caches each photo
// scaled to its pane, which is the slow step (TERMINAL.md: quantise and scale photos once).
type renderer struct {
	latest atomic.Int64 // newest seq asked for; older jobs give up early

	mu    sync.Mutex // one draw at a time; it owns the encoders
	sixel [numPanes]heatmap.SixelEncoder
	kitty [numPanes]heatmap.KittyEncoder

	fitMu sync.Mutex
	fits  map[fitKey]*image.RGBA
}

type fitKey struct {
	hash string
	w, h int
}

func newRenderer() *renderer { return &renderer{fits: map[fitKey]*image.RGBA{}} }

// forget drops the cached photos (a new pair was loaded).
func (r *renderer) forget() {
	r.fitMu.Lock()
	clear(r.fits)
	r.fitMu.Unlock()
}

// fit returns img scaled to w×h, cached.
func (r *renderer) fit(img *api.Image, w, h int) *image.RGBA {
	k := fitKey{img.Hash, w, h}
	r.fitMu.Lock()
	m, ok := r.fits[k]
	r.fitMu.Unlock()
	if ok {
		return m
	}
	m = heatmap.Resize(img.Pixels, w, h)
	r.fitMu.Lock()
	if len(r.fits) > 32 {
		clear(r.fits)
	}
	r.fits[k] = m
	r.fitMu.Unlock()
	return m
}

// renderJob is a snapshot of what the pictures depend on, taken in Update.
type renderJob struct {
	seq          int
	key          pictureKey
	proto        termgfx.Protocol
	cellW, cellH int
	panes        [numPanes]rect
	a, b         *api.Image
	res          *api.Result // nil: not computed yet; may answer another token or layer
	layer        api.Layer
	tx, ty       int
	overlay      overlayMode
	cursor       color.Color
	truecolor    bool
	placeholders bool                // kitty: Unicode placeholders, else direct placement
	alpha        float64             // how strongly maps tint the photos
	wrap         func([]byte) []byte // passthrough for tmux and screen
}

// RenderCmd asks for new pictures of what the view shows.
func (p *pairView) RenderCmd() tea.Cmd {
	proto := p.caps.Protocol
	if p.d.a == nil || p.d.b == nil || p.w <= 0 || p.h <= 0 || proto == termgfx.None {
		p.Place(false)
		return nil
	}
	p.seq++
	tx, ty, _ := p.token()
	cw, ch := p.cellSize()
	job := renderJob{
		seq: p.seq, key: p.want(), proto: proto, cellW: cw, cellH: ch, panes: p.panes,
		a: p.d.a, b: p.d.b, res: p.d.res, layer: p.d.layer, tx: tx, ty: ty, overlay: p.overlay,
		cursor: p.st.Cursor, truecolor: p.caps.TrueColor, wrap: p.caps.Wrap,
		placeholders: p.caps.KittyPlaceholders, alpha: overlayAlpha(proto),
	}
	r := p.render
	r.latest.Store(int64(job.seq))
	return func() tea.Msg {
		start := time.Now()
		pics, ok := r.draw(job)
		if !ok {
			return nil
		}
		return picturesMsg{seq: job.seq, pics: pics, took: time.Since(start)}
	}
}

// textImages reports whether images are drawn as coloured block characters in the View
// (half-blocks, quadrants).
func (p *pairView) textImages() bool {
	return p.caps.Protocol == termgfx.HalfBlock || p.caps.Protocol == termgfx.Quadrant
}

// pixelImages reports whether images are drawn by the terminal at its own pixel size
// (sixel, kitty) rather than as half-block text.
func (p *pairView) pixelImages() bool {
	return p.caps.Protocol == termgfx.Sixel || p.caps.Protocol == termgfx.Kitty
}

func (p *pairView) cellSize() (w, h int) {
	return p.caps.Pixels(1, 1)
}

// CellAspect is a cell's width over height as far as pictures are concerned.
func (p *pairView) CellAspect() float64 {
	if !p.pixelImages() {
		return 0.5
	}
	w, h := p.cellSize()
	return float64(w) / float64(h)
}

// draw composes every pane, each on its own goroutine. It returns false when a newer
// job has been asked for.
func (r *renderer) draw(j renderJob) (pictures, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := pictures{key: j.key} // each goroutine writes its own pane
	var mapA, mapB, attn api.Map
	if j.key.maps {
		// A layer without image information has maps that mean nothing either (key.maps is
		// false then), and a result for another token has another attention row.
		mapA, mapB = j.res.MapA, j.res.MapB
		if j.key.attn {
			attn = j.res.AttnRow
		}
	}
	cosLo, cosHi, cosOK := jointRange(mapA, mapB)
	attnLo, attnHi, attnOK := jointRange(attn)
	if attnOK {
		attnLo = min(attnLo, 0)
	}
	var wg sync.WaitGroup
	for p := range numPanes {
		if j.panes[p].empty() {
			continue
		}
		wg.Go(func() {
			if r.latest.Load() > int64(j.seq) {
				return // a newer job is waiting; its pictures replace these
			}
			out.panes[p] = r.drawPane(j, p, mapA, mapB, attn, cosLo, cosHi, cosOK, attnLo, attnHi, attnOK)
		})
	}
	wg.Wait()
	if r.latest.Load() > int64(j.seq) {
		return out, false
	}
	return out, true
}

func grid(m api.Map) heatmap.Grid { return heatmap.Grid{W: m.W, H: m.H, Values: m.Values} }

// jointRange is the finite range over several maps, so that maps drawn side by side share
// one colour scale.
func jointRange(ms ...api.Map) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, m := range ms {
		if l, h, k := grid(m).Range(); k && m.W*m.H == len(m.Values) {
			lo, hi, ok = min(lo, l), max(hi, h), true
		}
	}
	if !ok {
		return 0, 0, false
	}
	if hi-lo < 1e-6 {
		lo, hi = lo-0.5e-3, hi+0.5e-3
	}
	return lo, hi, true
}

// fitRect is the largest rectangle of aspect sw:sh centred in w×h.
func fitRect(sw, sh, w, h int) image.Rectangle {
	if sw <= 0 || sh <= 0 {
		return image.Rect(0, 0, w, h)
	}
	fw, fh := w, sh*w/sw
	if fh > h {
		fw, fh = sw*h/sh, h
	}
	fw, fh = max(fw, 1), max(fh, 1)
	x, y := (w-fw)/2, (h-fh)/2
	return image.Rect(x, y, x+fw, y+fh)
}

// drawPane composes and encodes one pane. Photos are drawn on an RGBA canvas (the sixel
// encoder quantises them); maps stay paletted, their palette being the colormap, so the
// encoder takes them as they are.
func (r *renderer) drawPane(j renderJob, p pane, mapA, mapB, attn api.Map,
	cosLo, cosHi float32, cosOK bool, attnLo, attnHi float32, attnOK bool) picture {
	cells := j.panes[p]
	pw, ph := cells.W, 2*cells.H
	switch j.proto {
	case termgfx.Sixel, termgfx.Kitty:
		pw, ph = cells.W*j.cellW, cells.H*j.cellH
	case termgfx.Quadrant:
		pw, ph = 2*cells.W, 4*cells.H // square pixels; each cell reads its 2×4 as 2×2
	}
	pic := picture{rect: cells}
	var canvas image.Image
	switch p {
	case paneA, paneB:
		img, heat := j.a, mapA
		if p == paneB {
			img, heat = j.b, mapB
		}
		lo, hi, ok := cosLo, cosHi, cosOK
		switch j.overlay {
		case overlayNone:
			ok = false
		case overlayAttn:
			heat, lo, hi, ok = api.Map{}, 0, 0, false
			if p == paneB {
				heat, lo, hi, ok = attn, attnLo, attnHi, attnOK
			}
		}
		fr := fitRect(img.W, img.H, pw, ph)
		photo := r.fit(img, fr.Dx(), fr.Dy())
		var shown image.Image = photo
		if ok {
			h := heatmap.Render(grid(heat), heatmap.Viridis(), lo, hi, fr.Dx(), fr.Dy())
			shown = heatmap.Tint(photo, h, j.alpha)
		}
		rgba := image.NewRGBA(image.Rect(0, 0, pw, ph))
		draw.Draw(rgba, fr, shown, image.Point{}, draw.Src)
		heatmap.DrawCursor(rgba.SubImage(fr).(*image.RGBA), j.layer.GridW, j.layer.GridH, j.tx, j.ty, j.cursor)
		canvas = rgba
		pic.lo, pic.hi, pic.ok = lo, hi, ok
	default:
		heat, lo, hi, ok := mapA, cosLo, cosHi, cosOK
		switch p {
		case paneMapB:
			heat = mapB
		case paneAttn:
			heat, lo, hi, ok = attn, attnLo, attnHi, attnOK
		}
		pal := heatmap.RenderBlocks(heatmap.Grid{}, heatmap.Viridis(), 0, 0, pw, ph) // all "no value": transparent
		if ok && heat.W > 0 && heat.H > 0 {
			fr := fitRect(heat.W, heat.H, pw, ph)
			hm := heatmap.RenderBlocks(grid(heat), heatmap.Viridis(), lo, hi, fr.Dx(), fr.Dy())
			if p == paneMapA {
				heatmap.DrawCursor(hm, heat.W, heat.H, j.tx, j.ty, j.cursor)
			}
			pal.Palette = hm.Palette // the cursor's marker slot
			for y := range fr.Dy() {
				copy(pal.Pix[(fr.Min.Y+y)*pal.Stride+fr.Min.X:], hm.Pix[y*hm.Stride:y*hm.Stride+fr.Dx()])
			}
		}
		canvas = pal
		pic.lo, pic.hi, pic.ok = lo, hi, ok
	}
	switch j.proto {
	case termgfx.Sixel:
		var buf bytes.Buffer
		if err := r.sixel[p].Encode(&buf, canvas); err == nil {
			pic.sixel = j.wrap(buf.Bytes())
		}
	case termgfx.Kitty:
		// With placeholders: sent once with a virtual placement of the pane's cells; the
		// View shows it through placeholder cells, which the cell renderer treats as text.
		// Without (kitty < 0.28): placed directly at the pane's cells by the Writer, as
		// sixel is, after deleting the image's previous placement; c= and r= make the
		// terminal fit it to the cells whatever their real pixel size.
		id := kittyID(p)
		e := &r.kitty[p]
		e.Compress, e.ID, e.Cols, e.Rows = true, id, cells.W, cells.H
		e.Virtual, e.Still = j.placeholders, !j.placeholders
		var buf bytes.Buffer
		if !j.placeholders {
			buf.WriteString(heatmap.KittyDelete(id))
		}
		if err := e.Encode(&buf, canvas); err == nil {
			pic.kitty = j.wrap(buf.Bytes())
			if j.placeholders {
				pic.lines = strings.Split(heatmap.KittyPlaceholder(id, cells.W, cells.H), "\n")
			}
		}
	default:
		mode := heatmap.TrueColor
		if !j.truecolor {
			mode = heatmap.ANSI256
		}
		if j.proto == termgfx.Quadrant {
			pic.lines = strings.Split(heatmap.Quadrants(canvas, cells.W, cells.H, mode), "\n")
		} else {
			pic.lines = strings.Split(heatmap.HalfBlock(canvas, cells.W, cells.H, mode), "\n")
		}
	}
	return pic
}
