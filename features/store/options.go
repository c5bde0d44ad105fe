package store

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultEndpoint is the hub used when neither Options.Endpoint nor HF_ENDPOINT is set.
const DefaultEndpoint = "https://huggingface.co"

// Options says where the cache is and how to reach the hub. Zero fields take
// their value from the environment, as huggingface_hub does.
type Options struct {
	// CacheDir is the hub cache folder; "" means HF_HUB_CACHE, else
	// HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
	CacheDir string
	// Endpoint is the hub's base URL; "" means HF_ENDPOINT, else DefaultEndpoint.
	Endpoint string
	// Token is sent as "Authorization: Bearer" to the hub's own host only;
	// "" means HF_TOKEN, else the file huggingface-cli login writes.
	Token string
	// Offline forbids network access; HF_HUB_OFFLINE=1 has the same effect.
	Offline bool
	// Repos overrides the repository of a known name: "sd15" → "org/repo[@revision]".
	Repos map[string]string
	// Client makes the HTTP requests; nil means a client with connect and
	// response-header timeouts. Its CheckRedirect is never used: redirects are
	// followed by hand so the token cannot leak to another host.
	Client *http.Client
}

// settings are Options with every default filled in.
type settings struct {
	cacheDir string
	endpoint string
	token    string
	offline  bool
	repos    map[string]string
	client   *http.Client
}

func (o Options) settings() (settings, error) {
	s := settings{
		cacheDir: o.CacheDir,
		endpoint: o.Endpoint,
		token:    o.Token,
		offline:  o.Offline || envTrue("HF_HUB_OFFLINE"),
		repos:    o.Repos,
		client:   o.Client,
	}
	if s.cacheDir == "" {
		dir, err := CacheDir()
		if err != nil {
			return s, err
		}
		s.cacheDir = dir
	}
	if s.endpoint == "" {
		s.endpoint = os.Getenv("HF_ENDPOINT")
	}
	if s.endpoint == "" {
		s.endpoint = DefaultEndpoint
	}
	s.endpoint = strings.TrimRight(s.endpoint, "/")
	if s.token == "" {
		s.token = tokenFromEnv()
	}
	if s.client == nil {
		s.client = defaultClient()
	}
	return s, nil
}

// CacheDir is the hub cache folder the environment names, as huggingface_hub computes it.
func CacheDir() (string, error) {
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if dir := os.Getenv(v); dir != "" {
			return expandHome(dir)
		}
	}
	home, err := hfHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "hub"), nil
}

func hfHome() (string, error) {
	if dir := os.Getenv("HF_HOME"); dir != "" {
		return expandHome(dir)
	}
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" {
		return expandHome(filepath.Join(dir, "huggingface"))
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the Hugging Face cache: %w; set HF_HOME or HF_HUB_CACHE", err)
	}
	return filepath.Join(home, ".cache", "huggingface"), nil
}

// tokenFromEnv reads HF_TOKEN, then the token file that `huggingface-cli login` writes.
func tokenFromEnv() string {
	if t := strings.TrimSpace(os.Getenv("HF_TOKEN")); t != "" {
		return t
	}
	path := os.Getenv("HF_TOKEN_PATH")
	if path == "" {
		home, err := hfHome()
		if err != nil {
			return ""
		}
		path = filepath.Join(home, "token")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func envTrue(name string) bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(name))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %q: %w", p, err)
	}
	return filepath.Join(home, p[1:]), nil
}

// displayPath abbreviates the home folder to ~ for messages.
func displayPath(p string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return p
	}
	if p == home {
		return "~"
	}
	if rest, ok := strings.CutPrefix(p, home+string(filepath.Separator)); ok {
		return "~" + string(filepath.Separator) + rest
	}
	return p
}

// defaultClient bounds the phases where a dead server would hang a pull for
// ever; the body itself is guarded by PullOptions.StallTimeout instead of a
// total timeout, which a multi-gigabyte file would exceed.
func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 15 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t}
}

// ErrOffline is wrapped by errors that come from HF_HUB_OFFLINE forbidding a download.
var ErrOffline = errors.New("offline mode (HF_HUB_OFFLINE) forbids downloads")
