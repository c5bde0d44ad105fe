package sshserve

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/heatmap"
	"github.com/diffsim/diffsim/ui"
)

// maxImageBytes bounds what one image file may hold: far above any photograph, far below
// what would hurt a server shared by a class.
const maxImageBytes = 64 << 20

// imageLimits are imagefile's checks with the SSH front's cap.
func imageLimits() imagefile.Limits { return imagefile.Limits{MaxBytes: maxImageBytes} }

// maxListed bounds the picker's list; a folder larger than this is a data set, not a class's
// images, and `diffsim rank` is the tool for it.
const maxListed = 5000

// imageExts are the files the picker offers (features.DecodeImage reads them).
var imageExts = []string{".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}

// errOutside is why a name that leaves the folder is refused.
var errOutside = errors.New("leaves the images folder")

// library is what sessions may open: the shared images folder (read only) and each user's
// own folder of uploads, which comes first, so a file uploaded as cat.png opens as cat.png.
type library struct {
	images  string // absolute, symlinks resolved; "" when none is served
	uploads string // the folder of the users' folders; "" when uploads are off
	quota   int64  // bytes per user
	q       quotas
	thumbs  *thumbCache
}

func newLibrary(images, uploads string, quota int64) (*library, error) {
	l := &library{quota: quota, q: quotas{pending: map[string]int64{}}, thumbs: newThumbCache(256)}
	if images != "" {
		real, err := realDir(images)
		if err != nil {
			return nil, fmt.Errorf("--images %s: %w", images, err)
		}
		l.images = real
	}
	if uploads != "" {
		if err := os.MkdirAll(uploads, 0o700); err != nil {
			return nil, fmt.Errorf("uploads folder: %w", err)
		}
		real, err := realDir(uploads)
		if err != nil {
			return nil, fmt.Errorf("uploads folder %s: %w", uploads, err)
		}
		l.uploads = real
	}
	return l, nil
}

// realDir is dir made absolute with its symlinks resolved, checked to be a folder.
func realDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", errors.New("not a folder")
	}
	return real, nil
}

// userFiles is one user's view of the library: their uploads over the shared images.
type userFiles struct {
	lib *library
	own string // the user's folder, absolute; "" without uploads
}

// user returns the files of the user with identity id (a key fingerprint), creating their
// folder on first use.
func (l *library) user(id string) (*userFiles, error) {
	u := &userFiles{lib: l}
	if l.uploads == "" || id == "" {
		return u, nil
	}
	u.own = filepath.Join(l.uploads, id)
	if err := os.MkdirAll(u.own, 0o700); err != nil {
		return nil, fmt.Errorf("your uploads folder: %w", err)
	}
	return u, nil
}

// cleanName checks a name a client gave for a file in a served folder: relative, and not
// leaving the folder by "..". It returns the name in slash form, cleaned.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("no image named")
	case filepath.IsAbs(name) || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "~"):
		return "", fmt.Errorf("%s: absolute paths are not served; name an image inside the images folder (ssh with no arguments lists them)", name)
	}
	c := path.Clean(filepath.ToSlash(name))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%s: %w; name an image inside it (ssh with no arguments lists them)", name, errOutside)
	}
	return c, nil
}

// within opens name inside dir, refusing symlinks that lead out of it: the check with the
// resolved path gives the clear message, and os.Root makes the open itself unable to escape
// (a link swapped in between is refused too).
func within(dir, name string) (*os.File, error) {
	full := filepath.Join(dir, filepath.FromSlash(name))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(dir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s: %w (it is a link to a file outside)", name, errOutside)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// O_NONBLOCK: opening a FIFO for reading would wait for a writer (imagefile then refuses
	// anything but a regular file).
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, errOutside)
	}
	return f, nil
}

// open finds name in the user's folder, then in the images folder.
func (u *userFiles) open(name string) (*os.File, string, error) {
	c, err := cleanName(name)
	if err != nil {
		return nil, "", err
	}
	var firstErr error
	for _, dir := range []string{u.own, u.lib.images} {
		if dir == "" {
			continue
		}
		f, err := within(dir, c)
		if err == nil {
			return f, c, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, c, firstErr
	}
	if u.lib.images == "" && u.own == "" {
		return nil, c, fmt.Errorf("%s: this server serves no images folder (diffsim serve --images DIR)", c)
	}
	return nil, c, fmt.Errorf("%s: no such image in the images folder or your uploads (ssh with no arguments lists them)", c)
}

// Load reads and decodes the image called name, as a session's backend does with a path.
// It reads as every command does (package imagefile: a regular file, at most maxImageBytes,
// the pixel limit).
func (u *userFiles) Load(name string) (*api.Image, error) {
	f, c, err := u.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, hash, err := imagefile.LoadFile(context.Background(), f, c, imageLimits())
	if err != nil {
		return nil, err
	}
	r := img.Bounds()
	return &api.Image{Path: c, Hash: hash, W: r.Dx(), H: r.Dy(), Pixels: img}, nil
}

// List is the picker's list: the user's uploads first, then the shared images, each sorted
// by name; a name in both is the user's.
func (u *userFiles) List() ([]ui.PickItem, error) {
	var items []ui.PickItem
	seen := map[string]bool{}
	for _, src := range []struct{ dir, note string }{{u.own, "yours"}, {u.lib.images, ""}} {
		if src.dir == "" {
			continue
		}
		names, err := listImages(src.dir)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !seen[n] && len(items) < maxListed {
				seen[n] = true
				items = append(items, ui.PickItem{Name: n, Note: src.note})
			}
		}
	}
	return items, nil
}

// listImages walks dir for image files, skipping hidden files and folders; names are
// relative, in slash form.
func listImages(dir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // an unreadable subfolder hides only itself
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !slices.Contains(imageExts, strings.ToLower(filepath.Ext(p))) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err == nil {
			names = append(names, filepath.ToSlash(rel))
		}
		if len(names) >= maxListed {
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	slices.Sort(names)
	return names, nil
}

// thumbPx is the thumbnails' longest side: the picker's largest preview is a few dozen
// half-block cells, two pixels each.
const thumbPx = 128

// Thumbnail is a small version of the image called name, shared between sessions.
func (u *userFiles) Thumbnail(name string) (image.Image, error) {
	f, c, err := u.open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	k := fmt.Sprintf("%s\x00%d\x00%d", f.Name(), st.Size(), st.ModTime().UnixNano())
	if img, ok := u.lib.thumbs.get(k); ok {
		f.Close()
		return img, nil
	}
	defer f.Close()
	img, _, err := imagefile.LoadFile(context.Background(), f, c, imageLimits())
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	w, h := thumbPx, thumbPx
	if b.Dx() > b.Dy() {
		h = max(b.Dy()*thumbPx/b.Dx(), 1)
	} else {
		w = max(b.Dx()*thumbPx/b.Dy(), 1)
	}
	t := heatmap.Resize(img, w, h)
	u.lib.thumbs.put(k, t)
	return t, nil
}

// thumbCache keeps the latest thumbnails, least recently used out first.
type thumbCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of string keys, most recent at the front
	byKey map[string]*list.Element
	imgs  map[string]image.Image
}

func newThumbCache(n int) *thumbCache {
	return &thumbCache{max: n, order: list.New(), byKey: map[string]*list.Element{}, imgs: map[string]image.Image{}}
}

func (c *thumbCache) get(k string) (image.Image, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return c.imgs[k], true
}

func (c *thumbCache) put(k string, img image.Image) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		c.imgs[k] = img
		return
	}
	c.byKey[k] = c.order.PushFront(k)
	c.imgs[k] = img
	for c.order.Len() > c.max {
		old := c.order.Remove(c.order.Back()).(string)
		delete(c.byKey, old)
		delete(c.imgs, old)
	}
}

// usage is the bytes the files under dir take.
func usage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}
