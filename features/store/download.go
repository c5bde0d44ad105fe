package store

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

var errStalled = errors.New("no data received for too long")

// partial is a blobs/{etag}.incomplete file being filled, with the hash of
// what it holds so far, so a resumed download is verified end to end without
// reading the file twice.
type partial struct {
	f    *os.File
	meta fileMeta
	sum  hash.Hash
	n    int64
}

// openPartial opens (or starts) the .incomplete file and hashes what it
// already holds. A file longer than announced cannot be a prefix: start over.
func openPartial(path string, meta fileMeta) (*partial, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	p := &partial{f: f, meta: meta}
	p.sum = p.newHash()
	fi, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	if fi.Size() > meta.size {
		if err := p.reset(); err != nil {
			return nil, errors.Join(err, f.Close())
		}
		return p, nil
	}
	n, err := io.Copy(p.sum, f)
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	p.n = n
	return p, nil
}

// newHash picks the hash the ETag is: sha256 for LFS files, the git blob
// sha1 for small files kept in git; nil for an ETag of another form, which
// only the size can check.
func (p *partial) newHash() hash.Hash {
	switch len(p.meta.etag) {
	case 64:
		return sha256.New()
	case 40:
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", p.meta.size)
		return h
	}
	return nil
}

func (p *partial) reset() error {
	if err := p.f.Truncate(0); err != nil {
		return err
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	p.n = 0
	p.sum = p.newHash()
	return nil
}

func (p *partial) Write(b []byte) (int, error) {
	if p.n+int64(len(b)) > p.meta.size {
		return 0, fmt.Errorf("the server sent more than the announced %d bytes", p.meta.size)
	}
	n, err := p.f.Write(b)
	if p.sum != nil {
		p.sum.Write(b[:n])
	}
	p.n += int64(n)
	return n, err
}

// verify checks size and hash once every byte is in.
func (p *partial) verify() error {
	if p.n != p.meta.size {
		return fmt.Errorf("size mismatch: got %d bytes, want %d", p.n, p.meta.size)
	}
	if p.sum == nil {
		return nil
	}
	if got := hex.EncodeToString(p.sum.Sum(nil)); got != p.meta.etag {
		return fmt.Errorf("hash mismatch: content hashes to %s, the hub says %s", got, p.meta.etag)
	}
	return nil
}

// fetchOnce asks for the bytes the .incomplete file lacks and appends them.
// Any network failure comes back transient; the bytes received so far stay.
func (h *hub) fetchOnce(ctx context.Context, p *partial, stall time.Duration, progress func(done int64)) error {
	if p.n == p.meta.size {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	hdr := http.Header{"Accept-Encoding": {"identity"}}
	if p.n > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(p.n, 10)+"-")
	}
	resp, err := h.do(ctx, http.MethodGet, p.meta.location, hdr, true)
	if err != nil {
		return stalled(ctx, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != p.n {
			if err := p.reset(); err != nil {
				return err
			}
			return transientErr(fmt.Errorf("the server resumed at the wrong offset (%q); starting over", resp.Header.Get("Content-Range")))
		}
	case http.StatusOK:
		// The server ignored the Range header: the body is the whole file.
		if err := p.reset(); err != nil {
			return err
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if err := p.reset(); err != nil {
			return err
		}
		return transientErr(fmt.Errorf("the server refused to resume; starting over"))
	default:
		return newStatusError(resp)
	}
	if _, err := p.f.Seek(p.n, io.SeekStart); err != nil {
		return err
	}
	progress(p.n)
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(stall)
			if _, err := p.Write(buf[:n]); err != nil {
				return err
			}
			progress(p.n)
		}
		// Buffered bytes can outrun a cancellation; stop at the next chunk.
		if ctx.Err() != nil {
			return stalled(ctx, context.Cause(ctx))
		}
		if rerr == io.EOF {
			if p.n < p.meta.size {
				return transientErr(io.ErrUnexpectedEOF)
			}
			return nil
		}
		if rerr != nil {
			return stalled(ctx, rerr)
		}
	}
}

// stalled reports a read cut by the watchdog as a transient timeout, and a
// cancellation by the caller as itself.
func stalled(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errStalled) {
		return transientErr(errStalled)
	}
	return transientErr(err)
}

// rangeStart reads the first byte offset of "bytes 100-199/200".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

// retry runs fn until it succeeds, fails for good, or has had its tries,
// sleeping base, 2·base, 4·base… (at most 30 s) between transient failures, and telling
// onRetry (when set) before each wait, so that a person sees why nothing arrives.
func retry(ctx context.Context, tries int, base time.Duration, onRetry func(try, tries int, wait time.Duration, err error), fn func() error) error {
	var err error
	for i := 0; i < tries; i++ {
		if i > 0 {
			delay := min(base<<(i-1), 30*time.Second)
			if onRetry != nil {
				onRetry(i+1, tries, delay, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay):
			}
		}
		if err = fn(); err == nil || !isTransient(err) || ctx.Err() != nil {
			return err
		}
	}
	if tries == 1 {
		return err
	}
	return fmt.Errorf("gave up after %d tries: %w", tries, err)
}
