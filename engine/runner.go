package engine

import "context"

// Runner is one loaded graph, ready to run: what every package above engine holds instead of
// a *Session, so that it can be tested with a fake and without cgo. *Session is one.
type Runner interface {
	// Inputs are the graph inputs a run needs; Outputs the graph's declared outputs.
	Inputs() []IOInfo
	Outputs() []IOInfo
	// Run feeds the inputs (by name, any order) and returns the selected outputs in order.
	Run(ctx context.Context, inputs ...Tensor) ([]Tensor, error)
	Close() error
}

var _ Runner = (*Session)(nil)
