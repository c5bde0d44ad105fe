package store

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// repoCache is one repository's folder in the hub cache. Every path it
// builds comes from validated parts (names.go), so none can leave the cache.
type repoCache struct {
	cacheDir string
	repo     string
}

func (c repoCache) dir() string {
	return filepath.Join(c.cacheDir, "models--"+strings.ReplaceAll(c.repo, "/", "--"))
}

func (c repoCache) blob(etag string) string { return filepath.Join(c.dir(), "blobs", etag) }

func (c repoCache) snapshot(commit string) string {
	return filepath.Join(c.dir(), "snapshots", commit)
}

func (c repoCache) snapshotFile(commit, file string) string {
	return filepath.Join(c.snapshot(commit), filepath.FromSlash(file))
}

func (c repoCache) refFile(revision string) string {
	return filepath.Join(c.dir(), "refs", filepath.FromSlash(revision))
}

// lockFile is where huggingface_hub's filelock serialises writers of a blob;
// using the same file (and flock) keeps diffsim and Python from writing one
// .incomplete at the same time.
func (c repoCache) lockFile(etag string) string {
	return filepath.Join(c.cacheDir, ".locks", filepath.Base(c.dir()), etag+".lock")
}

// repoFromFolder inverts dir(): "models--org--name" → "org/name".
func repoFromFolder(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "models--")
	if !ok || rest == "" {
		return "", false
	}
	repo := strings.Replace(rest, "--", "/", 1)
	return repo, validRepoID(repo) == nil
}

// commitFor turns a revision into the commit the cache holds for it: a
// commit hash stands for itself, a branch or tag is read from refs/.
func (c repoCache) commitFor(revision string) (string, error) {
	if commitHash.MatchString(revision) {
		if _, err := os.Stat(c.snapshot(revision)); err != nil {
			return "", err
		}
		return revision, nil
	}
	b, err := os.ReadFile(c.refFile(revision))
	if err != nil {
		return "", err
	}
	commit := strings.TrimSpace(string(b))
	if !commitHash.MatchString(commit) {
		return "", fmt.Errorf("%s holds %q, not a commit hash", c.refFile(revision), commit)
	}
	return commit, nil
}

// writeRef records which commit a branch or tag resolved to, as
// huggingface_hub does (the hash alone, no newline).
func (c repoCache) writeRef(revision, commit string) error {
	if revision == commit {
		return nil
	}
	path := c.refFile(revision)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(path, []byte(commit), 0o644)
}

// present reports whether a snapshot file exists and its link resolves.
func present(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// link makes snapshots/{commit}/{file} a relative symlink to the blob, so
// the cache can be moved as a whole, exactly like huggingface_hub's
// _create_symlink. The link is made under a temporary name and renamed over,
// so a reader sees either no file or the finished one.
func (c repoCache) link(commit, file, etag string) error {
	dst := c.snapshotFile(commit, file)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	target, err := filepath.Rel(filepath.Dir(dst), c.blob(etag))
	if err != nil {
		return err
	}
	if cur, err := os.Readlink(dst); err == nil && cur == target {
		return nil
	}
	tmp := dst + ".diffsim-link"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s into the cache: %w", file, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("link %s into the cache: %w", file, err)
	}
	return nil
}

// snapshotFiles lists the files in a snapshot folder, slash-separated and
// relative to it. Broken links (a blob deleted by hand) are left out.
func snapshotFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !present(path) {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	return files, err
}
