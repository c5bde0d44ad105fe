package serve

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
)

// closedWithin reads from c until the server closes it, and fails the test when that takes
// longer than limit (the server's timeout plus a generous margin for a loaded machine). It
// returns what the server sent before closing.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server held the connection for %v", limit)
	}
	return string(b)
}

// TestServerTimeouts: a client that sends its headers or body slowly, or keeps a connection
// idle, is cut off after the server's timeouts; none of them can hold a connection forever.
func TestServerTimeouts(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	short := Timeouts{Header: 200 * time.Millisecond, Body: 200 * time.Millisecond, Write: 200 * time.Millisecond, Idle: 200 * time.Millisecond}
	_, tcp, _ := startServer(t, Config{Timeouts: short}, fk)
	addr := strings.TrimPrefix(tcp.base, "http://")
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	const limit = 20 * time.Second

	t.Run("slow headers", func(t *testing.T) {
		c := dial(t)
		io.WriteString(c, "POST /v1/score HTTP/1.1\r\nHost: "+addr+"\r\n")
		closedWithin(t, c, limit)
	})
	t.Run("slow body", func(t *testing.T) {
		c := dial(t)
		io.WriteString(c, "POST /v1/score HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
		got := closedWithin(t, c, limit)
		if !strings.Contains(got, "400") || !strings.Contains(got, "timeout") {
			t.Errorf("a body that stops coming: %q, want a 400 saying it timed out", got)
		}
		if fk.loads.Load() != 0 {
			t.Error("a request whose body never came loaded a model")
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial(t)
		io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("health: %s", resp.Status)
		}
		c.SetReadDeadline(time.Now().Add(limit))
		if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("an idle kept-alive connection: %v, want the server to close it", err)
		}
	})
}

// TestClientTellsAStalledServerFromALongComputation: a server that accepts and answers
// nothing (what a stopped process does: the kernel still accepts its connections) fails a
// request once no heartbeat comes for the stall time, with one line saying so; a server
// computing longer than that, but answering its heartbeat, is waited for.
func TestClientTellsAStalledServerFromALongComputation(t *testing.T) {
	dir, err := os.MkdirTemp("", "diffsim-stall")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // accepted, never answered
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	const stall = 300 * time.Millisecond
	c := api.NewClient(sock)
	c.SetStall(stall)
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Score(context.Background(), api.ScoreRequest{ModelRef: model("m"), ImageA: "/a.png", ImageB: "/b.png"})
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, api.ErrStalled) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "answered no heartbeat") {
			t.Errorf("a request to a stalled server: %v, want one line with ErrStalled", err)
		}
		if time.Since(start) < stall {
			t.Errorf("gave up after %v, before the stall time %v", time.Since(start), stall)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the client still waits for a stalled server after 30 s")
	}

	// A computation ten stall times long, on a server that answers its heartbeat.
	fk := &fakes{byName: map[string]*fakeModel{}}
	hold := make(chan struct{})
	f := fk.prepare("m", hold)
	unix, _, _ := startServer(t, Config{}, fk)
	const stall2 = 100 * time.Millisecond
	unix.SetStall(stall2)
	imgs := images(t, 2)
	go func() {
		_, err := unix.Score(context.Background(), api.ScoreRequest{ModelRef: model("m"), ImageA: imgs[0], ImageB: imgs[1]})
		errc <- err
	}()
	<-f.started
	time.Sleep(10 * stall2)
	close(hold)
	if err := <-errc; err != nil {
		t.Errorf("a long computation on a live server: %v", err)
	}
}
