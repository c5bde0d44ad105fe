package store

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestValidRelPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"config.json": true, "onnx/model.onnx": true, "unet/model.onnx_data": true, "a/b/c.d..e": true,
		"": false, "/etc/passwd": false, "../x": false, "a/../../b": false, "a/..": false,
		`a\b`: false, "a//b": false, "a/": false, "./a": false, ".": false, "c:/x": false, "a\x00b": false,
	} {
		if err := validRelPath(p); (err == nil) != ok {
			t.Errorf("validRelPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestValidRepoIDAndRevision(t *testing.T) {
	for id, ok := range map[string]bool{
		"onnx-community/dinov2-small": true, "Xenova/clip-vit-base-patch32": true, "gpt2": true, "a.b/c_d": true,
		"": false, "a/b/c": false, "../x": false, "a/..": false, "org--x/y": false, "a/b..c": false,
		"/a": false, "a/": false, "-a/b": false, "a b/c": false, `a\b/c`: false,
	} {
		if err := validRepoID(id); (err == nil) != ok {
			t.Errorf("validRepoID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
	for rev, ok := range map[string]bool{
		"main": true, "v1.0": true, "refs/pr/1": true, testCommit: true,
		"": false, "../main": false, "/main": false, "a b": false, "a/../b": false,
	} {
		if err := validRevision(rev); (err == nil) != ok {
			t.Errorf("validRevision(%q) = %v, want ok=%v", rev, err, ok)
		}
	}
}

func TestNormalizeETag(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for raw, want := range map[string]string{
		`"` + sha + `"`: sha, `W/"` + sha + `"`: sha, sha: sha,
		`"../../x"`: "", `""`: "", `"a/b"`: "", `".hidden"`: "", `"x.incomplete"`: "",
	} {
		got, err := normalizeETag(raw)
		if (err == nil) != (want != "") || got != want {
			t.Errorf("normalizeETag(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*.onnx", "onnx/model.onnx", true}, // fnmatch's '*' crosses '/'
		{"onnx/*_fp16.onnx", "onnx/model_fp16.onnx", true},
		{"onnx/*_fp16.onnx", "onnx/model.onnx", false},
		{"tokenizer/", "tokenizer/vocab.json", true},
		{"model.onnx?data", "model.onnx_data", true},
		{"[!a]*.json", "config.json", true},
		{"[!c]*.json", "config.json", false},
		{"a.b", "axb", false}, // '.' is literal
	} {
		if got := matchGlob(tc.pattern, tc.name); got != tc.want {
			t.Errorf("matchGlob(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
}

// FuzzValidRelPath: whatever a server sends, an accepted name joined to a
// folder stays inside it.
func FuzzValidRelPath(f *testing.F) {
	for _, s := range []string{"a", "../x", "a/../../b", "/etc/passwd", `a\b`, "a//b", "onnx/model.onnx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if validRelPath(p) != nil {
			return
		}
		base := filepath.FromSlash("/cache/snap")
		joined := filepath.Join(base, filepath.FromSlash(p))
		rel, err := filepath.Rel(base, joined)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Errorf("accepted %q escapes or collapses to %q", p, joined)
		}
	})
}
