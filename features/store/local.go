package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Local is a model on this machine, ready to hand to the engine.
type Local struct {
	Name   string // what the user typed, or the known/imported name
	Kind   Kind
	Path   string // the model folder or .onnx file; "" for builtin
	Graph  string // the main graph: unet/model.onnx, onnx/vision_model.onnx…; "" for builtin
	Repo   string // org/name when it comes from the hub cache
	Commit string // the snapshot's commit when it comes from the hub cache
	// Cached is true for hub snapshots, whose files are symlinks: load them
	// through Materialize.
	Cached bool
}

// Entry is one line of List.
type Entry struct {
	Name   string
	Kind   Kind
	Path   string
	Size   int64  // bytes on disk
	Source string // "cache" or "import"
	Repo   string // for cache entries
	Commit string // for cache entries
}

// detect reads a model's kind from its layout, and the graph to load first.
func detect(path string) (Kind, string) {
	fi, err := os.Stat(path)
	if err != nil {
		return KindUnknown, ""
	}
	if !fi.IsDir() {
		if fi.Mode().IsRegular() && strings.EqualFold(filepath.Ext(path), ".onnx") {
			return KindGeneric, path
		}
		return KindUnknown, ""
	}
	has := func(rel string) bool { return present(filepath.Join(path, filepath.FromSlash(rel))) }
	switch {
	case has("model_index.json") && has("unet/model.onnx"):
		return KindDiffusion, filepath.Join(path, "unet", "model.onnx")
	case has("config.json") && has("onnx/vision_model.onnx"):
		return KindViT, filepath.Join(path, "onnx", "vision_model.onnx")
	case has("config.json") && has("onnx/model.onnx"):
		return KindViT, filepath.Join(path, "onnx", "model.onnx")
	}
	// A folder holding exactly one graph is that graph.
	graphs, _ := filepath.Glob(filepath.Join(path, "*.onnx"))
	if len(graphs) == 1 && present(graphs[0]) {
		return KindGeneric, graphs[0]
	}
	return KindUnknown, ""
}

// Resolve turns a --model argument into a local model, without any network
// access. In order it tries: "builtin"; an embedded model (toy-sd, unpacked
// into diffsim's cache on first use); a path written as one (/…, ./…, ~/…,
// or ending in .onnx); a known name; an imported name; an existing file or
// folder; an org/repo[@revision] in the hub cache.
func Resolve(arg string, opts Options) (Local, error) {
	if arg == "" || arg == Builtin {
		return Local{Name: Builtin, Kind: KindBuiltin}, nil
	}
	if isEmbedded(arg) {
		return resolveEmbedded(arg)
	}
	s, err := opts.settings()
	if err != nil {
		return Local{}, err
	}
	if looksLikePath(arg) {
		return resolvePath(arg, arg)
	}
	body, _, _ := strings.Cut(arg, "@")
	if _, ok := knownModel(body); ok {
		return resolveCached(arg, s)
	}
	reg, err := loadRegistry()
	if err != nil {
		return Local{}, err
	}
	if m, ok := reg.find(arg); ok {
		l, err := resolvePath(arg, m.Path)
		if err != nil {
			return Local{}, fmt.Errorf("imported model %q: %w; import it again with: diffsim models import PATH --name %s", arg, err, arg)
		}
		return l, nil
	}
	if _, err := os.Stat(arg); err == nil {
		return resolvePath(arg, arg)
	}
	if strings.Contains(body, "/") {
		return resolveCached(arg, s)
	}
	return Local{}, fmt.Errorf("unknown model %q: use builtin, toy-sd, one of %s, a name from `diffsim models list`, org/repo, a folder or a .onnx file", arg, knownNames())
}

func looksLikePath(arg string) bool {
	return filepath.IsAbs(arg) || arg == "." || arg == ".." || arg == "~" ||
		strings.HasPrefix(arg, "./") || strings.HasPrefix(arg, "../") || strings.HasPrefix(arg, "~/") ||
		strings.EqualFold(filepath.Ext(arg), ".onnx")
}

func resolvePath(name, p string) (Local, error) {
	p, err := expandHome(p)
	if err != nil {
		return Local{}, err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return Local{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		return Local{}, fmt.Errorf("model %s: %w", p, err)
	}
	kind, graph := detect(abs)
	if kind == KindUnknown {
		return Local{}, fmt.Errorf("%s is not a model diffsim recognises: want a .onnx file, a folder with model_index.json and unet/model.onnx, or one with config.json and onnx/model.onnx (or onnx/vision_model.onnx)", p)
	}
	return Local{Name: name, Kind: kind, Path: abs, Graph: graph, Cached: inHubCache(abs)}, nil
}

// inHubCache reports whether a folder is (inside) a hub snapshot, whose
// files are symlinks into blobs/.
func inHubCache(p string) bool {
	for d := p; ; d = filepath.Dir(d) {
		if filepath.Base(filepath.Dir(d)) == "snapshots" && strings.HasPrefix(filepath.Base(filepath.Dir(filepath.Dir(d))), "models--") {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// resolveCached finds a known name or org/repo in the hub cache.
func resolveCached(arg string, s settings) (Local, error) {
	r, err := parseRef(arg, s.repos)
	if err != nil {
		return Local{}, err
	}
	c := repoCache{cacheDir: s.cacheDir, repo: r.repo}
	commit, err := c.commitFor(r.revision)
	if err != nil {
		return Local{}, notCached(r, s, nil, s.offline)
	}
	dir := c.snapshot(commit)
	if r.known != nil {
		listing, _ := snapshotFiles(dir)
		if _, missing := r.wanted(listing, nil); len(missing) > 0 {
			return Local{}, notCached(r, s, missing, s.offline)
		}
	}
	kind, graph := detect(dir)
	if kind == KindUnknown {
		if files, _ := snapshotFiles(dir); len(files) == 0 {
			return Local{}, notCached(r, s, nil, s.offline)
		}
		return Local{}, fmt.Errorf("%s in the cache (%s) is not a model diffsim recognises: want model_index.json + unet/model.onnx, config.json + onnx/model.onnx, or one .onnx file", r.repo, displayPath(dir))
	}
	return Local{Name: r.label(), Kind: kind, Path: dir, Graph: graph, Repo: r.repo, Commit: commit, Cached: true}, nil
}

// List shows the models on this machine: the hub cache's repositories whose
// layout diffsim can run, and every imported model (kind unknown when its
// files are gone). Known names stand for their repositories. Embedded lists
// the models inside the binary.
func List(opts Options) ([]Entry, error) {
	s, err := opts.settings()
	if err != nil {
		return nil, err
	}
	var out []Entry
	dirs, err := os.ReadDir(s.cacheDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the cache %s: %w", s.cacheDir, err)
	}
	names := map[string]string{}
	for _, m := range KnownModels() {
		repo := m.Repo
		if o := s.repos[m.Name]; o != "" {
			repo, _, _ = strings.Cut(o, "@")
		}
		if _, taken := names[repo]; !taken {
			names[repo] = m.Name
		}
	}
	for _, d := range dirs {
		repo, ok := repoFromFolder(d.Name())
		if !ok || !d.IsDir() {
			continue
		}
		c := repoCache{cacheDir: s.cacheDir, repo: repo}
		commit := latestSnapshot(c)
		if commit == "" {
			continue
		}
		dir := c.snapshot(commit)
		kind, _ := detect(dir)
		if kind == KindUnknown {
			continue
		}
		name := repo
		if n, ok := names[repo]; ok {
			name = n
		}
		out = append(out, Entry{Name: name, Kind: kind, Path: dir, Size: diskSize(filepath.Join(c.dir(), "blobs")),
			Source: "cache", Repo: repo, Commit: commit})
	}
	reg, err := loadRegistry()
	if err != nil {
		return nil, err
	}
	for _, m := range reg.Models {
		kind, _ := detect(m.Path)
		out = append(out, Entry{Name: m.Name, Kind: kind, Path: m.Path, Size: diskSize(m.Path), Source: "import"})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// latestSnapshot prefers the commit refs/main names, else the newest snapshot.
func latestSnapshot(c repoCache) string {
	if commit, err := c.commitFor("main"); err == nil {
		return commit
	}
	snaps, err := os.ReadDir(filepath.Join(c.dir(), "snapshots"))
	if err != nil {
		return ""
	}
	var best string
	var bestTime int64
	for _, sn := range snaps {
		fi, err := sn.Info()
		if err != nil || !sn.IsDir() || !commitHash.MatchString(sn.Name()) {
			continue
		}
		if t := fi.ModTime().UnixNano(); best == "" || t > bestTime {
			best, bestTime = sn.Name(), t
		}
	}
	return best
}

// diskSize adds up the regular files under path, following symlinks to
// count what an imported snapshot folder really holds.
func diskSize(path string) int64 {
	var total int64
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return nil
	})
	return total
}
