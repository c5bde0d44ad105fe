package imagefile

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// IsUnreadable reports an error that concerns one input file (not an image, missing, not
// permitted, a folder named like an image, an I/O error): batch work skips that file rather than
// stopping.
func IsUnreadable(err error) bool {
	var pe *fs.PathError
	var fe *Error
	return errors.Is(err, ErrBadImage) || errors.Is(err, fs.ErrNotExist) ||
		errors.Is(err, fs.ErrPermission) || errors.As(err, &pe) || errors.As(err, &fe)
}

// imageExts are the extensions Load decodes (GIF: its first frame).
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
