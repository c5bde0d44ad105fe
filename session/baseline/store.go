package baseline

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/builtin"
	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/store"
)

// Spec is what a baseline's key covers: the model's content and the settings its scores
// depend on. The device is left out: a GPU and a CPU give the same scores to well below a
// baseline's spread.
type Spec struct {
	Source       features.Source // as features.Families.Resolve found the model
	Size         int             // the working size the model runs at (its info's)
	Seed         int64
	Conditioning features.Conditioning
	IPAdapter    features.AdapterOptions
}

// keyVersion changes when what the key covers changes.
const keyVersion = "diffsim baseline key v1"

// Key identifies a model's content and settings. The built-in model is identified by its
// generated graph; a model on disk by its files' names, sizes, and the bytes at the start
// and end of each (large weight files are not hashed whole: that would cost a good part of
// loading them); an IP-Adapter and its image encoder likewise.
func Key(s Spec) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00size %d\x00seed %d\x00prompt %q cfg %v\x00", keyVersion, s.Source.Kind, s.Size, s.Seed, s.Conditioning.Prompt, s.Conditioning.CFG)
	if s.Source.Kind == store.KindBuiltin {
		g, err := builtin.Graph(s.Size)
		if err != nil {
			return "", err
		}
		data, err := onnx.Marshal(g)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		h.Write(sum[:])
	} else if err := fingerprint(h, s.Source.Path); err != nil {
		return "", err
	}
	if !s.IPAdapter.IsZero() {
		fmt.Fprintf(h, "\x00ip-adapter scale %v\x00", s.IPAdapter.Scale)
		for _, p := range []string{s.IPAdapter.Weights, s.IPAdapter.ImageEncoder} {
			if err := fingerprint(h, p); err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// SpecKey is the key of the model spec names, running at its working size size (its
// info's: the spec may leave the size to the model).
func SpecKey(spec api.Spec, size int) (string, error) {
	_, src, err := families.All().Resolve(spec.Model)
	if err != nil {
		return "", err
	}
	s := Spec{Source: src, Size: size, Seed: spec.Seed, Conditioning: spec.Conditioning()}
	if spec.IPAdapter != "" || spec.ImageEncoder != "" {
		s.IPAdapter = features.AdapterOptions{Weights: spec.IPAdapter, ImageEncoder: spec.ImageEncoder, Scale: spec.IPScale}
	}
	return Key(s)
}

// For is the baseline of the model spec names at working size size: one built into Dir, else
// a shipped one; nil when there is none, or when the model cannot be keyed (a model only a
// test's own families read). The error says a baseline file exists but cannot be read. A
// session and a served model's client put it in their ModelInfo, so every record of theirs
// is calibrated alike.
func For(spec api.Spec, size int) (*calibration.Baseline, error) {
	key, err := SpecKey(spec, size)
	if err != nil {
		return nil, nil
	}
	return Find(Dir(), key)
}

// edge is how much of each end of a file the key reads.
const edge = 1 << 20

// fingerprint writes what identifies the files under root (a file or a folder) to h.
func fingerprint(h io.Writer, root string) error {
	if root == "" {
		return nil
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := os.Stat(p) // through symbolic links: a Hugging Face snapshot is made of them
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "\x00%s %d\x00", filepath.ToSlash(rel), fi.Size())
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi.Size() <= 2*edge {
			_, err = io.Copy(h, f)
			return err
		}
		if _, err := io.CopyN(h, f, edge); err != nil {
			return err
		}
		_, err = io.Copy(h, io.NewSectionReader(f, fi.Size()-edge, edge))
		return err
	})
}

// Dir is where built baselines are kept: diffsim's cache folder's baselines/.
func Dir() string { return filepath.Join(engine.CacheDir(), "baselines") }

// Save writes b to dir as KEY.json, whole or not at all.
func Save(dir string, b *calibration.Baseline) (string, error) {
	data, err := b.Encode()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create the baseline folder %s: %w", dir, err)
	}
	path := filepath.Join(dir, b.Key+".json")
	if err := renameio.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// The shipped baselines, one a file named after its model (ShippedModels).
//
//go:embed builtin.json toy-sd.json
var shippedFiles embed.FS

// Shipped are the baselines that come with diffsim: one for each of ShippedModels, at its
// default size, seed and conditioning, made from ReferenceSet.
func Shipped() []*calibration.Baseline {
	var out []*calibration.Baseline
	for _, m := range ShippedModels {
		data, err := shippedFiles.ReadFile(m + ".json")
		if err != nil {
			continue // a test remakes and decodes each: this cannot happen in a build that passed
		}
		if b, err := calibration.Decode(data); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// Entry is a baseline on the list: where it is (a file, or "shipped with diffsim").
type Entry struct {
	*calibration.Baseline
	Path    string // "" for a shipped one
	Shipped bool
}

// List reads the baselines in dir, then the shipped ones not overridden by one in dir.
// Files that are not baselines are reported in bad rather than failing the list.
func List(dir string) (out []Entry, bad map[string]error, err error) {
	bad = map[string]error{}
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read the baseline folder %s: %w", dir, err)
	}
	have := map[string]bool{}
	for _, de := range des {
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".json") || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, de.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			bad[p] = err
			continue
		}
		b, err := calibration.Decode(data)
		if err != nil {
			bad[p] = err
			continue
		}
		have[b.Key] = true
		out = append(out, Entry{Baseline: b, Path: p})
	}
	slices.SortFunc(out, func(x, y Entry) int { return strings.Compare(x.Key, y.Key) })
	for _, b := range Shipped() {
		if !have[b.Key] {
			out = append(out, Entry{Baseline: b, Shipped: true})
		}
	}
	return out, bad, nil
}

// Find is the baseline for key: one built into dir, else a shipped one; nil when there is
// none. A file that exists but cannot be read is an error.
func Find(dir, key string) (*calibration.Baseline, error) {
	p := filepath.Join(dir, key+".json")
	data, err := os.ReadFile(p)
	switch {
	case err == nil:
		b, err := calibration.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	for _, b := range Shipped() {
		if b.Key == key {
			return b, nil
		}
	}
	return nil, nil
}

// Lookup finds an entry by key prefix (as `baseline list` prints keys), in dir and shipped.
func Lookup(dir, prefix string) (Entry, error) {
	es, _, err := List(dir)
	if err != nil {
		return Entry{}, err
	}
	var found []Entry
	for _, e := range es {
		if strings.HasPrefix(e.Key, prefix) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Entry{}, fmt.Errorf("no baseline %q (diffsim baseline list shows them)", prefix)
	}
	return Entry{}, fmt.Errorf("%q names %d baselines; give more of the key", prefix, len(found))
}
