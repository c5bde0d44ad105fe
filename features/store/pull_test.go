package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testEnv points every environment variable the store reads at temporary
// folders and the fake hub, so no test can touch the real cache or network.
func testEnv(t *testing.T, f *fakeHub) (cacheDir string) {
	t.Helper()
	root := t.TempDir()
	cacheDir = filepath.Join(root, "hf", "hub")
	t.Setenv("HOME", filepath.Join(root, "home"))
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HF_HOME", filepath.Join(root, "hf"))
	t.Setenv("HF_HUB_CACHE", cacheDir)
	t.Setenv("HUGGINGFACE_HUB_CACHE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("DIFFSIM_CONFIG", filepath.Join(root, "config"))
	endpoint := "http://127.0.0.1:1" // nothing listens: any request fails loudly
	if f != nil {
		endpoint = f.hub.URL
	}
	t.Setenv("HF_ENDPOINT", endpoint)
	return cacheDir
}

func fastPull() PullOptions {
	return PullOptions{Tries: 1, RetryDelay: time.Millisecond, StallTimeout: 5 * time.Second}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// dinoFiles is a transformers.js repository: small git files and an LFS graph.
func dinoFiles() map[string][]byte {
	return map[string][]byte{
		"config.json":               []byte(`{"model_type":"dinov2"}`),
		"preprocessor_config.json":  []byte(`{"size":{"shortest_edge":224}}`),
		"onnx/model.onnx":           randomBytes(300_000, 1),
		"onnx/model_quantized.onnx": randomBytes(1000, 2),
		"README.md":                 []byte("# dinov2"),
	}
}

func addDino(f *fakeHub, repo string) map[string][]byte {
	files := dinoFiles()
	f.addRepo(repo, files, "onnx/model.onnx", "onnx/model_quantized.onnx")
	return files
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPullKnownModelLaysOutTheHubCache(t *testing.T) {
	f := newFakeHub(t)
	cache := testEnv(t, f)
	files := addDino(f, "onnx-community/dinov2-small")

	var last = map[string][2]int64{}
	opts := fastPull()
	opts.Progress = func(file string, done, total int64) { last[file] = [2]int64{done, total} }
	snap, err := Pull(context.Background(), "dinov2-small", opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"config.json", "onnx/model.onnx", "preprocessor_config.json"}
	if !slices.Equal(snap.Files, want) {
		t.Errorf("files = %v, want %v", snap.Files, want)
	}
	repoDir := filepath.Join(cache, "models--onnx-community--dinov2-small")
	if snap.Dir != filepath.Join(repoDir, "snapshots", testCommit) || snap.Commit != testCommit || snap.Name != "dinov2-small" {
		t.Errorf("snapshot = %+v", snap)
	}
	if got := string(readAll(t, filepath.Join(repoDir, "refs", "main"))); got != testCommit {
		t.Errorf("refs/main = %q, want the bare commit", got)
	}
	links := map[string]string{
		"config.json":     "../../blobs/" + gitSHA1(files["config.json"]),
		"onnx/model.onnx": "../../../blobs/" + sha256hex(files["onnx/model.onnx"]),
	}
	for file, target := range links {
		p := filepath.Join(snap.Dir, filepath.FromSlash(file))
		if got, err := os.Readlink(p); err != nil || got != target {
			t.Errorf("%s links to %q (%v), want %q", file, got, err, target)
		}
		if !bytes.Equal(readAll(t, p), files[file]) {
			t.Errorf("%s: content differs from the server's", file)
		}
	}
	for _, file := range want {
		if p := last[file]; p[0] != p[1] || p[1] != int64(len(files[file])) {
			t.Errorf("last progress for %s = %v, want done = total = %d", file, p, len(files[file]))
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(repoDir, "blobs", "*.incomplete")); len(leftovers) > 0 {
		t.Errorf("left behind: %v", leftovers)
	}
	if _, err := os.Lstat(filepath.Join(snap.Dir, "onnx", "model_quantized.onnx")); err == nil {
		t.Error("fetched a file the model does not need")
	}

	// A second pull finds everything in place: one listing, no file traffic.
	before := len(f.requests())
	if _, err := Pull(context.Background(), "dinov2-small", fastPull()); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[before:]; len(got) != 1 || !strings.HasPrefix(got[0].Path, "/api/models/") {
		t.Errorf("second pull made %v, want only the listing", got)
	}
}

func TestPullIncludeSelectsFiles(t *testing.T) {
	f := newFakeHub(t)
	testEnv(t, f)
	addDino(f, "someone/dino")
	opts := fastPull()
	opts.Include = []string{"*.json", "*_quantized.onnx"}
	snap, err := Pull(context.Background(), "someone/dino", opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"config.json", "onnx/model_quantized.onnx", "preprocessor_config.json"}
	if !slices.Equal(snap.Files, want) {
		t.Errorf("files = %v, want %v", snap.Files, want)
	}
}

func bigRepo(f *fakeHub, size int) []byte {
	data := randomBytes(size, 7)
	f.addRepo("org/big", map[string][]byte{"model.onnx": data}, "model.onnx")
	return data
}

func TestPullResumesACutDownload(t *testing.T) {
	f := newFakeHub(t)
	cache := testEnv(t, f)
	data := bigRepo(f, 400_000)
	f.cutAfter = 150_000

	_, err := Pull(context.Background(), "org/big", fastPull())
	if err == nil {
		t.Fatal("pull over a cut connection succeeded")
	}
	blob := filepath.Join(cache, "models--org--big", "blobs", sha256hex(data))
	fi, statErr := os.Stat(blob + ".incomplete")
	if statErr != nil || fi.Size() != 150_000 {
		t.Fatalf("after the cut: .incomplete %v (%v), want 150000 bytes", fi, statErr)
	}
	snapFile := filepath.Join(cache, "models--org--big", "snapshots", testCommit, "model.onnx")
	if _, err := os.Lstat(snapFile); err == nil {
		t.Fatal("a partial file is visible in the snapshot")
	}

	snap, err := Pull(context.Background(), "org/big", fastPull())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(snap.Dir, "model.onnx")), data) {
		t.Fatal("resumed file differs from the server's")
	}
	var ranged bool
	for _, r := range f.requests() {
		ranged = ranged || (r.Method == "GET" && r.Range == "bytes=150000-")
	}
	if !ranged {
		t.Errorf("no Range request resumed the download: %v", f.requests())
	}
	if got := f.bytesSent(); got != int64(len(data)) {
		t.Errorf("server sent %d body bytes, want one full transfer (%d)", got, len(data))
	}
	if _, err := os.Stat(blob + ".incomplete"); err == nil {
		t.Error(".incomplete left behind")
	}
}

func TestPullRetriesACutWithinOnePull(t *testing.T) {
	f := newFakeHub(t)
	testEnv(t, f)
	data := bigRepo(f, 400_000)
	f.cutAfter = 99_999
	opts := fastPull()
	opts.Tries = 3
	snap, err := Pull(context.Background(), "org/big", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(snap.Dir, "model.onnx")), data) || f.bytesSent() != int64(len(data)) {
		t.Errorf("content or transfer wrong: sent %d of %d", f.bytesSent(), len(data))
	}
}

func TestPullRetriesAStalledTransfer(t *testing.T) {
	f := newFakeHub(t)
	testEnv(t, f)
	data := bigRepo(f, 200_000)
	f.hangAfter = 70_000
	opts := fastPull()
	opts.Tries = 2
	opts.StallTimeout = 200 * time.Millisecond
	start := time.Now()
	snap, err := Pull(context.Background(), "org/big", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(snap.Dir, "model.onnx")), data) || f.bytesSent() != int64(len(data)) {
		t.Errorf("content or transfer wrong after a stall: sent %d of %d", f.bytesSent(), len(data))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v: the stall was not cut short", d)
	}
}

func TestPullRestartsWhenTheServerIgnoresRange(t *testing.T) {
	f := newFakeHub(t)
	testEnv(t, f)
	data := bigRepo(f, 300_000)
	f.cutAfter = 100_000
	if _, err := Pull(context.Background(), "org/big", fastPull()); err == nil {
		t.Fatal("pull over a cut connection succeeded")
	}
	f.noRange = true
	snap, err := Pull(context.Background(), "org/big", fastPull())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(snap.Dir, "model.onnx")), data) {
		t.Fatal("content differs after a 200 answer to a Range request")
	}
}

func TestPullRejectsAWrongHash(t *testing.T) {
	f := newFakeHub(t)
	cache := testEnv(t, f)
	bigRepo(f, 50_000)
	f.lieETag = sha256hex([]byte("something else"))

	_, err := Pull(context.Background(), "org/big", fastPull())
	if err == nil || !strings.Contains(err.Error(), "hash mismatch") || !strings.Contains(err.Error(), "model.onnx") {
		t.Fatalf("err = %v, want a hash mismatch naming model.onnx", err)
	}
	repoDir := filepath.Join(cache, "models--org--big")
	if files, _ := snapshotFiles(filepath.Join(repoDir, "snapshots")); len(files) > 0 {
		t.Errorf("snapshots/ holds %v after a bad download", files)
	}
	if blobs, _ := os.ReadDir(filepath.Join(repoDir, "blobs")); len(blobs) > 0 {
		t.Errorf("blobs/ holds %v after a bad download", blobs)
	}
	if _, err := os.Stat(filepath.Join(repoDir, "refs", "main")); err == nil {
		t.Error("refs/main written for an incomplete snapshot")
	}
}

func TestPullRetriesServerErrors(t *testing.T) {
	for _, tc := range []struct {
		fail, tries int
		ok          bool
	}{{fail: 3, tries: 5, ok: true}, {fail: 10, tries: 3, ok: false}} {
		f := newFakeHub(t)
		testEnv(t, f)
		data := bigRepo(f, 10_000)
		f.fail500 = tc.fail
		opts := fastPull()
		opts.Tries = tc.tries
		var heard []string
		opts.OnRetry = func(what string, try, tries int, wait time.Duration, err error) {
			heard = append(heard, fmt.Sprintf("%s try %d of %d: %v", what, try, tries, err))
		}
		snap, err := Pull(context.Background(), "org/big", opts)
		// Every retry is told, before its wait, with what failed and why.
		if want := min(tc.fail, tc.tries-1); len(heard) != want || !strings.Contains(heard[0], "try 2 of") || !strings.Contains(heard[0], "500") {
			t.Errorf("%d failures, %d tries: retries heard %q, want %d", tc.fail, tc.tries, heard, want)
		}
		if !tc.ok {
			if err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "gave up after 3 tries") {
				t.Errorf("%d failures, %d tries: err = %v, want giving up on HTTP 500", tc.fail, tc.tries, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d failures, %d tries: %v", tc.fail, tc.tries, err)
		}
		if !bytes.Equal(readAll(t, filepath.Join(snap.Dir, "model.onnx")), data) {
			t.Error("content differs")
		}
	}
}

func TestPullRefusesHostileFileNames(t *testing.T) {
	for _, name := range []string{"../x", "/etc/passwd", "a/../../b", `a\..\b`, "a//b", "./a", "a/."} {
		t.Run(name, func(t *testing.T) {
			f := newFakeHub(t)
			cache := testEnv(t, f)
			f.addRepo("evil/repo", map[string][]byte{"config.json": []byte("{}"), name: []byte("pwned")})
			_, err := Pull(context.Background(), "evil/repo", fastPull())
			if err == nil || !strings.Contains(err.Error(), "refusing file name "+strconv.Quote(name)) {
				t.Fatalf("err = %v, want a refusal naming %q", err, name)
			}
			for _, r := range f.requests() {
				if !strings.HasPrefix(r.Path, "/api/") {
					t.Errorf("fetched %s after a hostile listing", r.Path)
				}
			}
			root := filepath.Dir(filepath.Dir(cache))
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					t.Errorf("file written: %s", p)
				}
				return nil
			})
		})
	}
}

func TestPullRefusesHostileRefs(t *testing.T) {
	testEnv(t, nil)
	for _, ref := range []string{"../etc", "org/../x", "org/repo@../../x", "org/repo@/abs", "a/b/c", "org--x/repo", "org/repo@a b", ""} {
		if _, err := Pull(context.Background(), ref, fastPull()); err == nil {
			t.Errorf("Pull(%q) accepted", ref)
		}
	}
}

func TestPullSendsTheTokenToTheHubOnly(t *testing.T) {
	f := newFakeHub(t)
	testEnv(t, f)
	t.Setenv("HF_TOKEN", "hf_secret")
	addDino(f, "onnx-community/dinov2-small")
	if _, err := Pull(context.Background(), "dinov2-small", fastPull()); err != nil {
		t.Fatal(err)
	}
	hubHost := strings.TrimPrefix(f.hub.URL, "http://")
	var cdn int
	for _, r := range f.requests() {
		switch {
		case r.Host == hubHost && r.Auth != "Bearer hf_secret":
			t.Errorf("hub request %s %s without the token", r.Method, r.Path)
		case r.Host != hubHost:
			cdn++
			if r.Auth != "" {
				t.Errorf("token sent to %s%s", r.Host, r.Path)
			}
		}
	}
	if cdn == 0 {
		t.Error("no request reached the CDN: the redirect was not exercised")
	}
}

func TestPullCancelLeavesTheIncompleteFile(t *testing.T) {
	f := newFakeHub(t)
	cache := testEnv(t, f)
	data := bigRepo(f, 4_000_000)
	ctx, cancel := context.WithCancel(context.Background())
	opts := fastPull()
	opts.Tries = 5
	opts.Progress = func(_ string, done, _ int64) {
		if done > 0 {
			cancel()
		}
	}
	_, err := Pull(ctx, "org/big", opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	inc := filepath.Join(cache, "models--org--big", "blobs", sha256hex(data)+".incomplete")
	fi, err := os.Stat(inc)
	if err != nil || fi.Size() == 0 || fi.Size() >= int64(len(data)) {
		t.Fatalf(".incomplete after cancel: %v %v", fi, err)
	}
	snap, err := Pull(context.Background(), "org/big", fastPull())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(snap.Dir, "model.onnx")), data) {
		t.Fatal("content differs after resuming a cancelled pull")
	}
}

func TestPullNamesWhatTheRepositoryLacks(t *testing.T) {
	f := newFakeHub(t)
	testEnv(t, f)
	f.addRepo("onnx-community/stable-diffusion-v1-5-ONNX", map[string][]byte{
		"model_index.json":        []byte("{}"),
		"unet/model.onnx":         []byte("u"),
		"vae_encoder/model.onnx":  []byte("v"),
		"text_encoder/model.onnx": []byte("t"),
		"tokenizer/vocab.json":    []byte("{}"),
	})
	_, err := Pull(context.Background(), "sd15", fastPull())
	for _, want := range []string{"onnx-community/stable-diffusion-v1-5-ONNX", "tokenizer/merges.txt", "unet/model.onnx_data or unet/weights.pb"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %q", err, want)
		}
	}
	if got := f.requests(); len(got) != 1 {
		t.Errorf("made %d requests before refusing, want only the listing", len(got))
	}
}

func TestPullUnknownRepository(t *testing.T) {
	f := newFakeHub(t)
	testEnv(t, f)
	_, err := Pull(context.Background(), "nobody/nothing", fastPull())
	if err == nil || !strings.Contains(err.Error(), "repository nobody/nothing not found") || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("err = %v", err)
	}
}

func TestPullOfflineUsesTheCacheOnly(t *testing.T) {
	f := newFakeHub(t)
	testEnv(t, f)
	addDino(f, "onnx-community/dinov2-small")
	first, err := Pull(context.Background(), "dinov2-small", fastPull())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	before := len(f.requests())

	snap, err := Pull(context.Background(), "dinov2-small", fastPull())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Dir != first.Dir || !slices.Equal(snap.Files, first.Files) {
		t.Errorf("offline snapshot %+v differs from %+v", snap, first)
	}

	_, err = Pull(context.Background(), "clip-b32", fastPull())
	var nc *NotCachedError
	if !errors.As(err, &nc) || !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "diffsim models pull clip-b32") {
		t.Errorf("err = %v, want an offline not-cached error with the pull command", err)
	}

	if err := os.Remove(filepath.Join(first.Dir, "preprocessor_config.json")); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(context.Background(), "dinov2-small", fastPull())
	if err == nil || !strings.Contains(err.Error(), "lacks preprocessor_config.json") {
		t.Errorf("err = %v, want it to name the missing file", err)
	}
	if got := f.requests()[before:]; len(got) != 0 {
		t.Errorf("offline mode made requests: %v", got)
	}
}
