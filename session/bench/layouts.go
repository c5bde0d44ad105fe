package bench

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/diffsim/diffsim/features/imagefile"
)

// Layouts lists the layouts Load reads.
var Layouts = []string{"triplet", "grid", "2afc", "nights", "tid2013"}

// ErrLayout marks a benchmark folder or file that does not have the layout asked for.
var ErrLayout = errors.New("bad benchmark layout")

// Options tune how a layout becomes tasks.
type Options struct {
	SampleSeed uint64 // triplet: which negatives are drawn and in what order
	Max        int    // keep only the first Max decisions (after the triplet shuffle); 0 = all
	Split      string // nights: train, val or test ("" or "all" = every row)
	MinVotes   int    // nights: keep rows whose votes column is at least this
}

// Load reads a benchmark in one of the Layouts.
func Load(layout, path string, o Options) (*Dataset, error) {
	var d *Dataset
	var err error
	switch strings.ToLower(layout) {
	case "triplet":
		d, err = Triplet(path, o.SampleSeed)
	case "grid":
		d, err = StyleContent(path, o.SampleSeed)
	case "2afc":
		d, err = TwoAFC(path)
	case "nights":
		d, err = NIGHTS(path, o.Split, o.MinVotes)
	case "tid2013":
		d, err = TID2013(path)
	default:
		return nil, fmt.Errorf("%w: unknown layout %q (want %s)", ErrLayout, layout, strings.Join(Layouts, ", "))
	}
	if err != nil {
		return nil, err
	}
	if len(d.Tasks) == 0 {
		return nil, fmt.Errorf("%w: %s: no decisions in %s layout%s", ErrLayout, path, d.Layout, noteSuffix(d.Notes))
	}
	if o.Max > 0 && len(d.Tasks) > o.Max {
		d.Tasks = d.Tasks[:o.Max]
	}
	for i := range d.Tasks {
		d.Tasks[i].Index = i
	}
	return d, nil
}

func noteSuffix(notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(notes, "; ") + ")"
}

// Triplet reads class folders: every ordered pair of images of one class (anchor, positive)
// against one negative drawn from another class. The draw and the order of the decisions
// come from seed, so a run is repeatable and --max takes a fair sample.
func Triplet(root string, seed uint64) (*Dataset, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	type class struct {
		name   string
		images []string
	}
	var classes []class
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, _, err := imagefile.ImageFiles(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			continue
		}
		for i, f := range files {
			files[i], _ = filepath.Rel(root, f)
		}
		classes = append(classes, class{e.Name(), files})
	}
	if len(classes) < 2 {
		return nil, fmt.Errorf("%w: %s: the triplet layout needs at least two class folders with images, found %d", ErrLayout, root, len(classes))
	}
	rng := rand.New(rand.NewPCG(seed, 0x243f6a8885a308d3))
	d := &Dataset{Layout: "triplet", Root: root}
	for ci, c := range classes {
		for i, anchor := range c.images {
			for j, pos := range c.images {
				if i == j {
					continue
				}
				other := rng.IntN(len(classes) - 1)
				if other >= ci {
					other++
				}
				neg := classes[other].images[rng.IntN(len(classes[other].images))]
				d.Tasks = append(d.Tasks, Task{ID: anchor + "|" + pos + "|" + neg, Ref: anchor, A: pos, B: neg, Human: "a"})
			}
		}
	}
	if len(d.Tasks) == 0 {
		d.Notes = append(d.Notes, "no class folder holds two images")
	}
	rng.Shuffle(len(d.Tasks), func(i, j int) { d.Tasks[i], d.Tasks[j] = d.Tasks[j], d.Tasks[i] })
	return d, nil
}

// Column names each layout accepts, lower case; the first found wins.
var (
	colID     = []string{"id", "triplet_id", "name"}
	colRef    = []string{"ref", "reference", "ref_path", "reference_path", "anchor", "query", "image_ref", "ref_img"}
	colA      = []string{"a", "left", "left_path", "image_a", "candidate_a", "img_a", "img0", "p0", "distorted_a", "first"}
	colB      = []string{"b", "right", "right_path", "image_b", "candidate_b", "img_b", "img1", "p1", "distorted_b", "second"}
	colChoice = []string{"choice", "human", "human_choice", "winner", "answer", "label", "judge", "more_similar", "closer", "target", "vote"}
)

// table is a CSV file read by column name.
type table struct {
	name string
	cols map[string]int
	rows [][]string
}

func readTable(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s is empty", ErrLayout, path)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrLayout, path, err)
	}
	t := &table{name: path, cols: map[string]int{}}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := t.cols[h]; !dup && h != "" {
			t.cols[h] = i
		}
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrLayout, path, err)
		}
		t.rows = append(t.rows, rec)
	}
	return t, nil
}

// col finds the first of names among the columns; -1 when none is there.
func (t *table) col(names []string) int {
	for _, n := range names {
		if i, ok := t.cols[n]; ok {
			return i
		}
	}
	return -1
}

func (t *table) need(names []string, what string) (int, error) {
	if i := t.col(names); i >= 0 {
		return i, nil
	}
	have := make([]string, 0, len(t.cols))
	for c := range t.cols {
		have = append(have, c)
	}
	slices.Sort(have)
	return 0, fmt.Errorf("%w: %s has no %s column (accepted names: %s; found: %s)", ErrLayout, t.name, what, strings.Join(names, ", "), strings.Join(have, ", "))
}

func cell(row []string, i int) string {
	if i < 0 || i >= len(row) {
		return ""
	}
	return strings.TrimSpace(row[i])
}

// parseChoice reads a human choice: a/left/0 or b/right/1, a fraction of votes for B (BAPPS'
// judge), or the chosen candidate's path. "" means a tie or an unreadable value.
func parseChoice(v, a, b string) string {
	switch strings.ToLower(v) {
	case "a", "left", "l", "0", "first", "img0", "p0":
		return "a"
	case "b", "right", "r", "1", "second", "img1", "p1":
		return "b"
	}
	if v != "" && v == a {
		return "a"
	}
	if v != "" && v == b {
		return "b"
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
		switch {
		case f < 0.5:
			return "a"
		case f > 0.5:
			return "b"
		}
	}
	return ""
}

// TwoAFC reads a CSV of decisions: a reference, candidates A and B, and the human choice.
// Columns are found by name (ref/reference, a/left, b/right, choice/human/winner …); paths are
// relative to the CSV's folder.
func TwoAFC(path string) (*Dataset, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "data.csv")
	}
	t, err := readTable(path)
	if err != nil {
		return nil, err
	}
	ref, err := t.need(colRef, "reference")
	if err != nil {
		return nil, err
	}
	a, err := t.need(colA, "candidate A")
	if err != nil {
		return nil, err
	}
	b, err := t.need(colB, "candidate B")
	if err != nil {
		return nil, err
	}
	choice, err := t.need(colChoice, "human choice")
	if err != nil {
		return nil, err
	}
	id := t.col(colID)
	d := &Dataset{Layout: "2afc", Root: filepath.Dir(path)}
	var ties int
	for n, row := range t.rows {
		task := Task{ID: cell(row, id), Ref: cell(row, ref), A: cell(row, a), B: cell(row, b)}
		if task.ID == "" {
			task.ID = "row" + strconv.Itoa(n+1)
		}
		task.Human = parseChoice(cell(row, choice), task.A, task.B)
		if task.Human == "" || task.Ref == "" || task.A == "" || task.B == "" {
			ties++
			continue
		}
		d.Tasks = append(d.Tasks, task)
	}
	if ties > 0 {
		d.Dropped += ties
		d.Notes = append(d.Notes, fmt.Sprintf("%d rows without a clear choice or with an empty path left out", ties))
	}
	return d, nil
}

// NIGHTS reads the NIGHTS data set (DreamSim): data.csv with id, ref_path, left_path,
// right_path, left_vote, right_vote, votes and split columns, paths relative to its folder.
// The human choice is the side with more votes; ties are left out. split keeps one split;
// minVotes keeps rows with at least that many votes (DreamSim's loader uses 6, the triplets
// on which its raters were unanimous).
func NIGHTS(path, split string, minVotes int) (*Dataset, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "data.csv")
	}
	t, err := readTable(path)
	if err != nil {
		return nil, err
	}
	ref, err := t.need([]string{"ref_path", "ref", "reference"}, "reference")
	if err != nil {
		return nil, err
	}
	left, err := t.need([]string{"left_path", "left", "distort_left"}, "left image")
	if err != nil {
		return nil, err
	}
	right, err := t.need([]string{"right_path", "right", "distort_right"}, "right image")
	if err != nil {
		return nil, err
	}
	lv, rv := t.col([]string{"left_vote", "left_votes"}), t.col([]string{"right_vote", "right_votes"})
	choice := t.col(colChoice)
	if (lv < 0 || rv < 0) && choice < 0 {
		if _, err := t.need([]string{"left_vote", "right_vote"}, "vote"); err != nil {
			return nil, err
		}
	}
	id, votes, splitCol := t.col(colID), t.col([]string{"votes", "num_votes"}), t.col([]string{"split"})
	split = strings.ToLower(strings.TrimSpace(split))
	if split == "all" {
		split = ""
	}
	if split != "" && splitCol < 0 {
		return nil, fmt.Errorf("%w: %s has no split column; use --split all", ErrLayout, path)
	}
	d := &Dataset{Layout: "nights", Root: filepath.Dir(path)}
	var ties, few int
	for n, row := range t.rows {
		if split != "" && strings.ToLower(cell(row, splitCol)) != split {
			continue
		}
		if votes >= 0 && minVotes > 0 {
			if v, err := strconv.ParseFloat(cell(row, votes), 64); err != nil || v < float64(minVotes) {
				few++
				continue
			}
		}
		task := Task{ID: cell(row, id), Ref: cell(row, ref), A: cell(row, left), B: cell(row, right)}
		if task.ID == "" {
			task.ID = "row" + strconv.Itoa(n+1)
		}
		if lv >= 0 && rv >= 0 {
			l, errL := strconv.ParseFloat(cell(row, lv), 64)
			r, errR := strconv.ParseFloat(cell(row, rv), 64)
			switch {
			case errL != nil || errR != nil || l == r:
			case l > r:
				task.Human = "a"
			default:
				task.Human = "b"
			}
		} else {
			task.Human = parseChoice(cell(row, choice), task.A, task.B)
		}
		if task.Human == "" || task.Ref == "" || task.A == "" || task.B == "" {
			ties++
			continue
		}
		d.Tasks = append(d.Tasks, task)
	}
	if ties > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d tied or unreadable votes left out", ties))
	}
	if few > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d rows with fewer than %d votes left out (--min-votes)", few, minVotes))
	}
	d.Dropped = ties + few
	return d, nil
}

var (
	tidDistorted = regexp.MustCompile(`(?i)^i(\d+)_(\d+)_(\d+)\.bmp$`)
	tidReference = regexp.MustCompile(`(?i)^i(\d+)\.bmp$`)
)

// TID2013 reads the TID2013 folder: distorted images iXX_YY_Z.bmp (reference XX, distortion
// YY, level Z, 1 = mildest) and references IXX.BMP anywhere under root (distorted_images/ and
// reference_images/ in the release). One decision per reference and distortion: level 2 is
// more similar to the reference than level 3.
func TID2013(root string) (*Dataset, error) {
	files, _, err := imagefile.ImageFiles(root)
	if err != nil {
		return nil, err
	}
	refs := map[int]string{}
	type key struct{ ref, dist int }
	levels := map[key]map[int]string{}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		base := filepath.Base(f)
		if m := tidReference.FindStringSubmatch(base); m != nil {
			n, _ := strconv.Atoi(m[1])
			refs[n] = rel
			continue
		}
		if m := tidDistorted.FindStringSubmatch(base); m != nil {
			r, _ := strconv.Atoi(m[1])
			dist, _ := strconv.Atoi(m[2])
			lvl, _ := strconv.Atoi(m[3])
			k := key{r, dist}
			if levels[k] == nil {
				levels[k] = map[int]string{}
			}
			levels[k][lvl] = rel
		}
	}
	keys := make([]key, 0, len(levels))
	for k := range levels {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.ref != b.ref {
			return a.ref - b.ref
		}
		return a.dist - b.dist
	})
	d := &Dataset{Layout: "tid2013", Root: root}
	var noRef, noLevel int
	for _, k := range keys {
		ref, ok := refs[k.ref]
		l2, ok2 := levels[k][2]
		l3, ok3 := levels[k][3]
		switch {
		case !ok:
			noRef++
		case !ok2 || !ok3:
			noLevel++
		default:
			d.Tasks = append(d.Tasks, Task{ID: fmt.Sprintf("i%02d_%02d", k.ref, k.dist), Ref: ref, A: l2, B: l3, Human: "a"})
		}
	}
	if noRef > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d distortions without a reference image IXX.BMP left out", noRef))
	}
	if noLevel > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d distortions without both levels 2 and 3 left out", noLevel))
	}
	if len(files) > 0 && len(levels) == 0 {
		d.Notes = append(d.Notes, "no file named like i01_01_1.bmp")
	}
	d.Dropped = noRef + noLevel
	return d, nil
}
