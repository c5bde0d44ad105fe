//go:build !cgo

package engine

import "context"

// Options choose the runtime library, the execution provider and threading.
type Options struct {
	Library    string
	Device     string
	Threads    int
	GraphCache *GraphCache
}

// SessionOptions configure one session.
type SessionOptions struct {
	ExternalDataDir string
	Outputs         []string
}

// Runtime is unavailable without cgo.
type Runtime struct{}

// Session is unavailable without cgo.
type Session struct{}

// Open always fails without cgo.
func Open(Options) (*Runtime, error) { return nil, ErrNoCgo }

func (*Runtime) Library() (string, LibrarySource)                     { return "", "" }
func (*Runtime) Version() string                                      { return "" }
func (*Runtime) Device() Device                                       { return Device{Kind: "cpu"} }
func (*Runtime) Close() error                                         { return nil }
func (*Runtime) Load([]byte, SessionOptions) (Runner, error)          { return nil, ErrNoCgo }
func (*Runtime) LoadSession([]byte, SessionOptions) (*Session, error) { return nil, ErrNoCgo }
func (*Runtime) LoadFile(string, SessionOptions) (*Session, error)    { return nil, ErrNoCgo }
func (*Session) Inputs() []IOInfo                                     { return nil }
func (*Session) Outputs() []IOInfo                                    { return nil }
func (*Session) OutputNames() []string                                { return nil }
func (*Session) Run(context.Context, ...Tensor) ([]Tensor, error)     { return nil, ErrNoCgo }
func (*Session) Close() error                                         { return nil }

func (*Session) BuffersRefused() bool { return false }

func (*Session) RunShaped(context.Context, [][]int64, ...Tensor) ([]Tensor, error) {
	return nil, ErrNoCgo
}
