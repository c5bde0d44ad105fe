package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RuntimeVersion is the ONNX Runtime release the set-up script fetches.
const RuntimeVersion = "1.30.0"

// ErrNoCgo is returned by every runtime entry point in a build without cgo.
var ErrNoCgo = errors.New("diffsim was built without cgo, so it cannot run ONNX Runtime; rebuild with CGO_ENABLED=1 and a C compiler")

// ErrNoLibrary means no ONNX Runtime shared library was found.
var ErrNoLibrary = errors.New("ONNX Runtime library not found")

// CacheDir is diffsim's cache folder: $DIFFSIM_CACHE, else $XDG_CACHE_HOME/diffsim, else
// ~/.cache/diffsim. scripts/setup-runtime.sh uses the same rule.
func CacheDir() string {
	if d := os.Getenv("DIFFSIM_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "diffsim")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "diffsim-cache")
	}
	return filepath.Join(home, ".cache", "diffsim")
}

// DefaultLibraryPath is where scripts/setup-runtime.sh puts the library.
func DefaultLibraryPath() string {
	return filepath.Join(CacheDir(), "onnxruntime", RuntimeVersion, "libonnxruntime.so.1")
}

// LibrarySource says where a library path came from.
type LibrarySource string

// Sources, in the order they are tried.
const (
	FromFlag  LibrarySource = "--ort-lib"
	FromEnv   LibrarySource = "ONNXRUNTIME_LIB"
	FromCache LibrarySource = "diffsim cache"
)

// FindLibrary picks the runtime library: the explicit path (a flag), then $ONNXRUNTIME_LIB,
// then diffsim's cache. An explicit path or variable that names a missing file is an error
// rather than a silent fall-through, so a user is never running a library they did not pick.
func FindLibrary(explicit string) (string, LibrarySource, error) {
	check := func(p string, src LibrarySource) (string, LibrarySource, error) {
		st, err := os.Stat(p)
		if err != nil {
			return "", src, fmt.Errorf("%w: %s names %s, which does not exist; point it at a libonnxruntime.so, or drop it to use the one scripts/setup-runtime.sh fetches", ErrNoLibrary, src, p)
		}
		if st.IsDir() {
			return "", src, fmt.Errorf("%w: %s names %s, which is a folder, not libonnxruntime.so", ErrNoLibrary, src, p)
		}
		return p, src, nil
	}
	if explicit != "" {
		return check(explicit, FromFlag)
	}
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return check(p, FromEnv)
	}
	p := DefaultLibraryPath()
	if _, err := os.Stat(p); err == nil {
		return p, FromCache, nil
	}
	return "", FromCache, fmt.Errorf("%w: not in %s; run scripts/setup-runtime.sh to fetch it, "+
		"or set ONNXRUNTIME_LIB to a libonnxruntime.so (a GPU build for CUDA)", ErrNoLibrary, p)
}
