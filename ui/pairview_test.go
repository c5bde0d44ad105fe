package ui

import (
	"slices"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// The pair view on its own: no root, no backend; its data is handed to it as the root does.

func testPairView(proto termgfx.Protocol, gw, gh int) pairView {
	p := newPairView(NewStyles(true), pairKeys(DefaultKeyMap()), termgfx.Caps{Protocol: proto, TrueColor: true, CellW: 10, CellH: 20}, nil, nil)
	p.SetOrigin(0, 1)
	p.SetSize(80, 30)
	p.SetData(pairData{
		a: &api.Image{Path: "a.png", W: 64, H: 64}, b: &api.Image{Path: "b.png", W: 64, H: 64},
		pathA: "a.png", pathB: "b.png",
		layer: api.Layer{GridW: gw, GridH: gh},
		show:  true,
	})
	return p
}

// isTokenMsg runs cmd and reports whether it says the token was set.
func isTokenMsg(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tokenMsg)
	return ok
}

func TestPairViewTokenKeys(t *testing.T) {
	tests := []struct {
		name          string
		gw, gh        int
		keys          []string
		wantX, wantY  int
		wantIdx       int
		wantTokenMsg  bool // the last key asks the root for the new token's maps
		wantCxUnmoved bool
	}{
		{"starts in the middle", 4, 4, nil, 2, 2, 10, false, true},
		{"right", 4, 4, []string{"right"}, 3, 2, 11, true, false},
		{"l is right", 4, 4, []string{"l"}, 3, 2, 11, true, false},
		{"left twice", 4, 4, []string{"left", "h"}, 0, 2, 8, true, false},
		{"up and down", 4, 4, []string{"up", "k", "down"}, 2, 1, 6, true, false},
		{"clamps at the top", 4, 4, []string{"up", "up", "up", "up"}, 2, 0, 2, true, false},
		{"clamps at the right", 4, 4, []string{"right", "right", "right"}, 3, 2, 11, true, false},
		{"clamps at the bottom of a wide grid", 8, 2, []string{"down", "down"}, 4, 1, 12, true, false},
		{"no grid: nothing moves, nothing is asked", 0, 0, []string{"right", "down"}, 0, 0, -1, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPairView(termgfx.HalfBlock, tc.gw, tc.gh)
			var cmd tea.Cmd
			for _, k := range tc.keys {
				p, cmd = p.Update(press(k))
			}
			tx, ty, idx := p.token()
			if tx != tc.wantX || ty != tc.wantY || idx != tc.wantIdx {
				t.Errorf("token (%d,%d) #%d, want (%d,%d) #%d", tx, ty, idx, tc.wantX, tc.wantY, tc.wantIdx)
			}
			if got := isTokenMsg(cmd); got != tc.wantTokenMsg {
				t.Errorf("last key sent tokenMsg: %v, want %v", got, tc.wantTokenMsg)
			}
			if unmoved := p.cx == 0.5 && p.cy == 0.5; unmoved != tc.wantCxUnmoved {
				t.Errorf("cursor at (%.3f,%.3f): unmoved %v, want %v", p.cx, p.cy, unmoved, tc.wantCxUnmoved)
			}
		})
	}
}

// The cursor is kept as a fraction of the grid, so a change of layer keeps it in place.
func TestPairViewTokenSurvivesGridChange(t *testing.T) {
	p := testPairView(termgfx.HalfBlock, 4, 4)
	p, _ = p.Update(press("right")) // token 3 of 4: the right edge
	for _, tc := range []struct{ gw, gh, wantX int }{{8, 8, 7}, {2, 2, 1}, {16, 16, 14}} {
		if tx, _, _ := p.Token(tc.gw, tc.gh); tx != tc.wantX {
			t.Errorf("in a %dx%d grid the token is at x=%d, want %d", tc.gw, tc.gh, tx, tc.wantX)
		}
	}
}

func TestPairViewOverlayCycle(t *testing.T) {
	tests := []struct {
		name    string
		proto   termgfx.Protocol
		presses int
		want    overlayMode
	}{
		{"half-blocks start off", termgfx.HalfBlock, 0, overlayNone},
		{"quadrants start off", termgfx.Quadrant, 0, overlayNone},
		{"sixel starts on the cosine maps", termgfx.Sixel, 0, overlayCos},
		{"kitty starts on the cosine maps", termgfx.Kitty, 0, overlayCos},
		{"off, then cosine maps", termgfx.HalfBlock, 1, overlayCos},
		{"then attention", termgfx.HalfBlock, 2, overlayAttn},
		{"then off again", termgfx.HalfBlock, 3, overlayNone},
		{"sixel wraps to off", termgfx.Sixel, 2, overlayNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPairView(tc.proto, 4, 4)
			p.SetSize(0, 0) // not laid out: no render is asked for, the cycle alone is tested
			for range tc.presses {
				var cmd tea.Cmd
				p, cmd = p.Update(press("o"))
				if cmd != nil {
					t.Errorf("overlay key rendered with no room for pictures")
				}
			}
			if p.overlay != tc.want {
				t.Errorf("overlay %v after %d presses, want %v", p.overlay, tc.presses, tc.want)
			}
			if _, _, idx := p.token(); idx != 10 {
				t.Errorf("overlay key moved the token to #%d", idx)
			}
		})
	}
}

func TestPairViewSetSize(t *testing.T) {
	tests := []struct {
		name  string
		proto termgfx.Protocol
		x, y  int
		w, h  int
		panes bool
	}{
		{"80 columns of a 120-column screen", termgfx.HalfBlock, 0, 1, 80, 30, true},
		{"narrow", termgfx.HalfBlock, 0, 1, 47, 20, true},
		{"sixel cells", termgfx.Sixel, 0, 1, 120, 45, true},
		{"offset", termgfx.Quadrant, 5, 3, 60, 25, true},
		{"no room", termgfx.HalfBlock, 0, 1, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPairView(tc.proto, 4, 4)
			p.SetOrigin(tc.x, tc.y)
			p.SetSize(tc.w, tc.h)
			area := rect{tc.x, tc.y, tc.w, tc.h}
			for pn, r := range p.panes {
				if !tc.panes {
					if r != (rect{}) {
						t.Errorf("pane %d laid out at %+v with no room", pn, r)
					}
					continue
				}
				if r.empty() || r.X < area.X || r.Y <= area.Y || r.X+r.W > area.X+area.W || r.Y+r.H > area.Y+area.H {
					t.Errorf("pane %d at %+v, outside %+v below its caption", pn, r, area)
				}
			}
			if !tc.panes {
				return
			}
			// The same panes as the explorer's layout gives the same column.
			_, _, want := pairPanes(area, p.CellAspect())
			if p.panes != want {
				t.Errorf("panes %+v, layout says %+v", p.panes, want)
			}
			if p.panes[paneA].Y != p.panes[paneB].Y || p.panes[paneMapA].Y <= p.panes[paneA].Y+p.panes[paneA].H-1 {
				t.Errorf("photos at rows %d and %d, maps at %d", p.panes[paneA].Y, p.panes[paneB].Y, p.panes[paneMapA].Y)
			}
			lines := strings.Split(p.View(), "\n")
			if len(lines) != tc.h {
				t.Fatalf("View has %d lines, want %d", len(lines), tc.h)
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w != tc.w {
					t.Errorf("line %d is %d cells wide, want %d: %q", i, w, tc.w, l)
				}
			}
		})
	}
}

// A click picks the token under it through the same fitting as the pictures; a click
// outside the panes does nothing.
func TestPairViewClick(t *testing.T) {
	p := testPairView(termgfx.HalfBlock, 4, 4)
	r := p.panes[paneMapA]
	fr := fitRect(4, 4, r.W, 2*r.H) // half-blocks: two pixels a cell
	tests := []struct {
		name    string
		x, y    int // screen cells
		wantIdx int
		wantMsg bool
	}{
		{"map A's top left", r.X + fr.Min.X, r.Y + fr.Min.Y/2, 0, true},
		{"map A's bottom right", r.X + fr.Max.X - 1, r.Y + (fr.Max.Y-1)/2, 15, true},
		{"the caption row", r.X + r.W/2, r.Y - 1, 10, false},
		{"the attention map is not a token picker", p.panes[paneAttn].X + 1, p.panes[paneAttn].Y + 1, 10, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, cmd := p.Update(tea.MouseClickMsg{X: tc.x - p.x, Y: tc.y - p.y, Button: tea.MouseLeft})
			if _, _, idx := q.token(); idx != tc.wantIdx {
				t.Errorf("token #%d, want #%d", idx, tc.wantIdx)
			}
			if got := isTokenMsg(cmd); got != tc.wantMsg {
				t.Errorf("tokenMsg %v, want %v", got, tc.wantMsg)
			}
		})
	}
}

// Pictures arriving out of order: an older render never replaces a newer one.
func TestPairViewPicturesInOrder(t *testing.T) {
	p := testPairView(termgfx.HalfBlock, 4, 4)
	first := 0
	p.onFirst = func() { first++ }
	photo := pictures{}
	photo.panes[paneA].lines = []string{"new"}
	photo.panes[paneB].lines = []string{"new"}
	old := pictures{}
	old.panes[paneA].lines = []string{"old"}
	p, _ = p.Update(picturesMsg{seq: 2, pics: photo})
	p, _ = p.Update(picturesMsg{seq: 1, pics: old})
	p, _ = p.Update(picturesMsg{seq: 3, pics: photo})
	if p.shown != 3 || p.pics.panes[paneA].lines[0] != "new" {
		t.Errorf("shown seq %d with %q, want 3 with the newest", p.shown, p.pics.panes[paneA].lines)
	}
	if first != 1 {
		t.Errorf("OnFirstImages called %d times, want once", first)
	}
}

// The pair view's keys are the explorer's: a clip gives ← and → to the frames, and the
// pair view must not keep them for the token.
func TestPairViewKeysFollowTheExplorer(t *testing.T) {
	tests := []struct {
		name      string
		clip      bool
		wantLeft  []string
		wantRight []string
	}{
		{"a pair", false, []string{"left", "h"}, []string{"right", "l"}},
		{"a clip", true, []string{"h"}, []string{"l"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m *Model
			if tc.clip {
				m = clipModel(t, 120, 40, 5)
			} else {
				m, _ = readyModel(t, 120, 40)
			}
			if got := m.pv.keys.Left.Keys(); !slices.Equal(got, tc.wantLeft) {
				t.Errorf("token left is %q, want %q", got, tc.wantLeft)
			}
			if got := m.pv.keys.Right.Keys(); !slices.Equal(got, tc.wantRight) {
				t.Errorf("token right is %q, want %q", got, tc.wantRight)
			}
			help := m.pv.ShortHelp()
			if len(help) != 5 || help[2].Help().Key != m.keys.Left.Help().Key {
				t.Errorf("pair view's help offers %v for token left, the explorer %q", help, m.keys.Left.Help().Key)
			}
		})
	}
}
