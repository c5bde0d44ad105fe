//go:build !cgo

package main

import (
	"fmt"
	"os"
	"testing"
)

// Without cgo there is no ONNX Runtime, and the command-line needs it for every test: say so and
// stop, rather than fail each test on the same missing runtime. The cgo build runs them.
func TestMain(m *testing.M) {
	fmt.Println("diffsim: built without cgo, so no ONNX Runtime: the command-line tests run only with CGO_ENABLED=1")
	os.Exit(0)
}
