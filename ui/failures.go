package ui

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/bench"
)

// failureOpenMsg asks the results explorer to open row of the failures list.
type failureOpenMsg struct{ row int }

// failuresKeyMap are the list's keys: the table's own, and open and back.
type failuresKeyMap struct {
	table.KeyMap
	Open, Back, Quit key.Binding
}

func (k failuresKeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Open, k.Back, k.LineUp, k.LineDown, k.PageDown, k.Quit}
}

func (k failuresKeyMap) FullHelp() [][]key.Binding {
	return append(k.KeyMap.FullHelp(), []key.Binding{k.Open, k.Back, k.Quit})
}

// failuresModel lists a cell's decisions where the metric disagreed with the label or the
// human vote, worst margin first (bubbles' table).
type failuresModel struct {
	st            Styles
	keys          failuresKeyMap
	t             table.Model
	width, height int
	cell          cellRef
	title         string
	rows          []bench.Decision
	loading       bool
	pathW         int // the width of a path column
}

func newFailuresModel(st Styles) failuresModel {
	tk := table.DefaultKeyMap()
	k := failuresKeyMap{
		KeyMap: tk,
		Open:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open its images")),
		Back:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back to the matrix")),
		Quit:   key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
	t := table.New(table.WithFocused(true), table.WithKeyMap(tk))
	f := failuresModel{st: st, keys: k, t: t}
	f.restyle()
	return f
}

func (f *failuresModel) restyle() {
	s := table.DefaultStyles()
	s.Header = f.st.Dim.Bold(true).Padding(0, 1)
	s.Cell = s.Cell.Padding(0, 1)
	s.Selected = f.st.Selected
	f.t.SetStyles(s)
}

func (f *failuresModel) SetSize(w, h int) {
	f.width, f.height = w, h
	f.t.SetWidth(w)
	f.t.SetHeight(max(h-1, 2)) // the title takes a line
	f.fill()
}

// Loading shows the list of cell c as being read.
func (f *failuresModel) Loading(c cellRef, title string) {
	f.cell, f.title, f.rows, f.loading = c, title, nil, true
	f.t.SetRows(nil)
}

// SetData shows the failed decisions of cell c.
func (f *failuresModel) SetData(c cellRef, rows []bench.Decision) {
	f.cell, f.rows, f.loading = c, rows, false
	f.fill()
	f.t.SetCursor(0)
}

// fill fits the columns to the width and the rows to the columns.
func (f *failuresModel) fill() {
	f.columns()
	trs := make([]table.Row, len(f.rows))
	for i, d := range f.rows {
		a, b := pairText(float64(d.ScoreA), float64(d.ScoreB))
		trs[i] = table.Row{
			strconv.Itoa(i + 1), strconv.Itoa(d.Index), strconv.FormatFloat(bench.Margin(d), 'g', 3, 64), a, b,
			strings.ToUpper(d.Choice), strings.ToUpper(d.Human), f.pathCell(d.Ref), f.pathCell(d.A), f.pathCell(d.B),
		}
	}
	f.t.SetRows(trs)
}

// pathCell fits a path to its column keeping its end, where the file name is.
func (f *failuresModel) pathCell(p string) string {
	w := f.pathW
	r := []rune(p)
	if w < 2 || len(r) <= w {
		return p
	}
	return "…" + string(r[len(r)-w+1:])
}

// SetCursor puts the cursor on row i.
func (f *failuresModel) SetCursor(i int) { f.t.SetCursor(i) }

// columns fits the table's columns to the width: numbers fixed, the three paths share the rest.
func (f *failuresModel) columns() {
	fixed := []table.Column{{Title: "#", Width: 5}, {Title: "decision", Width: 8}, {Title: "margin", Width: 8},
		{Title: "score A", Width: 8}, {Title: "score B", Width: 8}, {Title: "chose", Width: 5}, {Title: "label", Width: 5}}
	used := 0
	for _, c := range fixed {
		used += c.Width + 2 // the cells' padding
	}
	path := max((f.width-used)/3-2, 8)
	f.pathW = path
	f.t.SetColumns(append(fixed, table.Column{Title: "reference", Width: path}, table.Column{Title: "A", Width: path}, table.Column{Title: "B", Width: path}))
}

func (f failuresModel) Update(msg tea.Msg) (failuresModel, tea.Cmd) {
	if km, ok := msg.(tea.KeyPressMsg); ok && key.Matches(km, f.keys.Open) {
		if f.loading || len(f.rows) == 0 {
			return f, nil
		}
		row := f.t.Cursor()
		return f, func() tea.Msg { return failureOpenMsg{row: row} }
	}
	var cmd tea.Cmd
	f.t, cmd = f.t.Update(msg)
	return f, cmd
}

func (f failuresModel) View() string {
	title := f.st.PanelTitle.Render("failed decisions") + f.st.Dim.Render(" · "+f.title)
	switch {
	case f.loading:
		return title + "\n" + f.st.Dim.Render(" reading the results…")
	case len(f.rows) == 0:
		return title + "\n" + f.st.Dim.Render(" none: the metric agreed with every decision of this cell")
	}
	return title + "\n" + f.t.View()
}

// status describes the row under the cursor.
func (f failuresModel) status() string {
	if f.loading || len(f.rows) == 0 {
		return ""
	}
	d := f.rows[f.t.Cursor()]
	dir := direction(api.Metric(d.Metric))
	a, b := pairText(float64(d.ScoreA), float64(d.ScoreB))
	return fmt.Sprintf("%d failed decisions, worst margin first · reference %s, A %s (%s), B %s (%s); %s; the label says %s",
		len(f.rows), filepath.Base(d.Ref), filepath.Base(d.A), a, filepath.Base(d.B), b, dir, strings.ToUpper(d.Human))
}

// pairText formats two scores with the decimals (4 to 8) that tell them apart, as a decision
// between them is often made in the last digits.
func pairText(a, b float64) (string, string) {
	for d := 4; ; d++ {
		sa, sb := strconv.FormatFloat(a, 'f', d, 64), strconv.FormatFloat(b, 'f', d, 64)
		if sa != sb || d == 8 || a == b {
			return sa, sb
		}
	}
}
