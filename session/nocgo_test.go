//go:build !cgo

package session

import (
	"fmt"
	"os"
	"testing"
)

// Without cgo there is no ONNX Runtime, and the session needs it for every test: say so and
// stop, rather than fail each test on the same missing runtime. The cgo build runs them.
func TestMain(m *testing.M) {
	fmt.Println("session: built without cgo, so no ONNX Runtime: the session tests run only with CGO_ENABLED=1")
	os.Exit(0)
}
