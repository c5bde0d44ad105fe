package engine

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// GraphCache keeps ONNX Runtime's optimized graphs between processes: the first session for a
// large model writes the graph ONNX Runtime has optimized (fusions, constant folding, layout
// changes) with its initializers beside it, and later processes load that with the optimizer
// off. Entries are keyed by the model's bytes, the identity of its external weight files, the
// runtime version, the device and the CPU, so a stale entry is never used, only left to age out.
type GraphCache struct {
	Dir      string // entries live in Dir/<key>/; empty disables the cache
	MaxBytes int64  // bound on the folder's size; oldest-used entries go first; 0 = DefaultGraphCacheBytes
	// MinBytes is the smallest model (graph plus external weights) worth caching: small graphs
	// optimize in milliseconds and are not worth a disk write. 0 = DefaultGraphCacheMinBytes.
	MinBytes int64
	// OnWrite, when set, hears that a model of size bytes (graph plus external weights) is not
	// cached yet and is about to be optimized and written: the one slow start, worth a notice.
	OnWrite func(size int64)
}

// Defaults for GraphCache.
const (
	DefaultGraphCacheBytes    = 16 << 30
	DefaultGraphCacheMinBytes = 64 << 20
)

// Names inside a cache entry.
const (
	graphFile   = "model.onnx"
	weightsFile = "weights.bin"
	metaFile    = "meta.json"
)

// DefaultGraphCacheDir is where diffsim keeps optimized graphs: CacheDir()/graphs.
func DefaultGraphCacheDir() string { return filepath.Join(CacheDir(), "graphs") }

// GraphCacheEntry describes one cached graph, for `diffsim cache` listings.
type GraphCacheEntry struct {
	Key      string    `json:"key"`
	Model    string    `json:"model"` // what the model was loaded as (its external-data folder)
	Runtime  string    `json:"runtime"`
	Device   string    `json:"device"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"-"`
	Bytes    int64     `json:"-"`
}

// graphCacheKey names a cache entry. The graph bytes are hashed in full (they are small once
// weights are external; they include the outputs diffsim appended, so instrumentation is in
// the key); external weight files are identified by path, size and modification time rather
// than hashed, since hashing gigabytes would cost a good part of what the cache saves.
func graphCacheKey(model []byte, extDir string, externals []string, version, device string) string {
	h := sha256.New()
	fmt.Fprintf(h, "diffsim graph cache v1\x00%s\x00%s\x00%s/%s\x00%s\x00", version, device, runtime.GOOS, runtime.GOARCH, cpuFlags())
	sum := sha256.Sum256(model)
	h.Write(sum[:])
	sort.Strings(externals)
	for _, loc := range externals {
		p := filepath.Join(extDir, loc)
		st, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(h, "\x00%s missing", p)
			continue
		}
		abs, _ := filepath.Abs(p)
		fmt.Fprintf(h, "\x00%s %d %d", abs, st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// cpuFlags identifies the CPU's instruction sets: ONNX Runtime's layout optimizations pick
// kernels for them, so an entry written on one CPU must not be loaded on another.
func cpuFlags() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "flags" {
			sum := sha256.Sum256([]byte(strings.TrimSpace(v)))
			return hex.EncodeToString(sum[:8])
		}
	}
	return runtime.GOARCH
}

// externalBytes is the size of the model's external weight files, 0 for those missing.
func externalBytes(dir string, externals []string) int64 {
	var n int64
	for _, loc := range externals {
		if st, err := os.Stat(filepath.Join(dir, loc)); err == nil {
			n += st.Size()
		}
	}
	return n
}

// ListGraphCache reads the entries in dir, most recently used first. A missing folder is an
// empty cache.
func ListGraphCache(dir string) ([]GraphCacheEntry, error) {
	des, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read graph cache %s: %w", dir, err)
	}
	var out []GraphCacheEntry
	for _, de := range des {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		e := GraphCacheEntry{Key: de.Name()}
		p := filepath.Join(dir, de.Name())
		if b, err := os.ReadFile(filepath.Join(p, metaFile)); err == nil {
			_ = json.Unmarshal(b, &e)
			e.Key = de.Name()
		}
		if st, err := os.Stat(filepath.Join(p, metaFile)); err == nil {
			e.LastUsed = st.ModTime()
		}
		e.Bytes = DiskBytes(p)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// CleanGraphCache removes every entry (and unfinished writes) and returns the bytes freed.
func CleanGraphCache(dir string) (int64, error) {
	des, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read graph cache %s: %w", dir, err)
	}
	var freed int64
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		n := DiskBytes(p)
		if err := os.RemoveAll(p); err != nil {
			return freed, fmt.Errorf("remove %s: %w", p, err)
		}
		freed += n
	}
	return freed, nil
}

// TrimGraphCache removes the least recently used entries until the folder holds at most max
// bytes, and returns the bytes freed. Entries being written (hidden folders) are left alone.
func TrimGraphCache(dir string, max int64) (int64, error) {
	entries, err := ListGraphCache(dir)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, e := range entries {
		total += e.Bytes
	}
	var freed int64
	for i := len(entries) - 1; i >= 0 && total > max; i-- {
		if err := os.RemoveAll(filepath.Join(dir, entries[i].Key)); err != nil {
			return freed, fmt.Errorf("trim graph cache: %w", err)
		}
		total -= entries[i].Bytes
		freed += entries[i].Bytes
	}
	return freed, nil
}

// DiskBytes is the size of the file at path, or of every file under it when it is a folder;
// what cannot be read counts nothing.
func DiskBytes(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// touch marks an entry used now, for the least-recently-used bound.
func touch(entry string) {
	now := time.Now()
	_ = os.Chtimes(filepath.Join(entry, metaFile), now, now)
}

func writeMeta(entry string, e GraphCacheEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(entry, metaFile), b, 0o644)
}
