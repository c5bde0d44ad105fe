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

// Smallest terminal the explorer draws in.
const minWidth, minHeight = 80, 24

// layout is where everything goes for one terminal size. It is computed on resize and
// used by View and by mouse hit-testing, so the two always agree.
type layout struct {
	W, H     int
	tooSmall bool

	body     rect // between the title and the timeline
	left     rect // images and maps
	panes    [numPanes]rect
	captions [2]int // rows of the photo and map captions
	score    rect
	layers   rect
	timeline rect
	status   int // row
	helpRow  int // first row of the help bar
	helpH    int
}

// scorePanelHeight is the score panel with its border.
const scorePanelHeight = 11

// computeLayout lays out a w×h terminal. cellAspect is a cell's width over its height
// (0.5 for half-blocks, whose two pixels per cell are square).
// helpH is the rows of the help bar (1, more when expanded).
func computeLayout(w, h int, cellAspect float64, helpH int) layout {
	l := layout{W: w, H: h}
	if w < minWidth || h < minHeight {
		l.tooSmall = true
		return l
	}
	if cellAspect <= 0 {
		cellAspect = 0.5
	}
	helpH = min(max(helpH, 1), h-minHeight/2) // the expanded help never takes the body
	l.helpRow = h - helpH
	l.helpH = helpH
	l.status = l.helpRow - 1
	l.timeline = rect{0, l.status - 3, w, 3}
	l.body = rect{0, 1, w, l.timeline.Y - 1}

	rightW := min(max(w*32/100, 32), 56)
	leftW := w - rightW - 1
	l.left = rect{0, l.body.Y, leftW, l.body.H}
	sh := min(scorePanelHeight, max(l.body.H/2, 7))
	l.score = rect{leftW + 1, l.body.Y, rightW, sh}
	l.layers = rect{leftW + 1, l.body.Y + sh, rightW, l.body.H - sh}

	l.captions, l.panes = pairPanes(l.left, cellAspect)
	return l
}

// pairPanes lays out the pair view in r: the two photos side by side under a caption row,
// the three maps under theirs, sharing the height in proportion when both do not fit.
// captions are the rows of the two caption lines.
func pairPanes(r rect, cellAspect float64) (captions [2]int, panes [numPanes]rect) {
	if cellAspect <= 0 {
		cellAspect = 0.5
	}
	pw := (r.W - 1) / 2
	mw := (r.W - 2) / 3
	ph0 := max(int(float64(pw)*cellAspect+0.5), 1)
	mh0 := max(int(float64(mw)*cellAspect+0.5), 1)
	avail := r.H - 2 // two caption rows
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
	return captions, panes
}
