package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/bench"
	"github.com/diffsim/diffsim/ui/internal/fake"
)

// resultsFixture writes a grid results file over images in a folder: two layers of the fake
// model (Down0 and Up0, indices 0 and 5) at t 101 and 501, one metric, six decisions, of
// which Up0 at t=501 gets 2, 4 and 5 wrong, by margins 0.3, 0.1 and 0.2.
func resultsFixture(t *testing.T) (results, root string) {
	t.Helper()
	root = t.TempDir()
	for _, n := range []string{"r", "a", "b"} {
		for i := range 6 {
			var buf bytes.Buffer
			png.Encode(&buf, fake.Pattern(fmt.Sprint(n, i), 32, 32))
			os.WriteFile(filepath.Join(root, fmt.Sprintf("%s%d.png", n, i)), buf.Bytes(), 0o644)
		}
	}
	g := bench.GridSettings{
		Format: bench.GridFormat, Layout: "triplet", Model: "fake", Size: 256, Seed: 2334,
		Layers: []bench.GridLayer{{Index: 0, Name: "down_blocks.0.attentions.1.transformer_blocks.0.attn1", Short: "Down0", Label: "Down0 attn1"},
			{Index: 5, Name: "up_blocks.1.attentions.2.transformer_blocks.0.attn1", Short: "Up0", Label: "Up0 attn1"}},
		T: []int{101, 501}, Step: []int{900, 500}, Metrics: []string{"aas"}, Sets: []string{bench.SetAll}, Total: 6,
	}
	var b bytes.Buffer
	line, _ := json.Marshal(g)
	b.Write(append(line, '\n'))
	wrong := map[int]float64{2: 0.3, 4: 0.1, 5: 0.2}
	for _, tt := range g.T {
		for i := range 6 {
			up0 := [2]api.Float{0.9, 0.5}
			if m, ok := wrong[i]; ok && tt == 501 {
				up0 = [2]api.Float{0.5, api.Float(0.5 + m)}
			}
			rec := bench.GridRecord{T: tt, Index: i, Set: bench.SetAll, ID: fmt.Sprint("d", i),
				Ref: fmt.Sprintf("r%d.png", i), A: fmt.Sprintf("a%d.png", i), B: fmt.Sprintf("b%d.png", i), Human: "a",
				Scores: map[string][][2]api.Float{"aas": {{0.8, 0.7}, up0}}}
			line, _ := json.Marshal(rec)
			b.Write(append(line, '\n'))
		}
	}
	results = filepath.Join(t.TempDir(), "grid.jsonl")
	if err := os.WriteFile(results, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return results, root
}

// driveResults runs cmd and what follows from it through the results explorer, as drive does
// for the explorer.
func driveResults(m *resultsModel, cmd tea.Cmd) (quit bool) {
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil, spinner.TickMsg, statsTickMsg:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
			quit = true
		case pairMsg, scoreMsg, layerScoresMsg, prefetchMsg, picturesMsg, errMsg, statsMsg, sweepJumpMsg, closeViewMsg, cellMsg, failureOpenMsg, tokenMsg:
			_, next := m.Update(msg)
			queue = append(queue, next)
		default:
		}
	}
	return quit
}

func pressResults(m *resultsModel, name string) (quit bool) {
	_, cmd := m.Update(press(name))
	return driveResults(m, cmd)
}

func TestResultsExplorer(t *testing.T) {
	results, root := resultsFixture(t)
	rep, err := bench.LoadReport(results)
	if err != nil {
		t.Fatal(err)
	}
	f := fake.New()
	opts := DefaultOptions()
	dark := true
	opts.Dark = &dark
	m := newResultsModel(t.Context(), testBackend{f}, Results{Path: results, Report: rep, Root: root}, opts)
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})

	// the matrix: accuracies, the cursor on the best cell
	view := ansi.Strip(m.View().Content)
	for _, want := range []string{"accuracy", "all set · AAS", "Down0", "Up0", "1.000", "0.500", "the best cell"} {
		if !strings.Contains(view, want) {
			t.Errorf("matrix view lacks %q:\n%s", want, view)
		}
	}
	// to Up0 at t=501: its failed decisions, worst margin first
	pressResults(m, "down")
	pressResults(m, "right")
	if !strings.Contains(ansi.Strip(m.View().Content), "Up0 attn1 t=501 (step 500): 50.0% [18.8, 81.2] · 3 of 6 right") {
		t.Errorf("cursor line:\n%s", ansi.Strip(m.View().Content))
	}
	pressResults(m, "enter")
	if m.screen != resultsList || len(m.list.rows) != 3 {
		t.Fatalf("after enter: screen %d, %d rows, err %v", m.screen, len(m.list.rows), m.err)
	}
	for i, want := range []int{2, 5, 4} {
		if d := m.list.rows[i]; d.Index != want || d.Layer != "up_blocks.1.attentions.2.transformer_blocks.0.attn1" || d.T != 501 {
			t.Errorf("row %d: decision %d at %s t=%d, want decision %d (worst margin first)", i, d.Index, d.Layer, d.T, want)
		}
	}
	if view := ansi.Strip(m.View().Content); !strings.Contains(view, "failed decisions · all · AAS · Up0 attn1 · t=501 (step 500)") || !strings.Contains(view, "r2.png") {
		t.Errorf("list view:\n%s", view)
	}

	// a decision: the reference and candidate A in the explorer at the cell's layer and t
	pressResults(m, "enter")
	ex := m.ex
	if m.screen != resultsPair || ex == nil {
		t.Fatalf("after enter on a decision: screen %d, explorer %v", m.screen, ex)
	}
	if ex.pair.pathA != filepath.Join(root, "r2.png") || ex.pair.pathB != filepath.Join(root, "a2.png") || ex.sel.layer != 5 || ex.sel.t != 501 || ex.pair.a == nil {
		t.Errorf("explorer shows %s ⇄ %s at layer %d t=%d (loaded %v)", ex.pair.pathA, ex.pair.pathB, ex.sel.layer, ex.sel.t, ex.pair.a != nil)
	}
	view = ansi.Strip(m.View().Content)
	if !strings.Contains(view, "decision 2: reference vs A 0.5000, vs B 0.8000 · the metric chose B, the label A · showing A") {
		t.Errorf("pair view's decision line:\n%s", view)
	}
	pressResults(m, "x")
	if ex.pair.pathB != filepath.Join(root, "b2.png") || !strings.Contains(ansi.Strip(m.View().Content), "showing B") {
		t.Errorf("x shows %s", ex.pair.pathB)
	}
	pressResults(m, "n")
	if ex.pair.pathA != filepath.Join(root, "r5.png") || ex.pair.pathB != filepath.Join(root, "a5.png") || m.list.t.Cursor() != 1 {
		t.Errorf("n shows %s ⇄ %s, list cursor %d", ex.pair.pathA, ex.pair.pathB, m.list.t.Cursor())
	}
	// the explorer keeps its keys: the metric key changes its metric, not the results'
	pressResults(m, "m")
	if ex.sel.metric == "aas" {
		t.Error("m in the pair view did not reach the explorer")
	}
	// back: the list (the explorer's images come off), then the matrix
	pressResults(m, "esc")
	if m.screen != resultsList || ex.sel.screen != screenAway || ex.showImages() {
		t.Errorf("esc from the pair: screen %d, explorer screen %d", m.screen, ex.sel.screen)
	}
	pressResults(m, "esc")
	if m.screen != resultsMatrix {
		t.Errorf("esc from the list: screen %d", m.screen)
	}
	pressResults(m, "esc") // the matrix is the top: esc does not quit
	if !pressResults(m, "q") {
		t.Error("q does not quit")
	}
}
