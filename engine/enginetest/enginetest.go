// Package enginetest opens ONNX Runtime for tests. A build without cgo has no runtime by
// construction, so its tests skip; a missing library fails the test in CI (CI=true), where
// scripts/test.sh fetches it, and skips with the reason elsewhere.
package enginetest

import (
	"errors"
	"os"
	"testing"

	"github.com/diffsim/diffsim/engine"
)

// Runtime opens the runtime with default options and closes it when the test ends.
func Runtime(t testing.TB) *engine.Runtime {
	t.Helper()
	rt, err := engine.Open(engine.Options{})
	Check(t, err)
	t.Cleanup(func() { rt.Close() })
	return rt
}

// Check applies the rule above to an error from anything that opens the runtime (a
// session, a model): nil passes, a missing runtime skips or fails, anything else fails.
func Check(t testing.TB, err error) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, engine.ErrNoCgo):
		t.Skip("built without cgo: no ONNX Runtime")
	case errors.Is(err, engine.ErrNoLibrary) && os.Getenv("CI") == "":
		t.Skipf("no ONNX Runtime library (scripts/setup-runtime.sh fetches it): %v", err)
	default:
		t.Fatal(err)
	}
}
