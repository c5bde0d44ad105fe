//go:build !cgo

package engine

import (
	"errors"
	"testing"
)

// Without cgo every entry point says so, with the error callers test for.
func TestWithoutCgo(t *testing.T) {
	if _, err := Open(Options{}); !errors.Is(err, ErrNoCgo) {
		t.Fatalf("Open: %v, want ErrNoCgo", err)
	}
}
