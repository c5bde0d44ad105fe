package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/session"
)

// exportTile is the side of each picture in an exported PNG.
const exportTile = 256

// exportRecord is the JSON written beside the exported PNG.
type exportRecord struct {
	Model          string    `json:"model"`
	Layer          string    `json:"layer"`
	LayerShort     string    `json:"layer_short,omitempty"`
	LayerIndex     int       `json:"layer_index"`
	T              int       `json:"t"`
	Step           int       `json:"step"`
	Metric         string    `json:"metric"`
	Score          *float64  `json:"score"` // null when meaningless
	AtoB           *float64  `json:"a_to_b"`
	BtoA           *float64  `json:"b_to_a"`
	Meaningless    string    `json:"meaningless,omitempty"`
	HigherIsBetter bool      `json:"higher_is_more_similar"`
	FeatureCosine  *float64  `json:"feature_cosine"`
	MSE            *float64  `json:"mse"`
	Global         *float64  `json:"global_cosine"`
	Size           int       `json:"size"`
	Seed           int64     `json:"seed"`
	Prompt         string    `json:"prompt,omitempty"`
	CFG            bool      `json:"cfg,omitempty"`
	Device         string    `json:"device"`
	ImageA         string    `json:"image_a"`
	ImageB         string    `json:"image_b"`
	Token          [2]int    `json:"token"`
	Grid           [2]int    `json:"grid"`
	MapA           []float32 `json:"map_a"`
	MapB           []float32 `json:"map_b"`
	Attention      []float32 `json:"attention"`
	PNG            string    `json:"png"`
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// exportName is the file stem: the images, the layer and t.
func exportName(a, b string, l features.Layer, t int, timesteps bool) string {
	stem := func(p string) string { return strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)) }
	s := stem(a) + "_vs_" + stem(b) + "_" + shortName(l)
	if timesteps {
		s += fmt.Sprintf("_t%03d", t)
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' || r == ':' {
			return '-'
		}
		return r
	}, s)
}

// exportCmd writes the current view as PNG and JSON, in the background.
func (m *Model) exportCmd() tea.Cmd {
	if m.a == nil || !m.current() {
		m.notice = "nothing to export yet: wait for the score"
		return nil
	}
	res := *m.res
	l, _ := m.currentLayer()
	tx, ty, _ := m.token()
	dir := m.opts.ExportDir
	if dir == "" {
		dir = "."
	}
	name := exportName(m.pathA, m.pathB, l, m.t, m.info.Timesteps)
	info, a, b, cond := m.info, m.a, m.b, m.cond
	cursor := m.styles.Cursor
	return func() tea.Msg {
		pngPath := filepath.Join(dir, name+".png")
		jsonPath := filepath.Join(dir, name+".json")
		img := exportImage(a, b, res, info, l, tx, ty, cursor)
		if err := writeAtomic(pngPath, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
			return errMsg{op: "export", err: err}
		}
		rec := exportRecord{
			Model: info.Name, Layer: l.Name, LayerShort: l.Short, LayerIndex: l.Index,
			T: res.Req.T, Step: features.TToStep(res.Req.T), Metric: string(res.Metric),
			Score: num(res.Score), AtoB: num(res.AtoB), BtoA: num(res.BtoA), Meaningless: res.Meaningless,
			HigherIsBetter: res.HigherIsBetter, FeatureCosine: num(res.FeatureCosine), MSE: num(res.MSE), Global: num(res.Global),
			Size: info.Size, Seed: info.Seed, Prompt: cond.Prompt, CFG: cond.CFG, Device: info.Device, ImageA: a.Path, ImageB: b.Path,
			Token: [2]int{tx, ty}, Grid: [2]int{l.GridW, l.GridH},
			MapA: finite(res.MapA.Values), MapB: finite(res.MapB.Values), Attention: finite(res.AttnRow.Values),
			PNG: filepath.Base(pngPath),
		}
		if res.Meaningless != "" {
			rec.Score, rec.AtoB, rec.BtoA = nil, nil, nil
		}
		if err := writeAtomic(jsonPath, func(w io.Writer) error {
			e := json.NewEncoder(w)
			e.SetIndent("", "  ")
			return e.Encode(rec)
		}); err != nil {
			return errMsg{op: "export", err: err}
		}
		return exportMsg{paths: []string{pngPath, jsonPath}}
	}
}

// finite replaces NaN (JSON has none) with 0 in a copy; NaN marks no token in maps.
func finite(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		if !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) {
			out[i] = x
		}
	}
	return out
}

// exportImage lays out A and B with their cosine maps overlaid, then the three maps and
// their colour scales, under two lines saying what is shown.
func exportImage(a, b *session.Image, res session.Result, info session.ModelInfo, l features.Layer, tx, ty int, cursor color.Color) image.Image {
	const gap, header, caption, legendW = 8, 36, 18, 64
	face := basicfont.Face7x13
	n := 5
	width := n*exportTile + (n+1)*gap + 2*(legendW+gap)
	out := image.NewRGBA(image.Rect(0, 0, width, header+exportTile+caption+gap))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	text := func(x, y int, s string) {
		d := font.Drawer{Dst: out, Src: image.Black, Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	score := fmt.Sprintf("%s %.4f (A->B %.4f, B->A %.4f)", metricName(res.Metric), res.Score, res.AtoB, res.BtoA)
	if res.Meaningless != "" {
		score = metricName(res.Metric) + " n/a: " + res.Meaningless
	}
	name := l.Name
	if l.Short != "" {
		name = l.Short + " " + l.Name
	}
	text(gap, 14, fmt.Sprintf("A %s   B %s   model %s on %s, %d px, seed %d", filepath.Base(a.Path), filepath.Base(b.Path), info.Name, info.Device, info.Size, info.Seed))
	line2 := fmt.Sprintf("layer %s (%s %dx%d)", name, l.Kind, l.GridW, l.GridH)
	if info.Timesteps {
		line2 += fmt.Sprintf("   t %d (reference step %s)", res.Req.T, stepLabel(res.Req.T))
	}
	text(gap, 30, line2+"   "+score)

	lo, hi, ok := jointRange(res.MapA, res.MapB)
	alo, ahi, aok := jointRange(res.AttnRow)
	alo = min(alo, 0)
	if res.Meaningless != "" {
		ok, aok = false, false
	}
	tile := func(i int) image.Rectangle {
		x := gap + i*(exportTile+gap)
		return image.Rect(x, header, x+exportTile, header+exportTile)
	}
	for i, im := range []*session.Image{a, b} {
		fr := fitRect(im.W, im.H, exportTile, exportTile)
		var pic image.Image = heatmap.Resize(im.Pixels, fr.Dx(), fr.Dy())
		heat := res.MapA
		if i == 1 {
			heat = res.MapB
		}
		if ok {
			pic = heatmap.Overlay(pic, heatmap.Render(grid(heat), heatmap.Viridis(), lo, hi, fr.Dx(), fr.Dy()), overlayAlpha)
		}
		rgba := image.NewRGBA(image.Rect(0, 0, fr.Dx(), fr.Dy()))
		draw.Draw(rgba, rgba.Rect, pic, image.Point{}, draw.Src)
		heatmap.DrawCursor(rgba, l.GridW, l.GridH, tx, ty, cursor)
		draw.Draw(out, fr.Add(tile(i).Min), rgba, image.Point{}, draw.Over)
	}
	maps := []struct {
		m      features.Map
		lo, hi float32
		ok     bool
	}{{res.MapA, lo, hi, ok}, {res.MapB, lo, hi, ok}, {res.AttnRow, alo, ahi, aok}}
	for i, mp := range maps {
		if !mp.ok || mp.m.W <= 0 || mp.m.H <= 0 {
			continue
		}
		fr := fitRect(mp.m.W, mp.m.H, exportTile, exportTile)
		hm := heatmap.RenderBlocks(grid(mp.m), heatmap.Viridis(), mp.lo, mp.hi, fr.Dx(), fr.Dy())
		if i == 0 {
			heatmap.DrawCursor(hm, mp.m.W, mp.m.H, tx, ty, cursor)
		}
		draw.Draw(out, fr.Add(tile(2+i).Min), hm, image.Point{}, draw.Over)
	}
	captions := []string{"A, cosine map over it", "B, cosine map over it", "cos A (self vs cross)", "cos B",
		fmt.Sprintf("attention of A %d,%d over B", tx, ty)}
	for i, c := range captions {
		text(tile(i).Min.X, header+exportTile+14, c)
	}
	// colour scales: the cosine maps', then the attention's
	x := gap + n*(exportTile+gap)
	if ok {
		draw.Draw(out, image.Rect(x, header, x+legendW, header+exportTile), heatmap.LabeledLegend(heatmap.Viridis(), lo, hi, 12, legendW, exportTile), image.Point{}, draw.Src)
		text(x, header+exportTile+14, "cos")
	}
	x += legendW + gap
	if aok {
		draw.Draw(out, image.Rect(x, header, x+legendW, header+exportTile), heatmap.LabeledLegend(heatmap.Viridis(), alo, ahi, 12, legendW, exportTile), image.Point{}, draw.Src)
		text(x, header+exportTile+14, "attn")
	}
	return out
}

// writeAtomic writes a file through a temporary file in the same directory and renames
// it into place, so a reader never sees half a file.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if err := errors.Join(f.Sync(), f.Chmod(0o644)); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	return nil
}
