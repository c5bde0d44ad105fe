package engine

import (
	"context"
	"runtime/debug"
)

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

// ShapedRunner is a Runner that can be told, before a run, the shapes its outputs will have.
// It then hands the runtime Go buffers of those shapes to write the outputs into: nothing is
// copied out after the run, and the runtime's allocator never holds those outputs (at 512 px
// every U-Net layer's Q, K and V are outputs, about 0.55 GB at batch 2, which its CPU arena
// would otherwise keep after the run).
type ShapedRunner interface {
	Runner
	// RunShaped is Run with shapes[i] the shape the i-th returned output will have, nil where
	// the caller cannot tell. A wrong shape costs a second run without buffers, never a
	// wrong result.
	RunShaped(ctx context.Context, shapes [][]int64, inputs ...Tensor) ([]Tensor, error)
}

var _ ShapedRunner = (*Session)(nil)

// ReleaseMemory returns freed Go memory to the operating system now, after a caller has
// dropped the bytes of a model of size bytes that a session has consumed: the runtime holds
// its own copy, and the collector would otherwise keep the pages mapped (counted in the
// process's resident memory) until its background scavenger gets to them. Small models cost
// nothing to leave.
func ReleaseMemory(size int64) {
	if size >= 64<<20 {
		debug.FreeOSMemory()
	}
}
