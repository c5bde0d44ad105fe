package bench

import (
	"math"
	"math/bits"

	"github.com/diffsim/diffsim/api"
)

// Tally counts a grid run's decisions cell by cell as its records arrive, and keeps which
// decisions each cell got right, so that cells can be compared decision by decision. It holds
// a few bits per decision and cell, never the records.
type Tally struct {
	g       GridSettings
	higher  []bool // per metric
	set     map[string]int
	cells   []cellCount // by set, metric, layer, timestep
	records int
}

type cellCount struct {
	made, correct, skipped int
	decided, right         bitset // by decision index
}

type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)   { b[i/64] |= 1 << (i % 64) }

// NewTally starts an empty tally of a grid.
func NewTally(g GridSettings) *Tally {
	t := &Tally{g: g, set: map[string]int{}}
	for i, s := range g.Sets {
		t.set[s] = i
	}
	for _, m := range g.Metrics {
		t.higher = append(t.higher, api.Metric(m).HigherIsMoreSimilar())
	}
	t.cells = make([]cellCount, len(g.Sets)*g.Cells())
	for i := range t.cells {
		t.cells[i].decided, t.cells[i].right = newBitset(g.Total), newBitset(g.Total)
	}
	return t
}

func (t *Tally) cell(set, mi, li, ti int) *cellCount {
	g := t.g
	return &t.cells[((set*len(g.Metrics)+mi)*len(g.Layers)+li)*len(g.T)+ti]
}

// Add counts one record; each decision and timestep must come once.
func (t *Tally) Add(r GridRecord) {
	s, ok := t.set[r.Set]
	ti := t.g.TIndex(r.T)
	if !ok || ti < 0 || r.Index < 0 || r.Index >= t.g.Total {
		return // ScanGrid refuses such records; a tally does not guess
	}
	t.records++
	for mi, m := range t.g.Metrics {
		for li := range t.g.Layers {
			c := t.cell(s, mi, li, ti)
			made, correct := r.outcome(li, m, t.higher[mi])
			switch {
			case !made:
				c.skipped++
			case correct:
				c.made++
				c.correct++
				c.decided.set(r.Index)
				c.right.set(r.Index)
			default:
				c.made++
				c.decided.set(r.Index)
			}
		}
	}
}

// Records is the number of records counted.
func (t *Tally) Records() int { return t.records }

// CellReport is the accuracy of one cell of a grid over one decision set: a line of
// `bench report --json`.
type CellReport struct {
	Set        string    `json:"set"`
	Layer      string    `json:"layer"`
	LayerIndex int       `json:"layer_index"`
	LayerLabel string    `json:"layer_label"`
	T          int       `json:"t"`
	Step       int       `json:"step"` // the reference's step index; 0 where t has none
	Metric     string    `json:"metric"`
	Accuracy   api.Float `json:"accuracy"` // null when no decision was made
	Low        api.Float `json:"ci_low"`   // 95% Wilson score interval
	High       api.Float `json:"ci_high"`
	N          int       `json:"n"` // decisions made (skipped ones are not counted)
	Correct    int       `json:"correct"`
	Skipped    int       `json:"skipped"`
	// Best marks the most accurate cell of its set and metric; Indistinguishable the cells
	// that McNemar's exact test on the same decisions cannot tell from it (p ≥ 0.05; PBest).
	Best              bool      `json:"best"`
	Indistinguishable bool      `json:"indistinguishable"`
	PBest             api.Float `json:"p_vs_best"`
	Meaningless       bool      `json:"meaningless,omitempty"` // cross-attention on text: every decision a tie
}

// Report is a grid's accuracy: every cell of every decision set.
type Report struct {
	Settings GridSettings
	Cells    []CellReport // by set, metric, layer, timestep
	Records  int          // decisions × timesteps recorded
	Expected int          // decisions × timesteps of the whole benchmark
}

// Complete reports whether every decision of the benchmark is recorded at every timestep.
func (r Report) Complete() bool { return r.Records == r.Expected }

// At is the cell of set s, metric mi, layer li and timestep ti (indices into the settings).
func (r Report) At(s, mi, li, ti int) CellReport {
	g := r.Settings
	return r.Cells[((s*len(g.Metrics)+mi)*len(g.Layers)+li)*len(g.T)+ti]
}

// Alpha is the level at which a cell counts as distinguishable from the best.
const Alpha = 0.05

// Report computes every cell's accuracy and interval, and each set and metric's best cell
// with the cells not distinguishable from it.
func (t *Tally) Report() Report {
	g := t.g
	rep := Report{Settings: g, Records: t.records, Expected: g.Total * len(g.T)}
	nan := api.Float(math.NaN())
	for s, set := range g.Sets {
		for mi, m := range g.Metrics {
			best := -1
			var bestAcc float64
			start := len(rep.Cells)
			for li, l := range g.Layers {
				for ti, tt := range g.T {
					c := t.cell(s, mi, li, ti)
					cr := CellReport{
						Set: set, Layer: l.Name, LayerIndex: l.Index, LayerLabel: l.Label, T: tt, Step: g.Step[ti], Metric: m,
						Accuracy: nan, Low: nan, High: nan, PBest: nan,
						N: c.made, Correct: c.correct, Skipped: c.skipped, Meaningless: l.Meaningless,
					}
					if c.made > 0 {
						p, lo, hi := Wilson(c.correct, c.made)
						cr.Accuracy, cr.Low, cr.High = api.Float(p), api.Float(lo), api.Float(hi)
						if !l.Meaningless && (best < 0 || p > bestAcc) {
							best, bestAcc = len(rep.Cells), p
						}
					}
					rep.Cells = append(rep.Cells, cr)
				}
			}
			if best < 0 {
				continue
			}
			rep.Cells[best].Best = true
			bl, bt := (best-start)/len(g.T), (best-start)%len(g.T)
			bc := t.cell(s, mi, bl, bt)
			for i := start; i < len(rep.Cells); i++ {
				li, ti := (i-start)/len(g.T), (i-start)%len(g.T)
				c := t.cell(s, mi, li, ti)
				if c.made == 0 {
					continue
				}
				p := mcNemar(c, bc)
				rep.Cells[i].PBest = api.Float(p)
				rep.Cells[i].Indistinguishable = i != best && p >= Alpha && !rep.Cells[i].Meaningless
			}
		}
	}
	return rep
}

// mcNemar is the two-sided exact McNemar p-value of cells x and y over the decisions both
// made: under the null hypothesis the decisions one gets right and the other wrong split
// evenly between them.
func mcNemar(x, y *cellCount) float64 {
	xRight, yRight := 0, 0
	for i := range x.decided {
		d := x.decided[i] & y.decided[i]
		xr, yr := x.right[i]&d, y.right[i]&d
		xRight += bits.OnesCount64(xr &^ yr)
		yRight += bits.OnesCount64(yr &^ xr)
	}
	n := xRight + yRight
	if n == 0 {
		return 1
	}
	return min(1, 2*binomCDF(min(xRight, yRight), n))
}

// binomCDF is P(X ≤ k) for X ~ Binomial(n, 1/2), summed in log space so that n in the
// tens of thousands neither overflows nor underflows.
func binomCDF(k, n int) float64 {
	lgN, _ := math.Lgamma(float64(n + 1))
	sum := 0.0
	for i := 0; i <= k; i++ {
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lgN - a - b - float64(n)*math.Ln2)
	}
	return sum
}

// Difference is the difference of two independent proportions p1 − p2 with Newcombe's
// hybrid score interval (his method 10), built from each proportion's 95% Wilson interval;
// NaNs when either has no decisions.
func Difference(k1, n1, k2, n2 int) (d, lo, hi float64) {
	p1, l1, u1 := Wilson(k1, n1)
	p2, l2, u2 := Wilson(k2, n2)
	d = p1 - p2
	lo = d - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2))
	hi = d + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
	return d, lo, hi
}
