package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Materialize presents a model folder as real files for ONNX Runtime.
//
// ONNX Runtime (1.30) refuses external weights it reaches through a symbolic
// link: it resolves the link, finds model.onnx_data in blobs/, outside the
// model's folder, and fails with "escapes model directory". Every file of a
// hub snapshot is such a link. So the files are hard-linked into a private
// folder, which costs no space and keeps the cache untouched; where hard
// links cannot be made (another filesystem, or one without them) they are
// copied. For a hub snapshot the private folder sits in the repository's
// cache folder (models--org--name/.diffsim/), on the blobs' filesystem,
// where huggingface_hub's cache scan does not look.
//
// files are slash-separated paths relative to dir; nil means every file in
// it. When none of them is a symlink, dir itself comes back and cleanup does
// nothing. Otherwise the caller loads from the returned folder and calls
// cleanup (idempotent) once the runtime session exists or is closed.
func Materialize(dir string, files []string) (string, func() error, error) {
	noop := func() error { return nil }
	if files == nil {
		var err error
		if files, err = snapshotFiles(dir); err != nil {
			return "", nil, fmt.Errorf("materialize %s: %w", dir, err)
		}
	}
	linked := false
	for _, f := range files {
		if err := validRelPath(f); err != nil {
			return "", nil, fmt.Errorf("materialize %s: %q: %w", dir, f, err)
		}
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return "", nil, fmt.Errorf("materialize %s: %w", dir, err)
		}
		linked = linked || fi.Mode()&fs.ModeSymlink != 0
	}
	if !linked {
		return dir, noop, nil
	}
	// A shared, read-only cache cannot take the private folder: fall back to
	// the temporary folder, where the files will likely be copies.
	tmp, err := os.MkdirTemp(privateParent(dir), filepath.Base(dir)+"-")
	if err != nil {
		tmp, err = os.MkdirTemp("", "diffsim-"+filepath.Base(dir)+"-")
	}
	if err != nil {
		return "", nil, fmt.Errorf("materialize %s: %w", dir, err)
	}
	var once sync.Once
	var cleanErr error
	cleanup := func() error {
		once.Do(func() { cleanErr = os.RemoveAll(tmp) })
		return cleanErr
	}
	for _, f := range files {
		src, err := filepath.EvalSymlinks(filepath.Join(dir, filepath.FromSlash(f)))
		if err == nil {
			err = linkOrCopy(src, filepath.Join(tmp, filepath.FromSlash(f)))
		}
		if err != nil {
			return "", nil, errors.Join(fmt.Errorf("materialize %s: %s: %w", dir, f, err), cleanup())
		}
	}
	return tmp, cleanup, nil
}

// privateParent picks where the materialised folder goes: next to the blobs
// for a hub snapshot, else the system's temporary folder.
func privateParent(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return os.TempDir()
	}
	for d := abs; filepath.Dir(d) != d; d = filepath.Dir(d) {
		snaps := filepath.Dir(d)
		if filepath.Base(snaps) == "snapshots" && strings.HasPrefix(filepath.Base(filepath.Dir(snaps)), "models--") {
			p := filepath.Join(filepath.Dir(snaps), ".diffsim")
			if os.MkdirAll(p, 0o700) != nil {
				return os.TempDir()
			}
			return p
		}
	}
	return os.TempDir()
}

func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return errors.Join(err, out.Close())
	}
	return out.Close()
}
