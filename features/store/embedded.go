package store

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features/toysd"
)

// Embedded models ship inside the binary and are unpacked into diffsim's cache
// (engine.CacheDir()/models) on first use: the miniature SD and its untrained twin.

func isEmbedded(name string) bool { return slices.Contains(toysd.Names(), name) }

// resolveEmbedded unpacks an embedded model if needed and returns it as a local folder.
func resolveEmbedded(name string) (Local, error) {
	dir, err := toysd.Dir(engine.CacheDir(), name)
	if err != nil {
		return Local{}, err
	}
	kind, graph := detect(dir)
	if kind != KindDiffusion {
		return Local{}, fmt.Errorf("%s: the unpacked folder %s is not a diffusion model; delete it and retry", name, dir)
	}
	return Local{Name: name, Kind: kind, Path: dir, Graph: graph}, nil
}

// Embedded lists the models inside the binary, each with the folder it unpacks to (whether
// or not it has been unpacked yet) and its unpacked size.
func Embedded() []Entry {
	var out []Entry
	for _, name := range toysd.Names() {
		p, err := toysd.Path(engine.CacheDir(), name)
		if err != nil {
			continue
		}
		size, _ := toysd.Bytes(name)
		out = append(out, Entry{Name: name, Kind: KindDiffusion, Path: filepath.Clean(p), Size: size, Source: "embedded"})
	}
	return out
}
