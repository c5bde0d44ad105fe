package ui

// The pair view: the two photos and the three maps with their captions. Its pictures are
// composed off the UI goroutine (render.go) and either drawn here as half-block or kitty
// placeholder text, or placed over blank cells by the Writer (placement.go).

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/ui/termgfx"
)

// leftLines draws the photos and the maps with their captions, one string per row of
// exactly the column's width. The half-block rows are known to be their pane's width, so
// nothing here measures them: measuring ANSI text is what makes a View slow.
func (m *Model) leftLines() []string {
	l := m.lay
	st := m.styles
	w := l.left.W
	pa, pb := l.panes[paneA], l.panes[paneB]
	tx, ty, _ := m.token()
	rows := make([]string, 0, l.left.H)
	pad := func(used int) string { return strings.Repeat(" ", max(w-used, 0)) }
	rows = append(rows, block(st.Caption.Render("A "+filepath.Base(m.pathA)+rangeNote(m.pv.pics.panes[paneA])), pa.W, 1)+" "+
		block(st.Caption.Render("B "+filepath.Base(m.pathB)+rangeNote(m.pv.pics.panes[paneB])), pb.W, 1)+pad(pa.W+pb.W+1))
	for i := range pa.H {
		rows = append(rows, m.paneLine(paneA, i)+" "+m.paneLine(paneB, i)+pad(pa.W+pb.W+1))
	}
	maps := []pane{paneMapA, paneMapB, paneAttn}
	titles := []string{"cos A (self vs cross)", "cos B", fmt.Sprintf("attention of A %d,%d over B", tx, ty)}
	if l.panes[paneMapA].W < 24 {
		// Short titles, so that narrow panes keep them apart and whole.
		titles = []string{"cos A", "cos B", fmt.Sprintf("attn A %d,%d → B", tx, ty)}
	}
	var capRow strings.Builder
	used := 0
	for i, p := range maps {
		if i > 0 {
			capRow.WriteByte(' ')
			used++
		}
		capRow.WriteString(block(st.Caption.Render(titles[i]), l.panes[p].W, 1))
		used += l.panes[p].W
	}
	rows = append(rows, capRow.String()+pad(used))
	for i := range l.panes[paneMapA].H {
		rows = append(rows, m.paneLine(paneMapA, i)+" "+m.paneLine(paneMapB, i)+" "+m.paneLine(paneAttn, i)+pad(used))
	}
	for len(rows) < l.left.H {
		rows = append(rows, pad(0))
	}
	return rows[:l.left.H]
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
func (m *Model) paneLine(p pane, i int) string {
	r := m.lay.panes[p]
	pic := m.pv.pics.panes[p]
	switch {
	case !m.showImages():
	case m.proto == termgfx.None:
		if (p == paneA || p == paneB) && i == 1 {
			return block(m.styles.Dim.Render(" images off (--graphics none)"), r.W, 1)
		}
	case (m.textImages() || m.proto == termgfx.Kitty) && pic.rect == r && i < len(pic.lines):
		return pic.lines[i]
	}
	return strings.Repeat(" ", r.W)
}

// showImages reports whether the main screen with its images is showing.
func (m *Model) showImages() bool {
	return m.screen == screenMain && m.a != nil && !m.lay.tooSmall && m.width > 0
}

// clickToken picks the token under cell (cx, cy) of pane p, through the same fitting the
// renderer used.
func (m *Model) clickToken(p pane, cx, cy int) tea.Cmd {
	gw, gh := m.grid()
	if gw <= 0 || gh <= 0 {
		return nil
	}
	r := m.lay.panes[p]
	pw, ph := r.W, 2*r.H
	sx, sy := 1.0, 2.0
	if m.proto == termgfx.Quadrant {
		pw, ph, sx, sy = 2*r.W, 4*r.H, 2, 4
	}
	if m.pixelImages() {
		cw, ch := m.cellSize()
		pw, ph, sx, sy = r.W*cw, r.H*ch, float64(cw), float64(ch)
	}
	var fr = fitRect(gw, gh, pw, ph)
	switch p {
	case paneA:
		fr = fitRect(m.a.W, m.a.H, pw, ph)
	case paneB:
		fr = fitRect(m.b.W, m.b.H, pw, ph)
	}
	px, py := (float64(cx)+0.5)*sx, (float64(cy)+0.5)*sy
	if px < float64(fr.Min.X) || py < float64(fr.Min.Y) || px >= float64(fr.Max.X) || py >= float64(fr.Max.Y) {
		return nil
	}
	tx := int((px - float64(fr.Min.X)) * float64(gw) / float64(fr.Dx()))
	ty := int((py - float64(fr.Min.Y)) * float64(gh) / float64(fr.Dy()))
	return m.setToken(tx, ty)
}
