//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import "context"

// lockPath is a no-op where flock is unavailable: concurrent pulls of one
// file may then interfere, and the hash check catches the result.
func lockPath(ctx context.Context, path string) (unlock func(), err error) {
	return func() {}, ctx.Err()
}
