package ui

// rect is a rectangle of cells.
type rect struct{ X, Y, W, H int }

func (r rect) contains(x, y int) bool {
	return x >= r.X && x < r.X+r.W && y >= r.Y && y < r.Y+r.H
}

func (r rect) empty() bool { return r.W <= 0 || r.H <= 0 }

// pane names an image on screen.
type pane int

const (
	paneA pane = iota
	paneB
	paneMapA
	paneMapB
	paneAttn
	numPanes
)

// Smallest terminal the explorer draws in: 80×23 is an 80×24 tmux window under its status
// line.
const minWidth, minHeight = 80, 23

// layout is where everything goes for one terminal size. It is computed on resize and
// used by View and by mouse hit-testing, so the two always agree.
type layout struct {
	W, H     int
	tooSmall bool

	title    rect
	body     rect // between the title and the timeline
	left     rect // images and maps
	score    rect
	layers   rect
	timeline rect
	status   rect // the status line; a long message takes the timeline's rows too
	help     rect // the key help line
}

// Timeline rows, and the score panel's share of the right column.
const (
	timelineH     = 3
	scorePanelMin = 8  // with its border
	scorePanelMax = 14 // a tall terminal gives the rest to the layer list
)

// computeLayout lays out a w×h terminal: the title line; the body (the pair view on the
// left; the score panel over the layer list on the right); the timeline; the status line;
// one line of key help. The expanded help and the sweep draw over the body.
func computeLayout(w, h int) layout {
	l := layout{W: w, H: h}
	if w < minWidth || h < minHeight {
		l.tooSmall = true
		return l
	}
	l.title = rect{0, 0, w, 1}
	l.help = rect{0, h - 1, w, 1}
	l.status = rect{0, h - 2, w, 1}
	l.timeline = rect{0, l.status.Y - timelineH, w, timelineH}
	l.body = rect{0, 1, w, l.timeline.Y - 1}

	rightW := min(max(w*32/100, 32), 56)
	leftW := w - rightW - 1
	l.left = rect{0, l.body.Y, leftW, l.body.H}
	sh := min(max(l.body.H*45/100, scorePanelMin), scorePanelMax)
	l.score = rect{leftW + 1, l.body.Y, rightW, sh}
	l.layers = rect{leftW + 1, l.body.Y + sh, rightW, l.body.H - sh}
	return l
}

// pairPanes lays out the pair view in r: the two photos side by side under a caption row,
// the three maps under theirs with a row of colour bars below, sharing the height in
// proportion when both do not fit. cellAspect is a cell's width over its height (0.5 for
// half-blocks, whose two pixels per cell are square). captions are the rows of the photos'
// and the maps' captions; legend is the colour bars' row.
func pairPanes(r rect, cellAspect float64) (captions [2]int, legend int, panes [numPanes]rect) {
	if cellAspect <= 0 {
		cellAspect = 0.5
	}
	pw := (r.W - 1) / 2
	mw := (r.W - 2) / 3
	ph0 := max(int(float64(pw)*cellAspect+0.5), 1)
	mh0 := max(int(float64(mw)*cellAspect+0.5), 1)
	avail := r.H - 3 // two caption rows and the legend row
	ph, mh := ph0, mh0
	if ph0+mh0 > avail {
		ph = avail * ph0 / (ph0 + mh0)
		mh = avail - ph
	}
	y := r.Y
	captions[0] = y
	panes[paneA] = rect{r.X, y + 1, pw, ph}
	panes[paneB] = rect{r.X + pw + 1, y + 1, pw, ph}
	captions[1] = y + 1 + ph
	for i, p := range []pane{paneMapA, paneMapB, paneAttn} {
		panes[p] = rect{r.X + i*(mw+1), y + 2 + ph, mw, mh}
	}
	legend = y + 2 + ph + mh
	return captions, legend, panes
}
