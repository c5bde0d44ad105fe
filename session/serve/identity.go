package serve

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/store"
)

// A warm model is the files on disk it was loaded from, not their name: a request names its
// model by path or by a name the store resolves, and the server identifies what that names now
// by the size, modification time, inode and device of every file under it. A model file
// replaced, rewritten or pulled anew since a session loaded it is another model: the request
// loads it (and the stale session unloads as soon as no request holds it), so served answers
// equal those of a command that opens the model itself. A model path that is gone is refused.

// maxIdentityFiles bounds the files a model's identity looks at; a model folder holds a few
// dozen.
const maxIdentityFiles = 4096

// identify returns the identity of the files spec names (model, IP-Adapter, image encoder);
// "" for none (the built-in model). A path that does not exist is a bad request.
func identify(spec api.Spec) (string, error) {
	h := sha256.New()
	named := false
	for _, p := range []struct{ what, path string }{{"model", spec.Model}, {"ip_adapter", spec.IPAdapter}, {"image_encoder", spec.ImageEncoder}} {
		if p.path == "" {
			continue
		}
		root := p.path
		if !filepath.IsAbs(root) {
			// A name (sd15, an org/repo id): the folder the store resolves it to now. A name the
			// store does not know fails where the model loads, with the store's error.
			loc, err := store.Resolve(root, store.Options{})
			if err != nil || loc.Path == "" {
				continue
			}
			root = loc.Path
		}
		fmt.Fprintf(h, "%s=%s\n", p.what, root)
		named = true
		if err := fingerprint(h, root); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", badf("%s %s: no such file or folder (moved or deleted?)", p.what, p.path)
			}
			return "", badf("%s %s: %v", p.what, p.path, err)
		}
	}
	if !named {
		return "", nil
	}
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// fingerprint writes what identifies the files under root (a file or a folder; symbolic links
// are followed, as a Hugging Face snapshot's point at its blobs) to w.
func fingerprint(w io.Writer, root string) error {
	fi, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		writeStat(w, ".", fi)
		return nil
	}
	n := 0
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if n++; n > maxIdentityFiles {
			return fs.SkipAll
		}
		fi, err := os.Stat(path) // through symbolic links
		if err != nil {
			return nil // a dangling link is not part of the model
		}
		rel, _ := filepath.Rel(root, path)
		writeStat(w, rel, fi)
		return nil
	})
}

func writeStat(w io.Writer, rel string, fi fs.FileInfo) {
	var ino, dev uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino, dev = st.Ino, uint64(st.Dev)
	}
	fmt.Fprintf(w, "%s %d %d %d %d\n", rel, fi.Size(), fi.ModTime().UnixNano(), ino, dev)
}
