package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRequestDecoding sends arbitrary bodies to every POST endpoint (over fakes): nothing
// panics or hangs, every answer is JSON, and every refusal is {"error": one line} with a 4xx
// or 503 status.
func FuzzRequestDecoding(f *testing.F) {
	paths := []string{"/v1/score", "/v1/sweep", "/v1/rank", "/v1/show", "/v1/info", "/v1/result", "/v1/layers", "/v1/prefetch", "/v1/cached", "/v1/stats"}
	for i, seed := range []string{
		`{"image_a":"/dev/zero","image_b":"/etc/passwd"}`,
		`{"model":"m","timesteps":[1,2,999],"image_a":"/tmp","image_b":"/"}`,
		`{"query":"/x.png","images":["/a.png","rel.png"],"top":-1}`,
		`{"layer":"Down9","t":1000}`,
		`{"model":"../x.onnx","keep_alive":"soon"}`,
		`{"a":{"path":"/a.png","hash":"00"},"b":{"path":"/b.png"},"layer":-1,"t":-5,"token":-3}`,
		`{"a":{"path":"/a.png"},"b":{"path":"/b.png"},"t":1,"metric":"l2"}`,
		`{"a":{},"b":{},"t":0}`,
		`{"hash_a":"","hash_b":"x"}`,
		`{} {}`, `{"seed":1e99}`, `[`, `null`, "\x00",
	} {
		f.Add(uint8(i), []byte(seed))
	}
	fk := &fakes{byName: map[string]*fakeModel{}}
	srv := New(Config{Open: fk.open, MaxBytes: 1 << 20})
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if ctx.Err() != nil {
			t.Fatalf("%s %q: still computing after 10 s", path, body)
		}
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %q: answer %d is not a JSON object: %q", path, body, w.Code, w.Body.String())
		}
		switch {
		case w.Code == http.StatusOK:
		case w.Code >= 400 && w.Code < 500, w.Code == http.StatusServiceUnavailable:
			msg, _ := v["error"].(string)
			if msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("%s %q: %d without a one-line error: %q", path, body, w.Code, w.Body.String())
			}
		default:
			t.Fatalf("%s %q: status %d: %s", path, body, w.Code, w.Body.String())
		}
	})
}
