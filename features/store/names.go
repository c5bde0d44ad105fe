package store

import (
	"fmt"
	"regexp"
	"strings"
)

// Everything in this file guards the disk against names that come from the
// command line or from a server: a hostile or broken hub must not be able to
// write outside the cache.

// validRepoID checks "org/name" (or a legacy "name") against the hub's own
// rules. "--" is refused because the cache folder models--org--name would
// become ambiguous.
func validRepoID(id string) error {
	parts := strings.Split(id, "/")
	if len(id) > 96 || len(parts) > 2 {
		return fmt.Errorf("invalid repository id %q: want org/name", id)
	}
	for _, p := range parts {
		if !repoPart.MatchString(p) || strings.Contains(p, "--") || strings.Contains(p, "..") {
			return fmt.Errorf("invalid repository id %q: use letters, digits, '-', '_' and '.', not '--' or '..'", id)
		}
	}
	return nil
}

var repoPart = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

var commitHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

// validRevision accepts branch, tag and PR names (refs/pr/1); the revision
// becomes a file under refs/, so it obeys the same rules as a file name.
func validRevision(rev string) error {
	if len(rev) > 255 {
		return fmt.Errorf("invalid revision %q: too long", rev)
	}
	if err := validRelPath(rev); err != nil {
		return fmt.Errorf("invalid revision %q: %w", rev, err)
	}
	for _, r := range rev {
		if r == ' ' || r == '~' || r == '^' || r == ':' || r == '?' || r == '*' || r == '[' {
			return fmt.Errorf("invalid revision %q: %q is not allowed", rev, r)
		}
	}
	return nil
}

// validRelPath accepts a relative, slash-separated path that stays inside
// the folder it is joined to.
func validRelPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case len(p) > 1024:
		return fmt.Errorf("path too long")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("absolute path")
	case strings.Contains(p, `\`):
		return fmt.Errorf("backslash in path")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character in path")
		}
	}
	if len(p) >= 2 && p[1] == ':' {
		return fmt.Errorf("drive letter in path")
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
			return fmt.Errorf("empty path component")
		case ".", "..":
			return fmt.Errorf("%q path component", c)
		}
	}
	return nil
}

// validRepoFile is validRelPath with the name in the message, for file names a server sent.
func validRepoFile(repo, name string) error {
	if err := validRelPath(name); err != nil {
		return fmt.Errorf("refusing file name %q from %s: %w", name, repo, err)
	}
	return nil
}

var etagChars = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$`)

// normalizeETag strips what HTTP adds around an ETag (W/ and quotes), as
// huggingface_hub does, and checks the rest can name a file in blobs/.
func normalizeETag(raw string) (string, error) {
	e := strings.TrimPrefix(strings.TrimSpace(raw), "W/")
	e = strings.Trim(e, `"`)
	if !etagChars.MatchString(e) || strings.HasSuffix(e, ".incomplete") || strings.HasSuffix(e, ".lock") {
		return "", fmt.Errorf("unusable ETag %q", raw)
	}
	return e, nil
}

// matchGlob matches like Python's fnmatch, which huggingface_hub's
// allow_patterns use: '*' crosses '/' so "*.onnx" matches "onnx/model.onnx",
// and a pattern ending in '/' matches everything below that folder.
func matchGlob(pattern, name string) bool {
	if strings.HasSuffix(pattern, "/") {
		pattern += "*"
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := strings.IndexByte(pattern[i+1:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := pattern[i+1 : i+1+j]
			i += j + 1
			b.WriteString("[")
			if strings.HasPrefix(class, "!") {
				b.WriteString("^")
				class = class[1:]
			}
			b.WriteString(strings.ReplaceAll(class, `\`, `\\`))
			b.WriteString("]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(name)
}
