package store

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeHub serves repositories the way huggingface.co does: the revision API,
// resolve URLs whose LFS files redirect (302) to a CDN on another host with
// X-Linked-Etag/X-Linked-Size, git-stored files served directly with their
// blob sha1 as ETag, and Range requests. Faults are injected per test.
type fakeHub struct {
	t     *testing.T
	hub   *httptest.Server
	cdn   *httptest.Server
	mu    sync.Mutex
	repos map[string]*fakeRepo
	log   []fakeRequest
	sent  int64 // body bytes written by file downloads

	// cutAfter, when >0, makes the first GET of each file's bytes close
	// the connection after that many body bytes.
	cutAfter int
	cut      map[string]bool
	// hangAfter, when >0, makes the first GET of each file's bytes stop
	// sending after that many body bytes and hold the connection open.
	hangAfter int
	hung      map[string]bool
	// fail500 makes the next N requests answer 500.
	fail500 int
	// lieETag serves this sha256 as X-Linked-Etag for LFS files.
	lieETag string
	// noRange makes the CDN ignore Range headers (answer 200, full body).
	noRange bool
}

type fakeRepo struct {
	commit string
	files  map[string][]byte
	lfs    map[string]bool
}

type fakeRequest struct {
	Host, Method, Path, Range, Auth string
}

const testCommit = "0123456789abcdef0123456789abcdef01234567"

func newFakeHub(t *testing.T) *fakeHub {
	f := &fakeHub{t: t, repos: map[string]*fakeRepo{}, cut: map[string]bool{}, hung: map[string]bool{}}
	f.cdn = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	// Two muxes: the hub's routes overlap in ways ServeMux refuses to rank.
	api, files := http.NewServeMux(), http.NewServeMux()
	api.HandleFunc("GET /api/models/{org}/{name}/revision/{rev...}", f.serveAPI)
	files.HandleFunc("/{org}/{name}/resolve/{rev}/{path...}", f.serveResolve)
	f.hub = httptest.NewServer(f.record(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			api.ServeHTTP(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
	t.Cleanup(f.hub.Close)
	t.Cleanup(f.cdn.Close)
	return f
}

func (f *fakeHub) addRepo(repo string, files map[string][]byte, lfs ...string) {
	r := &fakeRepo{commit: testCommit, files: files, lfs: map[string]bool{}}
	for _, p := range lfs {
		r.lfs[p] = true
	}
	f.repos[repo] = r
}

func (f *fakeHub) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.log = append(f.log, fakeRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization")})
		fail := f.fail500 > 0
		if fail {
			f.fail500--
		}
		f.mu.Unlock()
		if fail {
			http.Error(w, "upstream hiccup", http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeHub) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.log...)
}

func (f *fakeHub) bytesSent() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

func (f *fakeHub) serveAPI(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("org") + "/" + r.PathValue("name")
	rp, ok := f.repos[repo]
	if !ok {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, `{"error":"Repository not found"}`, http.StatusUnauthorized)
		return
	}
	if rev := r.PathValue("rev"); rev != "main" && rev != rp.commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, `{"error":"Invalid rev id"}`, http.StatusNotFound)
		return
	}
	type sib struct {
		RFilename string `json:"rfilename"`
	}
	var sibs []sib
	for p := range rp.files {
		sibs = append(sibs, sib{p})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"id": repo, "sha": rp.commit, "siblings": sibs})
}

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (f *fakeHub) serveResolve(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("org") + "/" + r.PathValue("name")
	rp, ok := f.repos[repo]
	if !ok || r.PathValue("rev") != rp.commit {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.NotFound(w, r)
		return
	}
	path := r.PathValue("path")
	data, ok := rp.files[path]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Repo-Commit", rp.commit)
	if rp.lfs[path] {
		etag := sha256hex(data)
		if f.lieETag != "" {
			etag = f.lieETag
		}
		w.Header().Set("ETag", `"`+gitSHA1([]byte("pointer "+path))+`"`)
		w.Header().Set("X-Linked-Etag", `"`+etag+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
		w.Header().Set("Location", f.cdn.URL+"/blobs/"+repo+"/"+path+"?sig=secret")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitSHA1(data)+`"`)
	f.serveBytes(w, r, path, data)
}

func (f *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.log = append(f.log, fakeRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization")})
	f.mu.Unlock()
	rest := strings.TrimPrefix(r.URL.Path, "/blobs/")
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	rp, ok := f.repos[parts[0]+"/"+parts[1]]
	if !ok {
		http.NotFound(w, r)
		return
	}
	data, ok := rp.files[parts[2]]
	if !ok {
		http.NotFound(w, r)
		return
	}
	f.serveBytes(w, r, parts[2], data)
}

// serveBytes answers GET and HEAD with Range support and the injected cut.
func (f *fakeHub) serveBytes(w http.ResponseWriter, r *http.Request, path string, data []byte) {
	start := 0
	if rg := r.Header.Get("Range"); rg != "" && !f.noRange {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || n >= len(data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
	}
	body := data[start:]
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Accept-Ranges", "bytes")
	if start > 0 {
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if r.Method == http.MethodHead {
		return
	}
	f.mu.Lock()
	cut := f.cutAfter > 0 && !f.cut[path] && f.cutAfter < len(body)
	if cut {
		f.cut[path] = true
		body = body[:f.cutAfter]
	}
	hang := f.hangAfter > 0 && !f.hung[path] && f.hangAfter < len(body)
	if hang {
		f.hung[path] = true
		body = body[:f.hangAfter]
	}
	f.mu.Unlock()
	n, _ := w.Write(body)
	f.mu.Lock()
	f.sent += int64(n)
	f.mu.Unlock()
	if cut {
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	if hang {
		w.(http.Flusher).Flush()
		<-r.Context().Done() // until the client gives up
	}
}
