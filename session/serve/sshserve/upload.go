package sshserve

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"charm.land/ssh"
	"charm.land/wish/v2/scp"
	"github.com/pkg/sftp"

	"github.com/diffsim/diffsim/features/imagefile"
)

// Uploads: scp (both its SFTP and its legacy protocol) and sftp write into the user's own
// folder, under the quota. A file arrives under a temporary name in a folder the picker does
// not list, is decoded as an image when complete, and only then takes its name: nothing half
// written, and nothing that is not an image, is ever listed or opened.

// quotas tracks the bytes each user's uploads in flight have claimed, so two concurrent
// uploads cannot both fit under a quota that only one fits under.
type quotas struct {
	mu      sync.Mutex
	pending map[string]int64 // by user folder
}

// reserve claims n more bytes of dir's quota, or says why it cannot.
func (l *library) reserve(dir string, n int64) error {
	l.q.mu.Lock()
	defer l.q.mu.Unlock()
	used, err := usage(dir)
	if err != nil {
		return err
	}
	if used+l.q.pending[dir]+n > l.quota {
		return fmt.Errorf("upload quota reached: %s of %s used; remove some of your files (sftp, then rm NAME)", mb(used+l.q.pending[dir]), mb(l.quota))
	}
	l.q.pending[dir] += n
	return nil
}

func (l *library) unreserve(dir string, n int64) {
	l.q.mu.Lock()
	defer l.q.mu.Unlock()
	l.q.pending[dir] -= n
	if l.q.pending[dir] <= 0 {
		delete(l.q.pending, dir)
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// ownPath is where a name the client gave for an upload goes inside the user's folder.
func (u *userFiles) ownPath(name string) (string, string, error) {
	if u.own == "" {
		return "", "", errors.New("uploads are off on this server")
	}
	rel := strings.TrimLeft(filepath.ToSlash(name), "/") // SFTP paths start at the folder's root
	if rel == "" {
		rel = "."
	}
	c, err := cleanName(rel)
	if err != nil {
		return "", "", err
	}
	if c == "." {
		return c, u.own, nil
	}
	full := filepath.Join(u.own, filepath.FromSlash(c))
	// The folder it goes into must be inside the user's folder once links are resolved (the
	// user cannot make links, but the server's owner could have).
	parent, err := filepath.EvalSymlinks(filepath.Dir(full))
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", c, err)
	}
	if parent != u.own && !strings.HasPrefix(parent, u.own+string(filepath.Separator)) {
		return "", "", fmt.Errorf("%s: %w", c, errOutside)
	}
	return c, filepath.Join(parent, filepath.Base(full)), nil
}

// incoming is one upload in flight.
type incoming struct {
	u        *userFiles
	name     string // as the client named it, cleaned
	dst      string // where it goes when it is an image
	tmp      *os.File
	mu       sync.Mutex
	reserved int64 // bytes claimed from the quota
	n        int64 // bytes written so far by Write
	done     bool
}

// receive starts an upload called name.
func (u *userFiles) receive(name string) (*incoming, error) {
	c, dst, err := u.ownPath(name)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(imageExts, strings.ToLower(filepath.Ext(c))) {
		return nil, fmt.Errorf("%s: give uploads an image name (%s)", c, strings.Join(imageExts, ", "))
	}
	if st, err := os.Lstat(dst); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is a folder or a link; choose another name", c)
	}
	tmpDir := filepath.Join(u.lib.uploads, ".incoming")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmpDir, "upload-*")
	if err != nil {
		return nil, err
	}
	return &incoming{u: u, name: c, dst: dst, tmp: f}, nil
}

// WriteAt writes p at off (SFTP), claiming quota as the file grows.
func (in *incoming) WriteAt(p []byte, off int64) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done {
		return 0, os.ErrClosed
	}
	if end := off + int64(len(p)); end > in.reserved {
		if end > maxImageBytes {
			return 0, fmt.Errorf("%s: images up to %d MB are taken", in.name, maxImageBytes>>20)
		}
		if err := in.u.lib.reserve(in.u.own, end-in.reserved); err != nil {
			return 0, err
		}
		in.reserved = end
	}
	return in.tmp.WriteAt(p, off)
}

// Write appends p (legacy scp).
func (in *incoming) Write(p []byte) (int, error) {
	n, err := in.WriteAt(p, in.n)
	in.n += int64(n)
	return n, err
}

// Close ends the upload: the file is checked as an image and, if it is one, takes its name.
func (in *incoming) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done {
		return nil
	}
	in.done = true
	defer in.u.lib.unreserve(in.u.own, in.reserved)
	tmp := in.tmp.Name()
	err := in.check()
	if err == nil {
		err = os.Rename(tmp, in.dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// check decodes the file as an image.
func (in *incoming) check() error {
	if err := in.tmp.Close(); err != nil {
		return err
	}
	data, err := os.ReadFile(in.tmp.Name())
	if err != nil {
		return err
	}
	if _, err := imagefile.Decode(data, imageLimits()); err != nil {
		return fmt.Errorf("%s was not kept: %w", in.name, err)
	}
	return nil
}

// TransferError is SFTP's word that the connection broke mid-upload: nothing is kept.
func (in *incoming) TransferError(error) { in.abort() }

func (in *incoming) abort() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done {
		return
	}
	in.done = true
	in.tmp.Close()
	os.Remove(in.tmp.Name())
	in.u.lib.unreserve(in.u.own, in.reserved)
}

// sftpFiles answers SFTP requests inside one user's folder.
type sftpFiles struct{ u *userFiles }

func (h sftpFiles) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	_, p, err := h.u.ownPath(r.Filepath)
	if err != nil {
		return nil, err
	}
	f, err := within(h.u.own, mustRel(h.u.own, p))
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (h sftpFiles) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return h.u.receive(r.Filepath)
}

func (h sftpFiles) Filecmd(r *sftp.Request) error {
	switch r.Method {
	case "Setstat":
		return nil // modes and times of uploads are the server's; clients set them after a put
	case "Symlink", "Link":
		return errors.New("links are not allowed among uploads")
	}
	_, p, err := h.u.ownPath(r.Filepath)
	if err != nil {
		return err
	}
	if p == h.u.own {
		return errors.New("your uploads folder itself cannot be changed")
	}
	switch r.Method {
	case "Remove":
		if st, err := os.Lstat(p); err == nil && st.IsDir() {
			return fmt.Errorf("%s is a folder: rmdir it", r.Filepath)
		}
		return os.Remove(p)
	case "Rmdir":
		return os.Remove(p)
	case "Mkdir":
		return os.Mkdir(p, 0o700)
	case "Rename":
		c, q, err := h.u.ownPath(r.Target)
		if err != nil {
			return err
		}
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() && !slices.Contains(imageExts, strings.ToLower(filepath.Ext(c))) {
			return fmt.Errorf("%s: give uploads an image name (%s)", c, strings.Join(imageExts, ", "))
		}
		return os.Rename(p, q)
	}
	return fmt.Errorf("%s is not supported here", r.Method)
}

func (h sftpFiles) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	_, p, err := h.u.ownPath(r.Filepath)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var infos listerAt
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				infos = append(infos, info)
			}
		}
		return infos, nil
	case "Stat", "Lstat":
		info, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{info}, nil
	}
	return nil, fmt.Errorf("%s is not supported here", r.Method)
}

// listerAt is a listing SFTP reads in pages.
type listerAt []fs.FileInfo

func (l listerAt) ListAt(out []fs.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// mustRel is p relative to dir, in slash form (p is known to be inside dir).
func mustRel(dir, p string) string {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(rel)
}

// serveSFTP runs the SFTP subsystem for one session's user until the client closes it.
func serveSFTP(sess ssh.Session, u *userFiles) error {
	srv := sftp.NewRequestServer(keepOpen{sess}, sftp.Handlers{FileGet: sftpFiles{u}, FilePut: sftpFiles{u}, FileCmd: sftpFiles{u}, FileList: sftpFiles{u}})
	err := srv.Serve()
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return errors.Join(err, srv.Close())
}

// keepOpen is the session's channel with a Close that leaves it open: the library sends the
// exit status, and closes the channel, after the handler returns; closed earlier, clients
// report a failed transfer.
type keepOpen struct{ io.ReadWriter }

func (keepOpen) Close() error { return nil }

// scpFiles takes legacy-protocol scp uploads (scp -O) for one user.
type scpFiles struct{ u *userFiles }

func (h scpFiles) Mkdir(_ ssh.Session, e *scp.DirEntry) error {
	_, p, err := h.u.ownPath(e.Filepath)
	if err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

func (h scpFiles) Write(_ ssh.Session, e *scp.FileEntry) (int64, error) {
	// The library joins the target and the file's name, as for a folder; scp's target may
	// instead be the file's new name (scp -O a.png HOST:b.png).
	name := e.Filepath
	if dir := filepath.Dir(name); dir != "." && dir != "/" {
		if _, p, err := h.u.ownPath(dir); err != nil || !isDir(p) {
			name = dir
		}
	}
	in, err := h.u.receive(name)
	if err != nil {
		return 0, lineError{err}
	}
	n, err := io.Copy(in, e.Reader)
	if err != nil {
		in.abort()
		return n, lineError{err}
	}
	if err := in.Close(); err != nil {
		return n, lineError{err}
	}
	return n, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// lineError ends an error with a newline: the library writes it to the client as it is, and
// scp prints its own words right after.
type lineError struct{ error }

func (e lineError) Error() string { return e.error.Error() + "\n" }
func (e lineError) Unwrap() error { return e.error }
