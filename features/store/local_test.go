package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handLaidCache writes a repository exactly as huggingface_hub leaves it:
// content in blobs/ named by ETag, snapshot files as relative symlinks,
// refs/main holding the bare commit.
func handLaidCache(t *testing.T, cache, repo string, files map[string][]byte) string {
	t.Helper()
	repoDir := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	for name, data := range files {
		etag := gitSHA1(data)
		if strings.HasSuffix(name, ".onnx") || strings.HasSuffix(name, "_data") {
			etag = sha256hex(data)
		}
		blob := filepath.Join(repoDir, "blobs", etag)
		mustWrite(t, blob, data)
		link := filepath.Join(repoDir, "snapshots", testCommit, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		target, _ := filepath.Rel(filepath.Dir(link), blob)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(repoDir, "refs", "main"), []byte(testCommit))
	return filepath.Join(repoDir, "snapshots", testCommit)
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAHandLaidCacheIsFoundWithoutTheNetwork(t *testing.T) {
	f := newFakeHub(t)
	cache := testEnv(t, f)
	dir := handLaidCache(t, cache, "onnx-community/dinov2-small", dinoFiles())

	for _, arg := range []string{"dinov2-small", "onnx-community/dinov2-small", "onnx-community/dinov2-small@" + testCommit} {
		l, err := Resolve(arg, Options{})
		if err != nil {
			t.Fatalf("Resolve(%q): %v", arg, err)
		}
		if l.Kind != KindViT || l.Path != dir || l.Graph != filepath.Join(dir, "onnx", "model.onnx") || !l.Cached || l.Commit != testCommit {
			t.Errorf("Resolve(%q) = %+v", arg, l)
		}
	}
	entries, err := List(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name != "dinov2-small" || entries[0].Kind != KindViT || entries[0].Source != "cache" || entries[0].Size == 0 {
		t.Errorf("List = %+v", entries)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	if _, err := Pull(context.Background(), "dinov2-small", fastPull()); err != nil {
		t.Errorf("offline pull of a hand-laid cache: %v", err)
	}
	if got := f.requests(); len(got) != 0 {
		t.Errorf("the server saw %d requests, want none: %v", len(got), got)
	}
}

func TestPullWithoutTheHubPointsAtTheCachedCopy(t *testing.T) {
	cache := testEnv(t, nil) // the endpoint refuses connections
	handLaidCache(t, cache, "onnx-community/dinov2-small", dinoFiles())
	_, err := Pull(context.Background(), "dinov2-small", fastPull())
	if err == nil || !strings.Contains(err.Error(), "HF_HUB_OFFLINE=1") {
		t.Errorf("err = %v, want a hint to use the cached copy", err)
	}
}

func TestResolveSaysHowToPull(t *testing.T) {
	testEnv(t, nil)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", "")
	for arg, want := range map[string]string{
		"dinov2-small":    `model "dinov2-small" is not in the cache (~/.cache/huggingface/hub); run: diffsim models pull dinov2-small`,
		"clip-l14@v2":     `model "clip-l14" is not in the cache (~/.cache/huggingface/hub); run: diffsim models pull clip-l14@v2`,
		"someone/a-model": `model "someone/a-model" is not in the cache (~/.cache/huggingface/hub); run: diffsim models pull someone/a-model`,
	} {
		_, err := Resolve(arg, Options{})
		var nc *NotCachedError
		if !errors.As(err, &nc) || err.Error() != want {
			t.Errorf("Resolve(%q) = %v\nwant %s", arg, err, want)
		}
	}
}

func TestResolveNamesMissingFiles(t *testing.T) {
	cache := testEnv(t, nil)
	handLaidCache(t, cache, "onnx-community/stable-diffusion-v1-5-ONNX", map[string][]byte{
		"model_index.json": []byte("{}"), "unet/model.onnx": []byte("u"),
	})
	_, err := Resolve("sd15", Options{})
	for _, want := range []string{"vae_encoder/model.onnx", "unet/model.onnx_data or unet/weights.pb", "run: diffsim models pull sd15"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
}

func TestResolveKinds(t *testing.T) {
	cache := testEnv(t, nil)
	root := t.TempDir()
	vit := filepath.Join(root, "clip")
	mustWrite(t, filepath.Join(vit, "config.json"), []byte("{}"))
	mustWrite(t, filepath.Join(vit, "onnx", "model.onnx"), []byte("m"))
	mustWrite(t, filepath.Join(vit, "onnx", "vision_model.onnx"), []byte("v"))
	sd := filepath.Join(root, "sd")
	mustWrite(t, filepath.Join(sd, "model_index.json"), []byte("{}"))
	mustWrite(t, filepath.Join(sd, "unet", "model.onnx"), []byte("u"))
	bare := filepath.Join(root, "tiny.onnx")
	mustWrite(t, bare, []byte("g"))
	junk := filepath.Join(root, "junk")
	mustWrite(t, filepath.Join(junk, "notes.txt"), []byte("x"))
	handLaidCache(t, cache, "me/my-dino", dinoFiles())

	for _, tc := range []struct {
		arg   string
		opts  Options
		kind  Kind
		graph string
	}{
		{"builtin", Options{}, KindBuiltin, ""},
		{"", Options{}, KindBuiltin, ""},
		{vit, Options{}, KindViT, filepath.Join(vit, "onnx", "vision_model.onnx")},
		{sd, Options{}, KindDiffusion, filepath.Join(sd, "unet", "model.onnx")},
		{bare, Options{}, KindGeneric, bare},
		{"dinov2-small", Options{Repos: map[string]string{"dinov2-small": "me/my-dino"}}, KindViT, ""},
	} {
		l, err := Resolve(tc.arg, tc.opts)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.arg, err)
			continue
		}
		if l.Kind != tc.kind || (tc.graph != "" && l.Graph != tc.graph) {
			t.Errorf("Resolve(%q) = %+v, want kind %s graph %s", tc.arg, l, tc.kind, tc.graph)
		}
	}
	for arg, want := range map[string]string{
		junk:                       "not a model diffsim recognises",
		filepath.Join(root, "nah"): "no such file",
		"dinov2-smal":              "unknown model",
	} {
		if _, err := Resolve(arg, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(%q) = %v, want %q", arg, err, want)
		}
	}
}

func TestImportRegistersAndLists(t *testing.T) {
	cache := testEnv(t, nil)
	root := t.TempDir()
	vit := filepath.Join(root, "my-vit")
	mustWrite(t, filepath.Join(vit, "config.json"), []byte("{}"))
	mustWrite(t, filepath.Join(vit, "onnx", "model.onnx"), []byte("0123456789"))
	bare := filepath.Join(root, "probe.onnx")
	mustWrite(t, bare, []byte("g"))
	mustWrite(t, filepath.Join(root, "junk", "notes.txt"), []byte("x"))
	handLaidCache(t, cache, "Xenova/clip-vit-base-patch32", map[string][]byte{
		"config.json": []byte("{}"), "preprocessor_config.json": []byte("{}"), "onnx/vision_model.onnx": []byte("v"),
	})
	handLaidCache(t, cache, "some/text-model", map[string][]byte{"config.json": []byte("{}"), "tokenizer.json": []byte("{}")})

	if err := Import(vit, ""); err != nil {
		t.Fatal(err)
	}
	if err := Import(bare, "probe"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, name, want string }{
		{filepath.Join(root, "missing"), "x", "no such file"},
		{filepath.Join(root, "junk"), "junk", "not a model"},
		{bare, "sd15", "built-in name"},
		{bare, "org/name", "invalid name"},
	} {
		if err := Import(tc.path, tc.name); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Import(%q, %q) = %v, want %q", tc.path, tc.name, err, tc.want)
		}
	}

	l, err := Resolve("my-vit", Options{})
	if err != nil || l.Kind != KindViT || l.Path != vit || l.Cached {
		t.Errorf("Resolve(my-vit) = %+v, %v", l, err)
	}

	// Re-importing a name repoints it; the registry stays valid JSON.
	if err := Import(vit, "probe"); err != nil {
		t.Fatal(err)
	}
	if l, _ := Resolve("probe", Options{}); l.Kind != KindViT {
		t.Errorf("probe after re-import = %+v", l)
	}
	regPath, _ := RegistryPath()
	var reg registry
	if err := json.Unmarshal(readAll(t, regPath), &reg); err != nil || len(reg.Models) != 2 {
		t.Errorf("registry = %+v (%v), want 2 models", reg, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(regPath), ".*tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	if err := os.RemoveAll(vit); err != nil {
		t.Fatal(err)
	}
	entries, err := List(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Source+":"+e.Name+":"+string(e.Kind))
	}
	want := "cache:clip-b32:vit import:my-vit:unknown import:probe:unknown"
	if strings.Join(got, " ") != want {
		t.Errorf("List = %v, want %s", got, want)
	}
}

func TestMaterializePresentsRealFiles(t *testing.T) {
	cache := testEnv(t, nil)
	files := map[string][]byte{
		"unet/model.onnx":      []byte("graph"),
		"unet/model.onnx_data": randomBytes(5000, 3),
		"model_index.json":     []byte("{}"),
	}
	dir := handLaidCache(t, cache, "org/sd", files)

	out, cleanup, err := Materialize(dir, []string{"unet/model.onnx", "unet/model.onnx_data"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, filepath.Join(cache, "models--org--sd", ".diffsim")) {
		t.Errorf("materialised in %s, want beside the blobs", out)
	}
	for _, name := range []string{"unet/model.onnx", "unet/model.onnx_data"} {
		p := filepath.Join(out, filepath.FromSlash(name))
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s: %v %v, want a regular file", name, fi, err)
		}
		if !bytes.Equal(readAll(t, p), files[name]) {
			t.Errorf("%s: content differs", name)
		}
		src, _ := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
		if !os.SameFile(fi, src) {
			t.Errorf("%s was copied, want a hard link on the same filesystem", name)
		}
	}
	if err := cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := cleanup(); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cleanup left %s", out)
	}
	if !bytes.Equal(readAll(t, filepath.Join(dir, "unet", "model.onnx_data")), files["unet/model.onnx_data"]) {
		t.Error("cleanup damaged the cache")
	}

	plain := t.TempDir()
	mustWrite(t, filepath.Join(plain, "model.onnx"), []byte("g"))
	out, cleanup, err = Materialize(plain, nil)
	if err != nil || out != plain {
		t.Errorf("Materialize(plain folder) = %s, %v; want the folder itself", out, err)
	}
	if err := cleanup(); err != nil {
		t.Error(err)
	}
	if _, _, err := Materialize(dir, []string{"../../blobs/x"}); err == nil {
		t.Error("Materialize accepted a path leaving the folder")
	}
}

func TestEmbeddedModels(t *testing.T) {
	testEnv(t, nil)
	cacheRoot := filepath.Join(t.TempDir(), "diffsim-cache")
	t.Setenv("DIFFSIM_CACHE", cacheRoot)
	es := Embedded()
	if len(es) != 2 || es[0].Name != "toy-sd" || es[1].Name != "toy-sd-untrained" {
		t.Fatalf("Embedded = %+v", es)
	}
	if _, err := os.Stat(es[0].Path); err == nil {
		t.Error("Embedded unpacked the model; it should only say where it goes")
	}
	for _, e := range es {
		l, err := Resolve(e.Name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Kind != KindDiffusion || l.Path != e.Path || l.Graph != filepath.Join(e.Path, "unet", "model.onnx") || l.Cached || l.Name != e.Name {
			t.Errorf("Resolve(%s) = %+v, want the folder %s", e.Name, l, e.Path)
		}
		if !strings.HasPrefix(l.Path, cacheRoot) {
			t.Errorf("%s unpacked to %s, outside $DIFFSIM_CACHE", e.Name, l.Path)
		}
	}
	bare := filepath.Join(t.TempDir(), "mine.onnx")
	mustWrite(t, bare, []byte("g"))
	if err := Import(bare, "toy-sd"); err == nil || !strings.Contains(err.Error(), "built-in name") {
		t.Errorf("importing a folder as toy-sd: %v", err)
	}
}
