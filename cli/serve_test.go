package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"

	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/serve"
	"github.com/diffsim/diffsim/session/serve/servetest"
)

// Tests of other commands must not reach a server someone runs on this machine.
func init() {
	os.Setenv("DIFFSIM_SOCKET", filepath.Join(os.TempDir(), "diffsim-tests-no-server", "none.sock"))
}

// startTestServer runs a real server on a private socket and points the commands at it.
func startTestServer(t *testing.T) *serve.Server {
	t.Helper()
	srv := serve.New(serve.Config{Base: session.Options{Families: families.All()}})
	t.Setenv("DIFFSIM_SOCKET", servetest.Start(t, srv))
	return srv
}

func TestServedEqualsLocal(t *testing.T) {
	startTestServer(t)
	a, b := filepath.Join("..", "testdata", "samples", "grass.png"), filepath.Join("..", "testdata", "samples", "gravel.png")
	dir := rankDir(t)
	cases := [][]string{
		{"score", a, b, "--json"},
		{"score", a, b},
		{"score", a, b, "--layer", "coarse", "--t", "500", "--metric", "mse", "--json"},
		{"score", a, b, "--step", "900", "--size", "128", "--seed", "5"},
		{"sweep", a, b, "--t", "100,600", "--size", "128", "--json"},
		{"sweep", a, b, "--step", "900", "--layer", "fine", "--csv"},
		{"sweep", a, b, "--t", "0:999:500"},
		{"rank", a, dir, "-k", "3", "--size", "64", "--t", "50", "--json"},
		{"rank", a, dir, "--size", "64", "--metric", "mse"},
	}
	for _, args := range cases {
		t.Run(strings.Join(append(args[:1:1], args[3:]...), " "), func(t *testing.T) {
			code, local, stderrLocal := runCmd(t, append(args, "--no-server", "--quiet")...)
			if code != 0 {
				t.Fatalf("local: exit %d: %s", code, stderrLocal)
			}
			code, served, stderrServed := runCmd(t, append(args, "--quiet")...)
			if code != 0 {
				t.Fatalf("served: exit %d: %s", code, stderrServed)
			}
			if served != local || stderrServed != stderrLocal {
				t.Errorf("served output differs from local:\n%s%s\nlocal:\n%s%s", served, stderrServed, local, stderrLocal)
			}
		})
	}
}

func TestServedErrorsReadAsLocal(t *testing.T) {
	startTestServer(t)
	a, b := filepath.Join("..", "testdata", "samples", "grass.png"), filepath.Join("..", "testdata", "samples", "gravel.png")
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"score", a, b, "--layer", "nope"}, "no layer"},
		{[]string{"score", a, b, "--metric", "l2"}, "--metric"},
		{[]string{"sweep", a, b, "--layer", "nope"}, "no layer"},
		{[]string{"rank", a, filepath.Dir(a), "--layer", "99"}, "outside"},
		{[]string{"bench", "triplet", tripletDataset(t, "grass.png", "gravel.png"), "--layer", "nope"}, "no layer"},
		{[]string{"bench", "triplet", tripletDataset(t, "grass.png", "gravel.png"), "--metric", "l2"}, "--metric"},
	}
	for _, tc := range cases {
		code, _, stderr := runCmd(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.says) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.says)
		}
	}
}

func TestCacheCommand(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("DIFFSIM_CACHE", cache)
	entry := filepath.Join(cache, "graphs", "0123456789abcdef")
	if err := os.MkdirAll(entry, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(entry, "weights.bin"), make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(entry, "meta.json"), []byte(`{"runtime":"1.30.0","device":"cpu","model":"/m/unet"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd(t, "cache")
	if code != 0 || !strings.Contains(out, "0123456789ab") || !strings.Contains(out, "1 optimized graph(s)") || !strings.Contains(out, "/m/unet") {
		t.Errorf("cache: exit %d, %q %q", code, out, stderr)
	}
	code, out, _ = runCmd(t, "cache", "clean")
	if code != 0 || !strings.Contains(out, "removed 5") {
		t.Errorf("cache clean: exit %d, %q", code, out)
	}
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Errorf("entry still there after clean: %v", err)
	}
	if code, _, stderr := runCmd(t, "cache", "purge"); code != 2 || !strings.Contains(stderr, "want list or clean") {
		t.Errorf("cache purge: exit %d, %q", code, stderr)
	}
}

func TestParseBytes(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false}, {"1024", 1024, false}, {"20GB", 20e9, false}, {"512MiB", 512 << 20, false},
		{"1.5 GiB", 3 << 29, false}, {"8g", 8e9, false}, {"-1GB", 0, true}, {"lots", 0, true}, {"", 0, true},
	}
	for _, tc := range cases {
		got, err := parseBytes(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("parseBytes(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// bench through a server makes the same results file, byte for byte, as bench computing here,
// skipped decisions (an unreadable image) included, and the server did the scoring.
func TestServedBenchEqualsLocal(t *testing.T) {
	enginetest.Runtime(t) // the server scores with ONNX Runtime: no runtime, nothing to compare
	startTestServer(t)
	dir := tripletDataset(t, "grass.png", "gravel.png", "brick.png")
	if err := os.WriteFile(filepath.Join(dir, "grass", "broken.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"--size", "64", "--t", "300", "--layer", "coarse", "--max", "20"},
		{"--size", "64", "--step", "900", "--metric", "mse", "--max", "20"},
	}
	for _, extra := range cases {
		t.Run(strings.Join(extra, " "), func(t *testing.T) {
			tmp := t.TempDir()
			outs := map[string]string{}
			stdouts := map[string]string{}
			for _, mode := range []string{"local", "served"} {
				outs[mode] = filepath.Join(tmp, mode+".jsonl")
				args := append([]string{"bench", "triplet", dir, "--out", outs[mode], "--json", "--quiet"}, extra...)
				if mode == "local" {
					args = append(args, "--no-server")
				}
				code, stdout, stderr := runCmd(t, args...)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", mode, code, stderr)
				}
				stdouts[mode] = stdout
			}
			local, served := readLines(t, outs["local"]), readLines(t, outs["served"])
			if strings.Join(served, "\n") != strings.Join(local, "\n") {
				t.Errorf("served results differ from local:\n%s\nlocal:\n%s", strings.Join(served, "\n"), strings.Join(local, "\n"))
			}
			if stdouts["served"] != stdouts["local"] {
				t.Errorf("served summary %s differs from local %s", stdouts["served"], stdouts["local"])
			}
			if len(local) < 3 || !strings.Contains(strings.Join(local, "\n"), `"skipped"`) {
				t.Errorf("want decisions and at least one skipped one (broken.png), got:\n%s", strings.Join(local, "\n"))
			}
		})
	}
	// The served runs loaded the model on the server: it is the one that scored.
	m, err := api.NewClient(os.Getenv("DIFFSIM_SOCKET")).Models(context.Background())
	if err != nil || len(m.Models) == 0 {
		t.Errorf("the server has %d models loaded after the served bench runs (%v); want the built-in one", len(m.Models), err)
	}
}

// TestV1ScoreIsScoreJSON: POST /v1/score answers, byte for byte, what `score --json` prints for
// the same request (paths given absolute to both), a field left out of the request being its
// default and an explicit 0 staying 0; whether the features were cached is a header beside
// the record, false for a pair never seen and true when it is asked again.
func TestV1ScoreIsScoreJSON(t *testing.T) {
	startTestServer(t)
	samples, _ := filepath.Abs(filepath.Join("..", "testdata", "samples"))
	a, b := filepath.Join(samples, "grass.png"), filepath.Join(samples, "gravel.png")
	cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", os.Getenv("DIFFSIM_SOCKET"))
	}}}
	post := func(body string) (string, http.Header) {
		t.Helper()
		resp, err := cl.Post("http://diffsim/v1/score", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", body, resp.Status, data)
		}
		return string(data), resp.Header
	}
	pair := fmt.Sprintf(`"image_a":%q,"image_b":%q`, a, b)
	cases := []struct {
		flags []string
		body  string
	}{
		{nil, "{" + pair + "}"},
		{[]string{"--layer", "coarse", "--t", "500", "--metric", "mse"}, `{` + pair + `,"layer":"coarse","t":500,"metric":"mse"}`},
		{[]string{"--step", "900", "--size", "128", "--seed", "0"}, `{` + pair + `,"step":900,"size":128,"seed":0}`},
	}
	for i, tc := range cases {
		code, want, stderr := runCmd(t, append([]string{"score", a, b, "--json", "--no-server", "--quiet"}, tc.flags...)...)
		if code != 0 {
			t.Fatalf("score %v: exit %d: %s", tc.flags, code, stderr)
		}
		got, h := post(tc.body)
		if got != want {
			t.Errorf("%s:\n/v1/score    %s`score --json` %s", tc.body, got, want)
		}
		if i == 0 {
			if h.Get(api.HeaderCached) != "false" || !strings.HasPrefix(h.Get(api.HeaderTiming), "score;dur=") {
				t.Errorf("first request: %s %q, %s %q; want false and a timing", api.HeaderCached, h.Get(api.HeaderCached), api.HeaderTiming, h.Get(api.HeaderTiming))
			}
			if _, h := post(tc.body); h.Get(api.HeaderCached) != "true" {
				t.Errorf("the same request again: %s %q, want true", api.HeaderCached, h.Get(api.HeaderCached))
			}
		}
	}
}
