package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
)

func TestConcurrentClientsShareOneForward(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	hold := make(chan struct{})
	f := fk.prepare("m", hold)
	unix, tcp, srv := startServer(t, Config{}, fk)
	imgs := images(t, 8)
	ctx := context.Background()

	// The first request's forward holds the model; the next three (two over the socket, one
	// over HTTP; one at another t) queue meanwhile.
	var wg sync.WaitGroup
	results := make([]api.Scored, 4)
	errs := make([]error, 4)
	send := func(i int, c *testClient, a, b string, tt int) {
		defer wg.Done()
		results[i], errs[i] = c.Score(ctx, api.ScoreRequest{ModelRef: model("m"), Selection: api.Selection{T: intp(tt)}, ImageA: a, ImageB: b})
	}
	wg.Add(1)
	go send(0, unix, imgs[0], imgs[1], 100)
	<-f.started
	wg.Add(3)
	go send(1, unix, imgs[2], imgs[3], 100)
	go send(2, tcp, imgs[4], imgs[5], 100)
	go send(3, unix, imgs[6], imgs[7], 500)
	waitFor(t, "three queued requests", func() bool {
		srv.ms.mu.Lock()
		l := srv.ms.byKey[modelKey{spec: model("m").Spec.Normalize()}]
		srv.ms.mu.Unlock()
		l.batch.mu.Lock()
		defer l.batch.mu.Unlock()
		n := 0
		for _, g := range l.batch.pending {
			n += g.waiters
		}
		return n == 3
	})
	close(hold)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	got := f.forwardsSeen()
	want := [][]string{{"img00.png", "img01.png"}, {"img02.png", "img03.png", "img04.png", "img05.png"}, {"img06.png", "img07.png"}}
	if len(got) != len(want) {
		t.Fatalf("forwards %v, want %v (one per timestep after the first)", got, want)
	}
	// The three queued requests race to the queue, so the t=500 group may run before the
	// t=100 one: each forward's images are compared as a set, and the queued forwards in order
	// of their first image.
	sorted := make([][]string, len(got))
	for i := range got {
		sorted[i] = slices.Clone(got[i])
		slices.Sort(sorted[i])
	}
	slices.SortFunc(sorted[1:], func(x, y []string) int { return strings.Compare(x[0], y[0]) })
	for i := range want {
		if !slices.Equal(sorted[i], want[i]) {
			t.Errorf("forward %d ran %v, want %v (all forwards: %v)", i, sorted[i], want[i], got)
		}
	}
	for i, r := range results {
		if r.T == nil || *r.T != []int{100, 100, 100, 500}[i] || r.Score.IsNaN() {
			t.Errorf("request %d answered t=%v score=%v", i, r.T, r.Score)
		}
	}
}

func TestClientGoneCancelsItsForward(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	f := fk.prepare("m", make(chan struct{})) // never released
	unix, _, _ := startServer(t, Config{}, fk)
	imgs := images(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := unix.Score(ctx, api.ScoreRequest{ModelRef: model("m"), ImageA: imgs[0], ImageB: imgs[1]})
		errc <- err
	}()
	<-f.started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client saw %v, want context.Canceled", err)
	}
	select {
	case <-f.gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the forward kept running after its only client went away")
	}
}

func TestKeepAlive(t *testing.T) {
	cases := []struct {
		name      string
		keepAlive string
		loadedAt  time.Duration // when to look
		loaded    bool
	}{
		{"zero unloads at once", "0", 0, false},
		{"short keep-alive unloads when idle", "50ms", 400 * time.Millisecond, false},
		{"still inside the keep-alive", "1m", 100 * time.Millisecond, true},
		{"negative keeps forever", "-1", 300 * time.Millisecond, true},
		{"seconds as a number", "60", 100 * time.Millisecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fk := &fakes{byName: map[string]*fakeModel{}}
			unix, _, _ := startServer(t, Config{}, fk)
			imgs := images(t, 2)
			if _, err := unix.Score(context.Background(), api.ScoreRequest{ModelRef: keep(model("m"), tc.keepAlive), ImageA: imgs[0], ImageB: imgs[1]}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(tc.loadedAt)
			if !tc.loaded {
				waitFor(t, "the model to unload", func() bool { return fk.get("m").closed.Load() })
			}
			ms, err := unix.Models(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ms.Models) == 1; got != tc.loaded {
				t.Errorf("loaded after %v: %v (%+v), want %v", tc.loadedAt, got, ms.Models, tc.loaded)
			}
			if fk.get("m").closed.Load() == tc.loaded {
				t.Errorf("model closed = %v, want %v", fk.get("m").closed.Load(), !tc.loaded)
			}
		})
	}
}

func TestWarmModelIsReused(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	unix, tcp, _ := startServer(t, Config{}, fk)
	imgs := images(t, 2)
	for _, c := range []*testClient{unix, tcp, unix} {
		if _, err := c.Score(context.Background(), api.ScoreRequest{ModelRef: model("m"), ImageA: imgs[0], ImageB: imgs[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if n := fk.loads.Load(); n != 1 {
		t.Errorf("model loaded %d times for three requests, want 1", n)
	}
	// Another seed is another session.
	if _, err := unix.Score(context.Background(), api.ScoreRequest{ModelRef: modelWith("m", func(s *api.Spec) { s.Seed = 7 }), ImageA: imgs[0], ImageB: imgs[1]}); err != nil {
		t.Fatal(err)
	}
	if n := fk.loads.Load(); n != 2 {
		t.Errorf("loads after a request with another seed: %d, want 2", n)
	}
}

func TestMemoryBound(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}, bytes: 600}
	unix, _, srv := startServer(t, Config{MaxBytes: 1000}, fk)
	srv.ms.predict = func(api.Spec) int64 { return 600 } // as the sizes on disk would say
	imgs := images(t, 2)
	score := func(ctx context.Context, name string) error {
		_, err := unix.Score(ctx, api.ScoreRequest{ModelRef: model(name), ImageA: imgs[0], ImageB: imgs[1]})
		return err
	}
	if err := score(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	// b does not fit beside the idle a: a goes.
	hold := make(chan struct{})
	b := fk.prepare("b", hold)
	errc := make(chan error, 1)
	go func() { errc <- score(context.Background(), "b") }()
	<-b.started
	if !fk.get("a").closed.Load() {
		t.Error("idle model a was not unloaded to make room for b")
	}
	// c does not fit beside b, which is in use: refused with 503, b untouched.
	err := score(context.Background(), "c")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !strings.Contains(ae.Message, "memory bound") {
		t.Errorf("loading c beside a busy b: %v, want a 503 naming the memory bound", err)
	}
	if b.closed.Load() {
		t.Error("model b was unloaded while in use")
	}
	close(hold)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := score(context.Background(), "c"); err != nil {
		t.Errorf("c after b finished: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	_, tcp, _ := startServer(t, Config{}, fk)
	imgs := images(t, 2)
	cases := []struct {
		name, method, path, body string
		status                   int
		says                     string
	}{
		{"wrong method", "GET", "/v1/score", "", 405, "use POST"},
		{"unknown endpoint", "GET", "/v2/score", "", 404, "no such endpoint"},
		{"not JSON", "POST", "/v1/score", "{", 400, "bad request body"},
		{"unknown field", "POST", "/v1/score", `{"image_a":"` + imgs[0] + `","image_b":"` + imgs[1] + `","layr":"1"}`, 400, "layr"},
		{"two values", "POST", "/v1/score", `{} {}`, 400, "more than one"},
		{"missing image", "POST", "/v1/score", `{"image_a":"` + imgs[0] + `"}`, 400, "image_b is required"},
		{"relative path", "POST", "/v1/score", `{"image_a":"a.png","image_b":"` + imgs[1] + `"}`, 400, "absolute"},
		{"file not there", "POST", "/v1/score", `{"image_a":"/nonexistent/a.png","image_b":"` + imgs[1] + `"}`, 400, "/nonexistent/a.png"},
		{"bad metric", "POST", "/v1/score", `{"image_a":"` + imgs[0] + `","image_b":"` + imgs[1] + `","metric":"l2"}`, 400, "want aas, cos or mse"},
		{"bad layer", "POST", "/v1/score", `{"image_a":"` + imgs[0] + `","image_b":"` + imgs[1] + `","layer":"Down9"}`, 400, "no layer"},
		{"t out of range", "POST", "/v1/score", `{"image_a":"` + imgs[0] + `","image_b":"` + imgs[1] + `","t":1000}`, 400, "outside 0..999"},
		{"t and step", "POST", "/v1/score", `{"image_a":"` + imgs[0] + `","image_b":"` + imgs[1] + `","t":5,"step":900}`, 400, "not both"},
		{"bad keep-alive", "POST", "/v1/score", `{"image_a":"` + imgs[0] + `","image_b":"` + imgs[1] + `","keep_alive":"soon"}`, 400, "keep_alive"},
		{"sweep t out of range", "POST", "/v1/sweep", `{"image_a":"` + imgs[0] + `","image_b":"` + imgs[1] + `","timesteps":[5,-1]}`, 400, "outside"},
		{"rank negative top", "POST", "/v1/rank", `{"query":"` + imgs[0] + `","top":-2}`, 400, "top -2"},
		{"show by GET", "GET", "/v1/show", "", 405, "use POST"},
		{"show bad layer", "POST", "/v1/show", `{"layer":"Down9"}`, 400, "no layer"},
		{"show t out of range", "POST", "/v1/show", `{"t":1000}`, 400, "outside 0..999"},
		{"show relative model", "POST", "/v1/show", `{"model":"models/x.onnx"}`, 400, "relative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tcp.base+tc.path, strings.NewReader(tc.body))
			if tc.method == "POST" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not {\"error\": ...}", body)
			}
			if strings.Count(string(body), "\n") != 1 || strings.Contains(e.Error, "\n") {
				t.Errorf("error is not one line: %q", body)
			}
			if !strings.Contains(e.Error, tc.says) {
				t.Errorf("error %q does not say %q", e.Error, tc.says)
			}
		})
	}
}

func TestSocketTakeover(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	unix, _, _ := startServer(t, Config{}, fk)
	if _, err := ListenUnix(unix.socket); err == nil || !strings.Contains(err.Error(), "already listens") {
		t.Errorf("second listener on a live socket: %v, want an error saying a server listens", err)
	}

	// A socket file left by a server that died is replaced.
	stale := filepath.Join(filepath.Dir(unix.socket), "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("setting up a stale socket: %v", err)
	}
	ln2, err := ListenUnix(stale)
	if err != nil {
		t.Fatalf("listening over a stale socket: %v", err)
	}
	ln2.Close()
	if _, err := api.Dial(context.Background(), stale, ""); !errors.Is(err, api.ErrNoServer) {
		t.Errorf("dialling a closed socket: %v, want api.ErrNoServer", err)
	}
}
