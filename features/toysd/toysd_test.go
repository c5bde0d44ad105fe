package toysd

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func sumFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDirUnpacksWhatTheManifestSays(t *testing.T) {
	root := t.TempDir()
	for _, name := range Names() {
		dir, err := Dir(root, name)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := Path(root, name); dir != want {
			t.Errorf("%s: Dir = %s, Path = %s", name, dir, want)
		}
		es, err := files(name)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, e := range es {
			if got := sumFile(t, filepath.Join(dir, e.path)); got != e.sum {
				t.Errorf("%s/%s: sha256 %s, manifest %s", name, e.path, got, e.sum)
			}
			total += e.size
		}
		if n, _ := Bytes(name); n != total {
			t.Errorf("%s: Bytes = %d, files add up to %d", name, n, total)
		}
		for _, f := range []string{"model_index.json", "unet/model.onnx", "unet/config.json", "vae_encoder/model.onnx", "text_encoder/model.onnx", "tokenizer/vocab.json"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	trained, _ := Dir(root, Name)
	untrained, _ := Dir(root, UntrainedName)
	if sumFile(t, filepath.Join(trained, "unet/model.onnx")) == sumFile(t, filepath.Join(untrained, "unet/model.onnx")) {
		t.Error("toy-sd-untrained has the trained U-Net")
	}
	if sumFile(t, filepath.Join(trained, "vae_encoder/model.onnx")) != sumFile(t, filepath.Join(untrained, "vae_encoder/model.onnx")) {
		t.Error("toy-sd-untrained should share the trained VAE encoder")
	}
}

// Every embedded file is in its layer's manifest: a file the training script wrote but the
// manifest forgot would silently never be unpacked.
func TestManifestCoversEmbeddedFiles(t *testing.T) {
	for _, layer := range []string{"model", "untrained"} {
		es, err := readManifest(layer)
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, e := range es {
			listed[e.from] = true
		}
		err = fs.WalkDir(embedded, layer, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || p == layer+"/MANIFEST" {
				return err
			}
			if !listed[p] {
				t.Errorf("%s is embedded but not in %s/MANIFEST", p, layer)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirRepairsADamagedCopy(t *testing.T) {
	root := t.TempDir()
	dir, err := Dir(root, Name)
	if err != nil {
		t.Fatal(err)
	}
	unet := filepath.Join(dir, "unet", "model.onnx")
	want := sumFile(t, unet)
	if err := os.Truncate(unet, 100); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "model_index.json")); err != nil {
		t.Fatal(err)
	}
	again, err := Dir(root, Name)
	if err != nil || again != dir {
		t.Fatalf("Dir after damage = %s, %v; want %s", again, err, dir)
	}
	if sumFile(t, unet) != want {
		t.Error("the truncated U-Net was not restored")
	}
	leftovers, _ := filepath.Glob(filepath.Join(root, "models", ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary folders left behind: %v", leftovers)
	}
}

// Two diffsim processes that start at once (the explorer and a server, say) both get a whole
// folder, and no temporary folder is left.
func TestDirConcurrentFirstUse(t *testing.T) {
	root := t.TempDir()
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	for i := range dirs {
		wg.Go(func() { dirs[i], errs[i] = Dir(root, Name) })
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("call %d: %s, %v", i, dirs[i], errs[i])
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "models"))
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("models folder holds %v, want only the model", names)
	}
}

func TestDirErrors(t *testing.T) {
	if _, err := Dir(t.TempDir(), "toy-sd-xl"); err == nil || !strings.Contains(err.Error(), "toy-sd") {
		t.Errorf("unknown name: %v", err)
	}
	// A cache that cannot take the folder (here a file where the cache folder should be).
	root := filepath.Join(t.TempDir(), "cache")
	if err := os.WriteFile(root, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(root, Name); err == nil || !strings.Contains(err.Error(), "DIFFSIM_CACHE") {
		t.Errorf("unwritable cache: %v; want advice to set DIFFSIM_CACHE", err)
	}
}
