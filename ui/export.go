package ui

import (
	"encoding/json"
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
	"github.com/google/renameio/v2"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// exportTile is the side of each picture in an exported PNG.
const exportTile = 256

// exportRecord is the JSON written beside the exported PNG: the one score record every
// command writes (api.Record), and what only the explorer has: the token, the maps, the
// overlay the PNG's photos carry and the PNG's name.
type exportRecord struct {
	api.Record
	Token     [2]int    `json:"token"`
	Grid      [2]int    `json:"grid"`
	Overlay   string    `json:"overlay"`
	MapA      []float32 `json:"map_a"`
	MapB      []float32 `json:"map_b"`
	Attention []float32 `json:"attention"`
	PNG       string    `json:"png"`
}

// exportName is the file stem: the images, the layer and t.
func exportName(a, b string, l api.Layer, t int, timesteps bool) string {
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

// exportCmd writes the current view as PNG and JSON into the export folder, in the
// background. The PNG shows what the screen shows: the photos with the overlay that is on.
func (m *Model) exportCmd() tea.Cmd {
	if m.pair.a == nil || !m.current() {
		m.note.text = "nothing to export yet: wait for the score"
		return nil
	}
	res := *m.rq.result()
	l, _ := m.currentLayer()
	tx, ty, _ := m.token()
	dir := m.opts.ExportDir
	if dir == "" {
		dir = DefaultExportDir
	}
	name := exportName(m.pair.pathA, m.pair.pathB, l, m.sel.t, m.info.Timesteps)
	info, a, b, cond, overlay := m.info, m.pair.a, m.pair.b, m.cs.cur, m.pv.Overlay()
	cursor, baseline := m.styles.Cursor, m.baseline
	return func() tea.Msg {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return errMsg{exportError{fmt.Errorf("create the export folder %s: %w (set another with --export-dir)", dir, err)}}
		}
		pngPath := filepath.Join(dir, name+".png")
		jsonPath := filepath.Join(dir, name+".json")
		rec := exportRecord{
			Record: api.NewRecord(info, api.NewSetup(info, res.Req.Metric, cond), res),
			Token:  [2]int{tx, ty}, Grid: [2]int{l.GridW, l.GridH}, Overlay: overlay.String(),
			MapA: finite(res.MapA.Values), MapB: finite(res.MapB.Values), Attention: finite(res.AttnRow.Values),
			PNG: filepath.Base(pngPath),
		}
		if res.Meaningless != "" {
			// no image information: no number to mislead with (the record keeps why)
			rec.Score, rec.AtoB, rec.BtoA = api.NaN(), api.NaN(), api.NaN()
		}
		rec.Calibrate(baseline)
		img := exportImage(a, b, res, info, l, tx, ty, cursor, overlay, calibrationText(rec.Record))
		if err := writeAtomic(pngPath, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
			return errMsg{exportError{err}}
		}
		if err := writeAtomic(jsonPath, func(w io.Writer) error {
			e := json.NewEncoder(w)
			e.SetIndent("", "  ")
			return e.Encode(rec)
		}); err != nil {
			return errMsg{exportError{err}}
		}
		return exportMsg{dir: dir, files: []string{filepath.Base(pngPath), filepath.Base(jsonPath)}}
	}
}

// calibrationText is what the baseline says about the exported score, in the PNG's ASCII.
func calibrationText(r api.Record) string {
	if r.Baseline == nil || r.Rescaled == nil {
		return ""
	}
	s := fmt.Sprintf("rescaled %.2f", *r.Rescaled)
	if r.Percentile != nil {
		s += fmt.Sprintf(", more similar than %.0f%% of unrelated pairs", *r.Percentile)
	}
	return s + " (" + r.Baseline.Source + ")"
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
func exportImage(a, b *api.Image, res api.Result, info api.ModelInfo, l api.Layer, tx, ty int, cursor color.Color, overlay overlayMode, calibrated string) image.Image {
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
	if calibrated != "" {
		score += "   " + calibrated
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
	for i, im := range []*api.Image{a, b} {
		fr := fitRect(im.W, im.H, exportTile, exportTile)
		var pic image.Image = heatmap.Resize(im.Pixels, fr.Dx(), fr.Dy())
		heat, hlo, hhi, hok := res.MapA, lo, hi, ok
		switch {
		case overlay == overlayNone:
			hok = false
		case overlay == overlayAttn && i == 0:
			hok = false // the attention is over B only
		case overlay == overlayAttn:
			heat, hlo, hhi, hok = res.AttnRow, alo, ahi, aok
		case i == 1:
			heat = res.MapB
		}
		if hok {
			pic = heatmap.Tint(pic, heatmap.Render(grid(heat), heatmap.Viridis(), hlo, hhi, fr.Dx(), fr.Dy()), overlayAlpha(termgfx.Sixel))
		}
		rgba := image.NewRGBA(image.Rect(0, 0, fr.Dx(), fr.Dy()))
		draw.Draw(rgba, rgba.Rect, pic, image.Point{}, draw.Src)
		heatmap.DrawCursor(rgba, l.GridW, l.GridH, tx, ty, cursor)
		draw.Draw(out, fr.Add(tile(i).Min), rgba, image.Point{}, draw.Over)
	}
	maps := []struct {
		m      api.Map
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
	captions := []string{"A", "B", "cos A (self vs cross)", "cos B", fmt.Sprintf("attention of A %d,%d over B", tx, ty)}
	switch overlay {
	case overlayCos:
		captions[0], captions[1] = "A, cosine map over it", "B, cosine map over it"
	case overlayAttn:
		captions[0], captions[1] = "A (token marked)", fmt.Sprintf("B, attention of A %d,%d over it", tx, ty)
	}
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
// it into place (renameio), so a reader never sees half a file.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o644))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer f.Cleanup()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
