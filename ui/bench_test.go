package ui

import (
	"slices"

	tea "charm.land/bubbletea/v2"

	"testing"
	"time"

	"github.com/diffsim/diffsim/ui/termgfx"
)

// BenchmarkLayerSwitchFrame measures a layer switch with cached features, from the key to
// the new frame: Update, the Score command, the result, the render command (compose and
// encode the five pictures), the pictures, and View. The target is 50 ms.
func BenchmarkLayerSwitchFrame(b *testing.B) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"120x40", 120, 40}, {"200x60", 200, 60}} {
		b.Run(size.name, func(b *testing.B) {
			m, _ := readyModel(b, size.w, size.h)
			send(m, press("J"))
			send(m, press("K")) // both layers' results seen once
			keys := []string{"J", "K"}
			b.ReportAllocs()
			i := 0
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				send(m, press(keys[i%2]))
				_ = m.View()
				took = append(took, time.Since(start))
				i++
			}
			if !m.current() {
				b.Fatal("view not answered")
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// BenchmarkLayerSwitchFrameSixel is the same with the five pictures encoded as sixel at
// 10×20-pixel cells (the photos' scaling is cached, the overlays are not).
func BenchmarkLayerSwitchFrameSixel(b *testing.B) {
	m, _ := newTestModel(b, 120, 40, "fake:a", "fake:b")
	m.pv.caps = termgfx.Caps{Protocol: termgfx.Sixel, CellW: 10, CellH: 20}
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	drive(m, m.loadCmd("fake:a", "fake:b"))
	send(m, press("J"))
	send(m, press("K"))
	keys := []string{"J", "K"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		send(m, press(keys[i%2]))
		_ = m.View()
		i++
	}
}

// BenchmarkUpdate measures Update alone (no commands run) for the messages that arrive
// most: keys, results and pictures. Update must stay well under 1 ms.
func BenchmarkUpdate(b *testing.B) {
	b.Run("key-layer", func(b *testing.B) {
		m, _ := readyModel(b, 200, 60)
		keys := []string{"J", "K"}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.Update(press(keys[i%2]))
			i++
		}
	})
	b.Run("key-t", func(b *testing.B) {
		m, _ := readyModel(b, 200, 60)
		keys := []string{".", ","}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.Update(press(keys[i%2]))
			i++
		}
	})
	b.Run("score-result", func(b *testing.B) {
		m, _ := readyModel(b, 200, 60)
		msg := scoreMsg{gen: m.rq.gen, res: *m.rq.res}
		b.ReportAllocs()
		for b.Loop() {
			m.rq.fg.busy, m.rq.fg.req = true, msg.res.Req
			m.Update(msg)
		}
	})
	b.Run("layer-scores", func(b *testing.B) {
		m, _ := readyModel(b, 200, 60)
		msg := layerScoresMsg{gen: m.rq.gen, id: -1, t: m.sel.t, metric: m.sel.metric, scores: m.rq.scores[scoreKey{m.sel.t, m.sel.metric}]}
		b.ReportAllocs()
		for b.Loop() {
			m.Update(msg)
		}
	})
	b.Run("pictures", func(b *testing.B) {
		m, _ := readyModel(b, 200, 60)
		msg := picturesMsg{pics: m.pv.pics}
		b.ReportAllocs()
		for b.Loop() {
			msg.seq++
			m.Update(msg)
		}
	})
}

// BenchmarkView measures drawing the main screen with half-block images.
func BenchmarkView(b *testing.B) {
	m, _ := readyModel(b, 200, 60)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}
