package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/diffsim/diffsim/api"
)

// Messages the explorer's commands send back to it. Each carries what it answers, so
// Update can drop an answer to a question the user no longer asks.

// pairMsg answers a load of an image pair.
type pairMsg struct {
	gen  int
	a, b *api.Image
}

// scoreMsg answers a Score request (the request is res.Req).
type scoreMsg struct {
	gen int
	res api.Result
}

// layerScoresMsg answers a LayerScores run for one timestep; id is the background job.
type layerScoresMsg struct {
	gen, id int
	t       int
	metric  api.Metric
	scores  []api.LayerScore
}

// prefetchMsg says a background prefetch of timestep t finished.
type prefetchMsg struct {
	gen, id int
	t       int
}

// picturesMsg carries freshly composed pictures for the panes; seq orders them.
type picturesMsg struct {
	seq  int
	pics pictures
	took time.Duration
}

// progressMsg relays the backend's progress reports.
type progressMsg api.Progress

// exportMsg says an export finished: the files written into dir.
type exportMsg struct {
	dir   string
	files []string
}

// String is what the status line says: the folder whole (wrapped if long), then the files.
func (e exportMsg) String() string {
	return "exported to " + strings.TrimSuffix(e.dir, "/") + "/: " + strings.Join(e.files, " and ")
}

// errMsg is the one error message. Its err is one of the typed errors below, which say
// what failed and which request it answers, so errors of abandoned work are dropped like
// their results.
type errMsg struct{ err error }

func (e errMsg) Error() string { return e.err.Error() }
func (e errMsg) Unwrap() error { return e.err }

// loadError: loading the pair of generation gen failed.
type loadError struct {
	gen int
	err error
}

func (e loadError) Error() string { return e.err.Error() }
func (e loadError) Unwrap() error { return e.err }

// scoreError: the Score for req failed.
type scoreError struct {
	gen int
	req api.Request
	err error
}

func (e scoreError) Error() string { return "score: " + e.err.Error() }
func (e scoreError) Unwrap() error { return e.err }

// backgroundError: background job id (layer scores, or a prefetch) for timestep t failed.
type backgroundError struct {
	gen, id, t int
	prefetch   bool
	err        error
}

func (e backgroundError) Error() string {
	what := "layer scores"
	if e.prefetch {
		what = "prefetch"
	}
	return fmt.Sprintf("%s t=%d: %v", what, e.t, e.err)
}
func (e backgroundError) Unwrap() error { return e.err }

// exportError: writing the export failed.
type exportError struct{ err error }

func (e exportError) Error() string { return "export: " + e.err.Error() }
func (e exportError) Unwrap() error { return e.err }

// promptError: the backend refused a text prompt.
type promptError struct{ err error }

func (e promptError) Error() string { return "prompt: " + e.err.Error() }
func (e promptError) Unwrap() error { return e.err }

// statsMsg carries a snapshot of the backend's counters, fetched off the UI goroutine.
type statsMsg struct {
	gen     int
	stats   api.Stats
	t       int
	tCached bool // the features of (A, B, t) are in the cache
}

// statsTickMsg asks for the next stats snapshot.
type statsTickMsg struct{}
