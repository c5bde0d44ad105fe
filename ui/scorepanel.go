package ui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/calibration"
)

// scoreData is what the score panel shows that the root owns.
type scoreData struct {
	info   api.ModelInfo
	served string // "served" when the network runs in diffsim serve
	layer  api.Layer
	t      int
	metric api.Metric
	// res answers the pair, layer, t and metric shown (its token may be another); nil while
	// they are computing, so the panel never shows a number of another layer or t.
	res *api.Result
	// baseline, when there is one for this model and its settings, calibrates the score.
	baseline *calibration.Baseline
}

// scorePanel shows the numbers of the current view. What does not fit goes whole, least
// important first: the setup lines, the layer's module path, the baselines, A→B and B→A;
// the score, the layer and what the score means against unrelated pairs stay.
type scorePanel struct {
	st            Styles
	width, height int
	d             scoreData
}

func newScorePanel(st Styles) scorePanel { return scorePanel{st: st} }

func (p *scorePanel) SetSize(w, h int)    { p.width, p.height = w, h }
func (p *scorePanel) SetStyles(st Styles) { p.st = st }
func (p *scorePanel) SetData(d scoreData) { p.d = d }

// The panel has no keys of its own.
func (p scorePanel) ShortHelp() []key.Binding  { return nil }
func (p scorePanel) FullHelp() [][]key.Binding { return nil }

// Item priorities: lower is more important.
const (
	prioScore = iota - 1 // never dropped
	prioLayer
	prioCalibrated
	prioT
	prioBaselineName
	prioNotice
	prioDirections
	prioBaselines
	prioModel
	prioSetup
	prioModule
	prioDescription
)

func (p scorePanel) View() string {
	st := p.st
	inner := max(p.width-4, 1)
	lab := func(s string) seg { return seg{s, st.Label} }
	val := func(s string) seg { return seg{s, st.Value} }
	var items []item
	d := p.d
	switch r := d.res; {
	case r == nil:
		items = append(items, item{prio: prioScore, sep: " ", chunks: []chunk{{{metricName(d.metric), st.Big}}, {{"computing…", st.Dim}}}})
	case r.Meaningless != "":
		items = append(items,
			item{prio: prioScore, sep: "  ", chunks: []chunk{{{metricName(d.metric) + " n/a", st.Big}}, {{"no image information", st.Meaningless}}}},
			words(prioCalibrated, st.Meaningless, r.Meaningless))
	default:
		big := metricName(r.Metric) + " " + fmtScore(r.Score)
		dir := directionIn(r.Metric, inner-ansi.StringWidth(big)-2)
		items = append(items, item{prio: prioScore, sep: "  ", chunks: []chunk{{{big, st.Big}}, {{dir, st.Dim}}}})
		items = append(items, p.calibrated(r)...)
	}
	l := d.layer
	short := listName(l) + " #" + fmt.Sprint(l.Index)
	items = append(items, item{prio: prioLayer, sep: " · ", chunks: []chunk{
		{lab("layer "), {short, st.Selected}}, {lab(fmt.Sprintf("%s %d×%d", l.Kind, l.GridW, l.GridH))}}})
	if d.info.Timesteps {
		items = append(items, item{prio: prioT, sep: " ", chunks: []chunk{
			{lab("t "), val(fmt.Sprint(d.t))}, {lab("(reference step "), val(stepLabel(d.t)), lab(")")}}})
	} else {
		items = append(items, words(prioT, st.Label, "no timesteps (t does not apply)"))
	}
	if r := d.res; r != nil && r.Meaningless == "" {
		items = append(items, item{prio: prioDirections, sep: "  ", chunks: []chunk{
			{lab("A→B "), val(fmtScore(r.AtoB))}, {lab("B→A "), val(fmtScore(r.BtoA))}}})
		bl := item{prio: prioBaselines, sep: "  ", chunks: []chunk{
			{lab("cos "), val(fmtMaybe(r.FeatureCosine))}, {lab("mse "), val(fmtMaybe(r.MSE))}}}
		if !math.IsNaN(r.Global) {
			bl.chunks = append(bl.chunks, chunk{lab("global "), val(fmtMaybe(r.Global))})
		}
		items = append(items, bl)
	}
	if d.info.Notice != "" {
		items = append(items, words(prioNotice, st.Notice, d.info.Notice))
	}
	model := item{prio: prioModel, sep: " ", chunks: []chunk{{lab("model "), val(d.info.Name)}, {lab("on "), val(d.info.Device)}}}
	if d.served != "" {
		model.chunks = append(model.chunks, chunk{lab("· "), {d.served, st.Notice}})
	}
	items = append(items, model)
	setup := item{prio: prioSetup, sep: " · ", chunks: []chunk{{val(fmt.Sprintf("%d px", d.info.Size))}, {lab("seed "), val(fmt.Sprint(d.info.Seed))}}}
	if r := d.res; r != nil {
		took, how := "<1ms", "network run"
		if r.Elapsed >= time.Millisecond {
			took = r.Elapsed.Round(time.Millisecond).String()
		}
		if r.Cached {
			how = "cached"
		}
		setup.chunks = append(setup.chunks, chunk{val(took), lab(" " + how)})
	}
	items = append(items, setup)
	if l.Name != listName(l) {
		items = append(items, item{prio: prioModule, chunks: []chunk{{val(l.Name)}}})
	}
	if d.info.Description != "" {
		items = append(items, words(prioDescription, st.Dim, d.info.Description))
	}
	body := block(strings.Join(fitItems(items, inner, p.height-2), "\n"), inner, p.height-2)
	return st.Panel.Width(p.width).Height(p.height).Render(body)
}

// calibrated are the lines that put the score against unrelated pairs: "rescaled 0.31 ·
// more similar than 72% of unrelated pairs", and which baseline says so.
func (p scorePanel) calibrated(r *api.Result) []item {
	st := p.st
	b := p.d.baseline
	if b == nil {
		return []item{words(prioDescription, st.Dim, "no baseline of unrelated pairs for this model: diffsim baseline build DIR")}
	}
	c, ok := b.Calibrate(r.Req.Layer, r.Req.T, string(r.Metric), r.Score)
	if !ok {
		return []item{words(prioBaselineName, st.Dim, "the baseline has no cell at this layer and t")}
	}
	it := item{prio: prioCalibrated, sep: " "}
	if !math.IsNaN(c.Rescaled) {
		it.chunks = append(it.chunks, chunk{{"rescaled ", st.Label}, {fmt.Sprintf("%.2f", c.Rescaled), st.Value}}, chunk{{"·", st.Label}})
	}
	it.chunks = append(it.chunks, words(0, st.Value, calibration.PercentileWords(c.Percentile)).chunks...)
	name := "baseline: " + b.Name()
	if c.Cell.Interpolated {
		name += " (interpolated in t)"
	}
	return []item{it, words(prioBaselineName, st.Dim, name)}
}
