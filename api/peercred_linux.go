package api

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred is the process at the other end of a Unix socket connection, as the kernel saw it
// when the connection was made (SO_PEERCRED): what the peer says about itself cannot forge it.
func peerCred(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if serr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", serr)
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid)}, nil
}
