package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/api"
)

// scorePanel shows the numbers of the current view.
type scorePanel struct {
	st            Styles
	width, height int
	info          api.ModelInfo
	served        string // "served" when the network runs in diffsim serve
	layer         api.Layer
	res           *api.Result
	current       bool // res answers the current view
	t             int
	metric        api.Metric
	tx, ty        int
}

func (p *scorePanel) SetSize(w, h int) { p.width, p.height = w, h }

func (p scorePanel) View() string {
	st := p.st
	inner := p.width - 4
	lab := func(s string) string { return st.Label.Render(s) }
	val := func(s string) string { return st.Value.Render(s) }
	var lines []string
	switch {
	case p.res == nil:
		lines = append(lines, st.Big.Render(metricName(p.metric))+"  "+st.Dim.Render("computing…"), "", "")
	case p.res.Meaningless != "":
		lines = append(lines,
			st.Big.Render(metricName(p.metric))+"  "+st.Meaningless.Render("n/a: no image information"),
			st.Meaningless.Render(ansi.Truncate(p.res.Meaningless, inner, "…")), "")
	default:
		r := p.res
		big := metricName(r.Metric) + " " + fmtScore(r.Score)
		head := st.Big.Render(big) + "  " + st.Dim.Render(directionIn(r.Metric, inner-ansi.StringWidth(big)-2))
		if !p.current {
			head = st.Dim.Render(metricName(r.Metric)+" "+fmtScore(r.Score)) + "  " + st.Dim.Render("(updating…)")
		}
		lines = append(lines, head,
			lab("A→B ")+val(fmtScore(r.AtoB))+lab("  B→A ")+val(fmtScore(r.BtoA)),
			lab("cos ")+val(fmtMaybe(r.FeatureCosine))+lab("  mse ")+val(fmtMaybe(r.MSE))+lab("  global ")+val(fmtMaybe(r.Global)))
	}
	l := p.layer
	short := l.Short
	if short == "" {
		short = "#" + fmt.Sprint(l.Index)
	} else {
		short += " #" + fmt.Sprint(l.Index)
	}
	geom := fmt.Sprintf("%s %d×%d", l.Kind, l.GridW, l.GridH)
	lines = append(lines,
		lab("layer ")+st.Selected.Render(short)+lab("  "+geom),
		st.Value.Render(ellipsize(l.Name, inner)))
	if p.info.Timesteps {
		lines = append(lines, lab("t ")+val(fmt.Sprint(p.t))+lab(" (reference step ")+val(stepLabel(p.t))+lab(")"))
	} else {
		lines = append(lines, lab("no timesteps (t does not apply)"))
	}
	device := lab("model ") + val(p.info.Name) + lab(" on ") + val(p.info.Device)
	if p.served != "" {
		device += lab(" · ") + st.Notice.Render(p.served)
	}
	lines = append(lines, device)
	setup := val(fmt.Sprintf("%d px", p.info.Size)) + lab(" · seed ") + val(fmt.Sprint(p.info.Seed))
	if r := p.res; r != nil && p.current {
		took, how := "<1ms", "network run"
		if r.Elapsed >= time.Millisecond {
			took = r.Elapsed.Round(time.Millisecond).String()
		}
		if r.Cached {
			how = "cached"
		}
		setup += lab(" · ") + val(took) + lab(" "+how)
	}
	lines = append(lines, setup)
	if p.info.Notice != "" {
		lines = append(lines, st.Notice.Render(p.info.Notice))
	} else {
		lines = append(lines, st.Dim.Render(p.info.Description))
	}
	for i := range lines {
		lines[i] = ansi.Truncate(lines[i], inner, "…")
	}
	body := block(strings.Join(lines, "\n"), inner, p.height-2)
	return st.Panel.Width(p.width).Height(p.height).Render(body)
}
