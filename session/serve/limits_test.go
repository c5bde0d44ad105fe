package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session"
)

// TestImageFilesAreCheckedBeforeAnythingWaits: a FIFO, a device or a file far over the size
// cap, named as an image in any request, is a 400 at once: no request waits on a FIFO that has
// no writer, or reads /dev/zero until memory runs out.
func TestImageFilesAreCheckedBeforeAnythingWaits(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	unix, _, _ := startServer(t, Config{}, fk)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.png")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.png")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 2<<30); err != nil { // sparse
		t.Fatal(err)
	}
	ok := images(t, 1)[0]
	for _, bad := range []struct{ path, says string }{
		{fifo, "a named pipe (FIFO), not an image file"},
		{"/dev/zero", "a character device, not an image file"},
		{big, "2.0 GiB, over the 256 MiB limit on image files"},
		{dir, "a folder, not an image file"},
	} {
		for name, call := range map[string]func(ctx context.Context) error{
			"score": func(ctx context.Context) error {
				_, err := unix.Score(ctx, api.ScoreRequest{ModelRef: model("m"), ImageA: bad.path, ImageB: ok})
				return err
			},
			"sweep": func(ctx context.Context) error {
				_, err := unix.Sweep(ctx, api.SweepRequest{ModelRef: model("m"), ImageA: ok, ImageB: bad.path})
				return err
			},
			"rank query": func(ctx context.Context) error {
				_, err := unix.Rank(ctx, api.RankRequest{ModelRef: model("m"), Query: bad.path, Images: []string{ok}})
				return err
			},
			"result": func(ctx context.Context) error {
				_, err := unix.Result(ctx, api.ResultRequest{ModelRef: model("m"), A: api.ImageRef{Path: bad.path, Hash: "x"}, B: api.ImageRef{Path: ok}})
				return err
			},
			"prefetch": func(ctx context.Context) error {
				return unix.Prefetch(ctx, api.PrefetchRequest{ModelRef: model("m"), Images: []api.ImageRef{{Path: ok}, {Path: bad.path}}})
			},
		} {
			t.Run(name+" "+filepath.Base(bad.path), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				err := call(ctx)
				var ae *api.Error
				if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, bad.says) {
					t.Errorf("%v, want a 400 saying %q", err, bad.says)
				}
			})
		}
	}
	if n := fk.loads.Load(); n != 0 {
		t.Errorf("%d models loaded for requests whose images were refused", n)
	}
}

// TestQueueAnswers503WhenFull: requests beyond those computing wait in a queue; past its
// bound the server answers 503 with Retry-After at once, and the queued ones all complete.
func TestQueueAnswers503WhenFull(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	hold := make(chan struct{})
	fk.prepare("m", hold)
	unix, tcp, srv := startServer(t, Config{MaxActive: 1, MaxQueue: 2}, fk)
	imgs := images(t, 2)
	req := api.ScoreRequest{ModelRef: model("m"), ImageA: imgs[0], ImageB: imgs[1]}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 3 { // one computes, two wait
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := unix.Score(context.Background(), req); err != nil {
				t.Errorf("a queued request: %v", err)
				failed.Add(1)
			}
		}()
	}
	waitFor(t, "one request computing and two queued", func() bool {
		srv.ms.mu.Lock()
		defer srv.ms.mu.Unlock()
		return srv.ms.active == 1 && len(srv.ms.line) == 2
	})
	status, h, body := send(t, tcp, "POST", "/v1/score", "", map[string]string{"Content-Type": "application/json"}, mustJSON(t, req))
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("a fourth request: %d %v, want 503 with Retry-After", status, h)
	}
	oneLineError(t, body, "busy")
	close(hold)
	wg.Wait()
	ms, err := unix.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ms.Active != 0 || ms.Queued != 0 || ms.WorkBytes != 0 {
		t.Errorf("after the requests: %+v, want nothing active, queued or held", ms)
	}
}

// TestMemoryBoundCountsImagesAndCaches: a model's feature cache counts against the bound, so
// a growing cache pushes idle models out; a request whose images do not fit beside what is
// held waits for room (rather than failing) and gets it when the request before it ends.
func TestMemoryBoundCountsImagesAndCaches(t *testing.T) {
	imgs := images(t, 4)
	need1, err := New(Config{}).checkImages(context.Background(), imgs[0], imgs[1])
	if err != nil {
		t.Fatal(err)
	}
	need2, _ := New(Config{}).checkImages(context.Background(), imgs[2], imgs[3])
	const size, cache = 500, 450
	bound := size + cache + need1 + need2 - 1 // b, its cache and one request's images fit; not two
	fk := &fakes{byName: map[string]*fakeModel{}, bytes: size}
	unix, _, srv := startServer(t, Config{MaxBytes: bound}, fk)
	srv.ms.predict = func(api.Spec) int64 { return size }
	score := func(m string, a, b string) error {
		_, err := unix.Score(context.Background(), api.ScoreRequest{ModelRef: model(m), ImageA: a, ImageB: b})
		return err
	}
	if err := score("a", imgs[0], imgs[1]); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	b := fk.prepare("b", hold)
	errc := make(chan error, 2)
	go func() { errc <- score("b", imgs[0], imgs[1]) }()
	<-b.started
	if fk.get("a").closed.Load() {
		t.Fatal("a was unloaded although a and b fit together")
	}
	b.setCache(cache)
	close(hold)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle model to go for b's cache", func() bool { return fk.get("a").closed.Load() })
	ms, _ := unix.Models(context.Background())
	if ms.Bytes > ms.MaxBytes || len(ms.Models) != 1 || ms.Models[0].CacheBytes != cache || ms.Models[0].Bytes != size+cache {
		t.Errorf("models %+v, want b alone holding %d (its cache counted)", ms, size+cache)
	}

	hold2 := make(chan struct{})
	b.mu.Lock()
	b.release = hold2
	b.mu.Unlock()
	go func() { errc <- score("b", imgs[0], imgs[1]) }()
	<-b.started
	go func() { errc <- score("b", imgs[2], imgs[3]) }()
	waitFor(t, "the second request to wait for room", func() bool {
		srv.ms.mu.Lock()
		defer srv.ms.mu.Unlock()
		return len(srv.ms.line) == 1 && srv.ms.active == 1
	})
	close(hold2)
	for range 2 {
		if err := <-errc; err != nil {
			t.Errorf("after room came back: %v", err)
		}
	}
}

// TestFootprintIncludesTheFirstForward: a model that does not know its own size is measured
// across its load and its first forward (where ONNX Runtime allocates most of it), not across
// its load alone.
func TestFootprintIncludesTheFirstForward(t *testing.T) {
	var rss atomic.Int64
	rss.Store(1000)
	open := func(context.Context, session.Options) (api.Scorer, error) {
		rss.Add(100) // the load: weights mapped, graph built
		return &growing{Scorer: newFake("m", 0), rss: &rss, grow: 900}, nil
	}
	srv := New(Config{Open: open, MaxBytes: 10000})
	srv.ms.rss = rss.Load
	unix := startWith(t, srv)
	imgs := images(t, 2)
	if _, err := unix.Score(context.Background(), api.ScoreRequest{ModelRef: model("m"), ImageA: imgs[0], ImageB: imgs[1]}); err != nil {
		t.Fatal(err)
	}
	ms, err := unix.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms.Models) != 1 || ms.Models[0].Bytes != 1000 || !ms.Models[0].Measured {
		t.Fatalf("models %+v, want one of 1000 bytes (100 at load + 900 at its first forward), measured", ms.Models)
	}
	// Another seed of the same weights is predicted from that measure before it loads.
	other := modelWith("m", func(s *api.Spec) { s.Seed = 9 }).Spec.Normalize()
	if got := srv.ms.predicted(modelKey{spec: other}); got != 1000 {
		t.Errorf("prediction for another seed: %d, want 1000", got)
	}
}

// growing is a fake model that does not know its size and whose first forward grows the
// process, as ONNX Runtime's arena does.
type growing struct {
	api.Scorer
	rss  *atomic.Int64
	grow int64
	once sync.Once
}

func (g *growing) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	g.once.Do(func() { g.rss.Add(g.grow) })
	return g.Scorer.Prefetch(ctx, t, imgs...)
}

// TestQueueIsFirstComeFirstServed: requests waiting for a turn are let in in the order they
// came, so none waits behind requests that came after it (the tail latency of a busy server).
func TestQueueIsFirstComeFirstServed(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	hold := make(chan struct{})
	f := fk.prepare("m", hold)
	unix, _, srv := startServer(t, Config{MaxActive: 1}, fk)
	imgs := images(t, 10)
	errc := make(chan error, 5)
	score := func(i int) {
		_, err := unix.Score(context.Background(), api.ScoreRequest{ModelRef: model("m"), ImageA: imgs[2*i], ImageB: imgs[2*i+1]})
		errc <- err
	}
	go score(0)
	<-f.started // the one request computing, held
	for i := 1; i < 5; i++ {
		go score(i)
		waitFor(t, "the request to queue", func() bool {
			srv.ms.mu.Lock()
			defer srv.ms.mu.Unlock()
			return len(srv.ms.line) == i
		})
	}
	close(hold)
	for range 5 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	for _, fw := range f.forwardsSeen() {
		order = append(order, fw[0])
	}
	if want := []string{"img00.png", "img02.png", "img04.png", "img06.png", "img08.png"}; strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("forwards ran in the order %v, want the order the requests came %v", order, want)
	}
}

// TestSharedSessionImagesCount: the images an SSH session decodes count against the memory
// bound while the session may show them (the last four it loaded: its pair and the one
// before), and leave the bound when the session closes.
func TestSharedSessionImagesCount(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	_, _, srv := startServer(t, Config{}, fk)
	sh, err := srv.Shared(t.Context(), model("m").Spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	work := func() int64 {
		srv.ms.mu.Lock()
		defer srv.ms.mu.Unlock()
		return srv.ms.work
	}
	dir := t.TempDir()
	var sizes []int64
	for i := 1; i <= 6; i++ {
		p := filepath.Join(dir, fmt.Sprintf("g%d.png", i))
		m := image.NewGray(image.Rect(0, 0, 10*i, 10*i)) // decoded: one byte a pixel
		var buf bytes.Buffer
		if err := png.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := sh.Load(p); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, int64(100*i*i))
	}
	var want int64
	for _, n := range sizes[len(sizes)-maxCachedImages:] {
		want += n
	}
	if got := work(); got != want {
		t.Errorf("%d bytes counted against the bound after six images, want %d (the last four decoded)", got, want)
	}
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
	if got := work(); got != 0 {
		t.Errorf("%d bytes still counted after the session closed", got)
	}
}
