package api

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrUnsafeSocket means a socket, or its folder, could belong to someone else: the server
// does not listen there and a client does not connect (it computes itself and says why).
// Another user who made $TMPDIR/diffsim-UID first could otherwise answer every command with
// forged scores, or read the requests.
var ErrUnsafeSocket = errors.New("unsafe socket")

// CheckSocketDir checks that dir, the folder of a socket, is a real folder (not a symbolic
// link: lstat), owned by this user and closed to everyone else (no group or other bits), as
// ssh-agent and tmux check theirs.
func CheckSocketDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	uid, owned := ownerOf(fi)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return unsafeSocket("the socket folder %s is a symbolic link; use a folder of your own (--socket or DIFFSIM_SOCKET)", dir)
	case !fi.IsDir():
		return unsafeSocket("%s is not a folder", dir)
	case !owned || uid != os.Getuid():
		return unsafeSocket("the socket folder %s belongs to uid %d, not to you (uid %d): another user may have made it to answer in diffsim's place; remove it, or use a folder of your own (--socket or DIFFSIM_SOCKET)", dir, uid, os.Getuid())
	case fi.Mode().Perm()&0o077 != 0:
		return unsafeSocket("the socket folder %s has mode %#o, open to other users; chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// OwnerOf is the uid that owns the file fi describes; false where the system does not say.
func OwnerOf(fi fs.FileInfo) (int, bool) { return ownerOf(fi) }

func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}

// kindError is an error with its own message that errors.Is matches to kind.
type kindError struct {
	msg  string
	kind error
}

func (e kindError) Error() string { return e.msg }
func (e kindError) Unwrap() error { return e.kind }

// unsafeSocket is an ErrUnsafeSocket that says why.
func unsafeSocket(format string, args ...any) error {
	return kindError{fmt.Sprintf(format, args...), ErrUnsafeSocket}
}
