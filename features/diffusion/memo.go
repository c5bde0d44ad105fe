package diffusion

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/diffsim/diffsim/engine"
)

// memo keeps results of the graphs whose output does not depend on t (an image's VAE latent,
// a prompt's text embedding), keyed by what went in and by the graph that computed them: in
// memory for the process, and on disk so that the next command on the same image or prompt
// skips the graph, and never opens its session. A damaged or foreign file is a miss.
type memo struct {
	dir   string // "" keeps nothing on disk
	model string // identity of the graph and of how its output is read
	max   int    // entries kept in memory

	mu  sync.Mutex
	mem map[string]engine.Tensor
}

// maxMemoFiles bounds a memo folder: a 512 px latent is 64 KB, a text embedding 236 KB.
const maxMemoFiles = 4096

func newMemo(dir, model string, max int) *memo {
	return &memo{dir: dir, model: model, max: max, mem: map[string]engine.Tensor{}}
}

// graphIdentity names a graph file by what it is: its path, and the size and modification
// time of every file in its folder (external weights included), with what reads it.
func graphIdentity(path string, how ...any) string {
	h := sha256.New()
	abs, _ := filepath.Abs(path)
	fmt.Fprintf(h, "diffsim memo v1\x00%s\x00%v", abs, how)
	des, _ := os.ReadDir(filepath.Dir(path))
	for _, de := range des {
		if info, err := de.Info(); err == nil && !de.IsDir() {
			fmt.Fprintf(h, "\x00%s %d %d", de.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// key names an entry: the graph's identity and the bytes of what was fed.
func (c *memo) key(parts ...any) string {
	h := sha256.New()
	h.Write([]byte(c.model))
	for _, p := range parts {
		switch v := p.(type) {
		case []float32:
			b := make([]byte, 4*len(v))
			for i, f := range v {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
			}
			h.Write(b)
		case []int64:
			for _, x := range v {
				fmt.Fprintf(h, "%d,", x)
			}
		default:
			fmt.Fprintf(h, "%v\x00", v)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:40]
}

func (c *memo) path(key string) string { return filepath.Join(c.dir, key[:2], key+".f32") }

// get returns the entry for key from memory, else from disk.
func (c *memo) get(key string) (engine.Tensor, bool) {
	c.mu.Lock()
	t, ok := c.mem[key]
	c.mu.Unlock()
	if ok || c.dir == "" {
		return t, ok
	}
	data, err := os.ReadFile(c.path(key))
	if err != nil {
		return engine.Tensor{}, false
	}
	t, ok = decodeTensor(data)
	if !ok {
		return engine.Tensor{}, false
	}
	now := time.Now()
	_ = os.Chtimes(c.path(key), now, now) // used: trimmed last
	c.remember(key, t)
	return t, true
}

// put keeps t in memory and writes it to disk (atomically; a failed write is only a miss
// next time).
func (c *memo) put(key string, t engine.Tensor) {
	c.remember(key, t)
	if c.dir == "" {
		return
	}
	p := c.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	if renameio.WriteFile(p, encodeTensor(t), 0o644) == nil {
		c.trim()
	}
}

func (c *memo) remember(key string, t engine.Tensor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mem) >= c.max {
		clear(c.mem)
	}
	c.mem[key] = t
}

// trim removes the least recently used half of the folder once it holds maxMemoFiles.
func (c *memo) trim() {
	type entry struct {
		path string
		used int64
	}
	var files []entry
	_ = filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".f32" {
			if info, err := d.Info(); err == nil {
				files = append(files, entry{p, info.ModTime().UnixNano()})
			}
		}
		return nil
	})
	if len(files) < maxMemoFiles {
		return
	}
	sort.Slice(files, func(i, j int) bool { return files[i].used < files[j].used })
	for _, f := range files[:len(files)/2] {
		os.Remove(f.path)
	}
}

// encodeTensor writes a float32 tensor as its rank, its dims and its values, little-endian.
func encodeTensor(t engine.Tensor) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(t.Shape)))
	for _, d := range t.Shape {
		b = binary.LittleEndian.AppendUint64(b, uint64(d))
	}
	for _, f := range t.Float32 {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func decodeTensor(b []byte) (engine.Tensor, bool) {
	if len(b) < 4 {
		return engine.Tensor{}, false
	}
	rank := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if rank > 8 || len(b) < 8*rank {
		return engine.Tensor{}, false
	}
	shape := make([]int64, rank)
	n := int64(1)
	for i := range shape {
		shape[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		if shape[i] < 0 || shape[i] > 1<<24 {
			return engine.Tensor{}, false
		}
		n *= shape[i]
	}
	b = b[8*rank:]
	if int64(len(b)) != 4*n {
		return engine.Tensor{}, false
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return engine.F32("", slices.Clone(shape), v), true
}
