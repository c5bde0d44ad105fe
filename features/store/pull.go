package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// PullOptions adds to Options what a download needs.
type PullOptions struct {
	Options
	// Include adds files matching these globs (fnmatch style: "onnx/*_fp16.onnx")
	// to a known model's list; for an org/repo it selects the files, all when empty.
	Include []string
	// Progress, when set, is called from Pull's goroutine as bytes arrive.
	// total is the file's size; done starts at what a resumed file already held.
	Progress func(file string, done, total int64)
	// Tries is how many times a file is attempted (default 5).
	Tries int
	// RetryDelay is the first back-off delay, doubled each retry (default 1 s).
	RetryDelay time.Duration
	// OnRetry, when set, hears of each retry before its wait: what failed (an action on a
	// file), the coming try's number, the tries in all, the wait and the error.
	OnRetry func(what string, try, tries int, wait time.Duration, err error)
	// StallTimeout aborts (and retries) a transfer that receives nothing for
	// this long (default 30 s).
	StallTimeout time.Duration
}

// Snapshot is a repository at one commit, complete in the cache.
type Snapshot struct {
	Name     string   // the known name, or "" for a plain repository
	Repo     string   // org/name
	Revision string   // as asked: main, a tag, or a commit
	Commit   string   // the 40-hex commit the revision resolved to
	Dir      string   // snapshots/{commit}: its files are symlinks, see Materialize
	Files    []string // slash-separated, relative to Dir
}

// Pull makes a model complete in the hub cache and returns its snapshot.
// Files already there are not fetched again; an interrupted file resumes
// where it stopped. ref is a known name (see KnownModels) or org/repo, with an
// optional @revision.
func Pull(ctx context.Context, refArg string, opts PullOptions) (Snapshot, error) {
	s, err := opts.settings()
	if err != nil {
		return Snapshot{}, err
	}
	r, err := parseRef(refArg, s.repos)
	if err != nil {
		return Snapshot{}, err
	}
	for _, g := range opts.Include {
		if strings.TrimSpace(g) == "" {
			return Snapshot{}, fmt.Errorf("empty include pattern")
		}
	}
	c := repoCache{cacheDir: s.cacheDir, repo: r.repo}
	if s.offline {
		return cachedSnapshot(c, r, opts.Include, s)
	}
	h, err := newHub(s)
	if err != nil {
		return Snapshot{}, err
	}
	p := puller{hub: h, cache: c, opts: opts}
	p.defaults()

	var info repoInfo
	err = retry(ctx, p.opts.Tries, p.opts.RetryDelay, p.onRetry("ask the hub about "+r.label()), func() (err error) {
		info, err = h.info(ctx, r.repo, r.revision)
		return err
	})
	if err != nil {
		if _, cerr := cachedSnapshot(c, r, opts.Include, s); cerr == nil && ctx.Err() == nil {
			return Snapshot{}, fmt.Errorf("pull %s: %w (a complete copy is in the cache: set HF_HUB_OFFLINE=1 to use it without asking the hub)", r.label(), err)
		}
		return Snapshot{}, fmt.Errorf("pull %s: %w", r.label(), err)
	}
	var listing []string
	for _, sib := range info.Siblings {
		listing = append(listing, sib.RFilename)
	}
	files, missing := r.wanted(listing, opts.Include)
	if len(missing) > 0 {
		return Snapshot{}, fmt.Errorf("pull %s: %s@%s lacks %s; if the model moved, point %s at another repository",
			r.label(), r.repo, r.revision, strings.Join(missing, ", "), r.label())
	}
	if len(files) == 0 {
		return Snapshot{}, fmt.Errorf("pull %s: no file of %s@%s matches %s", r.label(), r.repo, r.revision, strings.Join(opts.Include, " "))
	}
	// Refuse the whole pull before touching the disk if any name is unsafe.
	for _, f := range files {
		if err := validRepoFile(r.repo, f); err != nil {
			return Snapshot{}, fmt.Errorf("pull %s: %w", r.label(), err)
		}
	}
	for _, f := range files {
		if err := p.file(ctx, info.SHA, f); err != nil {
			hint := ""
			if isTransient(err) || errors.Is(err, context.Canceled) {
				hint = "; run the same pull again to resume"
			}
			return Snapshot{}, fmt.Errorf("pull %s: %s from %s: %w%s", r.label(), f, r.repo, err, hint)
		}
	}
	// The ref moves only once the snapshot is whole, so a failed pull of a
	// new commit leaves the previous complete one in use.
	if err := c.writeRef(r.revision, info.SHA); err != nil {
		return Snapshot{}, fmt.Errorf("pull %s: record %s: %w", r.label(), r.revision, err)
	}
	return Snapshot{
		Name: knownName(r), Repo: r.repo, Revision: r.revision, Commit: info.SHA,
		Dir: c.snapshot(info.SHA), Files: files,
	}, nil
}

func knownName(r ref) string {
	if r.known != nil {
		return r.known.Name
	}
	return ""
}

type puller struct {
	hub   *hub
	cache repoCache
	opts  PullOptions
}

func (p *puller) defaults() {
	if p.opts.Tries <= 0 {
		p.opts.Tries = 5
	}
	if p.opts.RetryDelay <= 0 {
		p.opts.RetryDelay = time.Second
	}
	if p.opts.StallTimeout <= 0 {
		p.opts.StallTimeout = 30 * time.Second
	}
	if p.opts.Progress == nil {
		p.opts.Progress = func(string, int64, int64) {}
	}
}

// onRetry adapts OnRetry to one action; nil when nobody listens.
func (p *puller) onRetry(what string) func(try, tries int, wait time.Duration, err error) {
	if p.opts.OnRetry == nil {
		return nil
	}
	return func(try, tries int, wait time.Duration, err error) { p.opts.OnRetry(what, try, tries, wait, err) }
}

// file brings one file of a commit into the snapshot.
func (p *puller) file(ctx context.Context, commit, file string) error {
	if present(p.cache.snapshotFile(commit, file)) {
		return nil
	}
	var meta fileMeta
	err := retry(ctx, p.opts.Tries, p.opts.RetryDelay, p.onRetry("look up "+file), func() (err error) {
		meta, err = p.hub.head(ctx, p.cache.repo, commit, file)
		return err
	})
	if err != nil {
		return err
	}
	if meta.commit != "" && meta.commit != commit {
		return fmt.Errorf("the hub served commit %s when asked for %s", meta.commit, commit)
	}
	if err := p.blob(ctx, file, meta); err != nil {
		return err
	}
	return p.cache.link(commit, file, meta.etag)
}

// blob makes blobs/{etag} exist with verified content. Bytes go to
// {etag}.incomplete, which survives failures and cancellation for the next
// try to resume, and is renamed into place only once size and hash match.
func (p *puller) blob(ctx context.Context, file string, meta fileMeta) (err error) {
	dst := p.cache.blob(meta.etag)
	if present(dst) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	unlock, err := lockPath(ctx, p.cache.lockFile(meta.etag))
	if err != nil {
		return fmt.Errorf("lock the download: %w", err)
	}
	defer unlock()
	if present(dst) { // another process finished it while we waited
		return nil
	}
	inc := dst + ".incomplete"
	part, err := openPartial(inc, meta)
	if err != nil {
		return err
	}
	defer func() {
		if part.f != nil {
			err = errors.Join(err, part.f.Close())
		}
	}()
	progress := func(done int64) { p.opts.Progress(file, done, meta.size) }
	progress(part.n)
	err = retry(ctx, p.opts.Tries, p.opts.RetryDelay, p.onRetry("download "+file), func() error {
		return p.hub.fetchOnce(ctx, part, p.opts.StallTimeout, progress)
	})
	if err != nil {
		return err
	}
	if err := part.verify(); err != nil {
		// Resuming a file whose bytes are wrong would only repeat the
		// failure: drop it so the next pull starts clean.
		_ = part.f.Close()
		part.f = nil
		_ = os.Remove(inc)
		return fmt.Errorf("%w (the download was discarded; if a new pull fails the same way, the hub's copy is damaged)", err)
	}
	if err := part.f.Sync(); err != nil {
		return err
	}
	err = part.f.Close()
	part.f = nil
	if err != nil {
		return err
	}
	return os.Rename(inc, dst)
}

// cachedSnapshot answers a pull in offline mode from the cache alone.
func cachedSnapshot(c repoCache, r ref, include []string, s settings) (Snapshot, error) {
	commit, err := c.commitFor(r.revision)
	if err != nil {
		return Snapshot{}, notCached(r, s, nil, true)
	}
	dir := c.snapshot(commit)
	listing, err := snapshotFiles(dir)
	if err != nil || len(listing) == 0 {
		return Snapshot{}, notCached(r, s, nil, true)
	}
	files, missing := r.wanted(listing, include)
	if r.known == nil {
		for _, g := range include {
			if !slices.ContainsFunc(files, func(f string) bool { return matchGlob(g, f) }) {
				missing = append(missing, g)
			}
		}
	}
	if len(missing) > 0 {
		return Snapshot{}, notCached(r, s, missing, true)
	}
	return Snapshot{Name: knownName(r), Repo: r.repo, Revision: r.revision, Commit: commit, Dir: dir, Files: files}, nil
}

// NotCachedError says a model is absent or incomplete in the cache, and how to fetch it.
type NotCachedError struct {
	Model    string   // as the user named it
	Repo     string   // the repository it maps to
	CacheDir string   // the cache searched
	Missing  []string // files a partial snapshot lacks; empty when nothing is there
	Offline  bool     // HF_HUB_OFFLINE forbade fetching it
	Command  string   // the command that fetches it
}

func (e *NotCachedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %q ", e.Model)
	if len(e.Missing) == 0 {
		fmt.Fprintf(&b, "is not in the cache (%s)", displayPath(e.CacheDir))
	} else {
		fmt.Fprintf(&b, "is incomplete in the cache (%s): %s lacks %s",
			displayPath(e.CacheDir), e.Repo, strings.Join(e.Missing, ", "))
	}
	if e.Offline {
		fmt.Fprintf(&b, "; offline mode (HF_HUB_OFFLINE) is on: unset it and run: %s", e.Command)
	} else {
		fmt.Fprintf(&b, "; run: %s", e.Command)
	}
	return b.String()
}

// Unwrap lets errors.Is(err, ErrOffline) find offline refusals.
func (e *NotCachedError) Unwrap() error {
	if e.Offline {
		return ErrOffline
	}
	return nil
}

func notCached(r ref, s settings, missing []string, offline bool) error {
	model := r.arg
	if at := strings.IndexByte(model, '@'); at >= 0 {
		model = model[:at]
	}
	return &NotCachedError{
		Model: model, Repo: r.repo, CacheDir: s.cacheDir, Missing: missing,
		Offline: offline, Command: r.pullCommand(),
	}
}
