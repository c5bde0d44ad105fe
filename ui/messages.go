package ui

import (
	"time"

	"github.com/diffsim/diffsim/session"
)

// Messages the explorer's commands send back to it. Each carries what it answers, so
// Update can drop an answer to a question the user no longer asks.

// pairMsg answers a load of an image pair.
type pairMsg struct {
	gen  int
	a, b *session.Image
}

// scoreMsg answers a Score request (the request is res.Req).
type scoreMsg struct {
	gen int
	res session.Result
}

// layerScoresMsg answers a LayerScores run for one timestep; id is the background job.
type layerScoresMsg struct {
	gen, id int
	t       int
	metric  session.Metric
	scores  []session.LayerScore
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
type progressMsg session.Progress

// exportMsg says an export finished.
type exportMsg struct {
	paths []string
}

// errMsg is the one error message: op says what failed; gen and id (or req) say which
// request it answers, so errors of abandoned work are dropped like their results.
type errMsg struct {
	op  string // "load", "score", "layers", "prefetch", "export", "prompt"
	gen int
	id  int
	req session.Request
	err error
}

func (e errMsg) Error() string { return e.op + ": " + e.err.Error() }

// statsMsg carries a snapshot of the backend's counters, fetched off the UI goroutine.
type statsMsg struct {
	gen     int
	stats   session.Stats
	t       int
	tCached bool // the features of (A, B, t) are in the cache
}

// statsTickMsg asks for the next stats snapshot.
type statsTickMsg struct{}
