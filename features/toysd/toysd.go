// Package toysd is diffsim's miniature Stable Diffusion (docs/toy-sd.md): a latent diffusion
// model in SD 1.x's structure, trained by scripts/train-toy-sd.py on the styles × contents
// images of session/bench/synth, and embedded in the binary so that --model toy-sd works on a
// fresh machine with nothing downloaded and no Python. toy-sd-untrained is the same network
// (U-Net and text encoder) as it was before its first training step, with the trained VAE: the
// baseline that says what training added.
//
// The files are embedded as the training script packed them (graphs gzip-compressed, a MANIFEST
// with the sha256 and size of every unpacked file) and unpacked once into diffsim's cache, in a
// folder named by the manifest's hash: ONNX Runtime loads graphs from files, and a new build
// with other weights never reads an old build's folder.
package toysd

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The names --model takes.
const (
	Name          = "toy-sd"
	UntrainedName = "toy-sd-untrained"
)

// Names lists the models this package provides.
func Names() []string { return []string{Name, UntrainedName} }

// Size is the image size the model was trained at (its U-Net's config.json says the same).
const Size = 128

//go:embed model untrained
var embedded embed.FS

// entry is one line of a MANIFEST: a file as it is unpacked.
type entry struct {
	sum  string // sha256, hex
	size int64
	path string // slash-separated, relative to the model folder
	from string // where it lives in embedded: model/… or untrained/…, with .gz when compressed
}

// files lists what a model's folder holds: the trained model's files, with the untrained
// network's replacing theirs for UntrainedName.
func files(name string) ([]entry, error) {
	var layers []string
	switch name {
	case Name:
		layers = []string{"model"}
	case UntrainedName:
		layers = []string{"model", "untrained"}
	default:
		return nil, fmt.Errorf("unknown embedded model %q (want %s or %s)", name, Name, UntrainedName)
	}
	byPath := map[string]entry{}
	for _, layer := range layers {
		es, err := readManifest(layer)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			byPath[e.path] = e
		}
	}
	out := make([]entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	return out, nil
}

func readManifest(layer string) ([]entry, error) {
	data, err := embedded.ReadFile(layer + "/MANIFEST")
	if err != nil {
		return nil, fmt.Errorf("toy-sd: %w (the binary was built without the model; rebuild from a full checkout)", err)
	}
	var out []entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		size, err := strconv.ParseInt(f[min(1, len(f)-1)], 10, 64)
		if len(f) != 3 || len(f[0]) != 64 || err != nil || !fs.ValidPath(f[2]) {
			return nil, fmt.Errorf("toy-sd: %s/MANIFEST: bad line %q", layer, sc.Text())
		}
		e := entry{sum: f[0], size: size, path: f[2], from: layer + "/" + f[2]}
		if _, err := fs.Stat(embedded, e.from); err != nil {
			e.from += ".gz"
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// key names a model's unpacked folder by its content.
func key(es []entry) string {
	h := sha256.New()
	for _, e := range es {
		fmt.Fprintf(h, "%s %d %s\n", e.sum, e.size, e.path)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Bytes is the size of a model's unpacked folder.
func Bytes(name string) (int64, error) {
	es, err := files(name)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range es {
		n += e.size
	}
	return n, nil
}

// Path is where Dir unpacks a model under the cache folder root (engine.CacheDir()).
func Path(root, name string) (string, error) {
	es, err := files(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "models", name+"-"+key(es)), nil
}

// Dir returns the folder holding the model, unpacking it under root/models first unless an
// intact copy is there. Unpacking writes a temporary folder and renames it into place, so a
// process that is killed half-way, or two that start at once, never leave a partial folder
// where diffsim looks.
func Dir(root, name string) (string, error) {
	es, err := files(name)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "models", name+"-"+key(es))
	if intact(dir, es) {
		return dir, nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", unpackErr(name, parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+"-")
	if err != nil {
		return "", unpackErr(name, parent, err)
	}
	// MkdirTemp makes a private folder; the model is as readable as the rest of the cache.
	err = os.Chmod(tmp, 0o755)
	if err == nil {
		err = unpack(tmp, es)
	}
	if err != nil {
		return "", errors.Join(unpackErr(name, parent, err), os.RemoveAll(tmp))
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have finished first; its copy is as good as ours.
		if intact(dir, es) {
			return dir, os.RemoveAll(tmp)
		}
		// A damaged copy (a file deleted by hand): move it aside, then put ours in its place.
		aside := tmp + ".old"
		if err2 := os.Rename(dir, aside); err2 != nil || os.Rename(tmp, dir) != nil {
			return "", errors.Join(unpackErr(name, parent, err), os.RemoveAll(tmp))
		}
		if err := os.RemoveAll(aside); err != nil {
			return dir, nil // the model is in place; the leftover is only disk space
		}
	}
	return dir, nil
}

func unpackErr(name, where string, err error) error {
	return fmt.Errorf("unpack %s into %s: %w; set DIFFSIM_CACHE to a writable folder", name, where, err)
}

// intact reports whether dir holds every file with its size. Sizes, not hashes: this runs on
// every start, and unpack checked the hashes when it wrote the files.
func intact(dir string, es []entry) bool {
	for _, e := range es {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(e.path)))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != e.size {
			return false
		}
	}
	return true
}

// unpack writes every file into dir, checking each against its manifest line.
func unpack(dir string, es []entry) error {
	for _, e := range es {
		if err := unpackFile(dir, e); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
	}
	return nil
}

func unpackFile(dir string, e entry) error {
	f, err := embedded.Open(e.from)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if path.Ext(e.from) == ".gz" {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	dst := filepath.Join(dir, filepath.FromSlash(e.path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if err := errors.Join(err, out.Close()); err != nil {
		return err
	}
	if n != e.size || hex.EncodeToString(h.Sum(nil)) != e.sum {
		return fmt.Errorf("unpacked %d bytes with sha256 %x, the manifest says %d bytes, %s: the embedded copy is damaged", n, h.Sum(nil), e.size, e.sum)
	}
	return nil
}
