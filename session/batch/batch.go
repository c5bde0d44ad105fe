// Package batch holds what the headless commands need around their work lists: timestep
// grids for sweeps, the image files under a folder for ranking, and atomic file output.
package batch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ParseInts parses a comma-separated list of integers and inclusive ranges START:END[:STEP]
// ("100,400", "0:999:100", "0:900:100,999"). Ranges run from START up to END in steps of STEP
// (default 1), END included only when the step lands on it. Values must lie in [lo, hi]; the
// result is sorted and without duplicates. what names the flag in errors.
func ParseInts(s, what string, lo, hi int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	add := func(v int) error {
		if v < lo || v > hi {
			return fmt.Errorf("%s: %d is outside %d..%d", what, v, lo, hi)
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
		return nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.Split(part, ":")
		nums := make([]int, len(fields))
		for i, f := range fields {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("%s %q: %q is not an integer (want a list like 100,400 or a range like 0:999:100)", what, s, f)
			}
			nums[i] = n
		}
		switch len(nums) {
		case 1:
			if err := add(nums[0]); err != nil {
				return nil, err
			}
		case 2, 3:
			step := 1
			if len(nums) == 3 {
				step = nums[2]
			}
			if step <= 0 || nums[1] < nums[0] {
				return nil, fmt.Errorf("%s %q: range %s needs START ≤ END and a positive STEP", what, s, part)
			}
			for v := nums[0]; v <= nums[1]; v += step {
				if err := add(v); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("%s %q: %q is not START:END[:STEP]", what, s, part)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %q: no values", what, s)
	}
	slices.Sort(out)
	return out, nil
}

// imageExts are the extensions session.Load decodes (GIF: its first frame).
var imageExts = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".webp": true,
	".bmp": true, ".tif": true, ".tiff": true, ".gif": true,
}

// IsImageName reports whether a file name has an image extension diffsim decodes.
func IsImageName(name string) bool { return imageExts[strings.ToLower(filepath.Ext(name))] }

// ImageFiles lists the image files under root, recursively, sorted by path. Hidden files and
// folders (a leading dot) are left out; so are files without an image extension. Folders that
// cannot be read are returned in unreadable rather than failing the walk.
func ImageFiles(root string) (files []string, unreadable map[string]error, err error) {
	unreadable = map[string]error{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			unreadable[path] = err
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		name := d.Name()
		if path != root && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			if IsImageName(name) {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(files)
	return files, unreadable, nil
}

// WriteFileAtomic writes data to path through a temporary file in the same folder and a
// rename, so readers never see a half-written file.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(0o644), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
