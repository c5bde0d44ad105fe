package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSSHFlags: SSH flags without --ssh, contradicting flags and a missing
// authorized_keys file are one line and exit 2, before anything is served.
func TestServeSSHFlags(t *testing.T) {
	dir := t.TempDir()
	// A socket folder of the server's own making (mode 0700): t.TempDir's is open to others.
	sock := filepath.Join(dir, "run", "s.sock")
	t.Setenv("DIFFSIM_SOCKET", sock)
	t.Setenv("DIFFSIM_STATE", filepath.Join(dir, "state"))
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, nil, 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--images", dir}, "--images applies only to the SSH front: add --ssh ADDR"},
		{[]string{"serve", "--ssh-open", "--upload-quota", "1MB"}, "--ssh-open, --upload-quota apply only to the SSH front"},
		{[]string{"serve", "--ssh", "127.0.0.1:0", "--ssh-open", "--authorized-keys", ak}, "give one of them"},
		{[]string{"serve", "--ssh", "127.0.0.1:0", "--authorized-keys", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"serve", "--ssh", "127.0.0.1:0", "--authorized-keys", ak}, "lists no key"},
		{[]string{"serve", "--ssh", "127.0.0.1:0", "--ssh-open", "--upload-quota", "lots"}, `--upload-quota "lots"`},
		{[]string{"serve", "--ssh", "nowhere", "--ssh-open"}, `--ssh "nowhere": want HOST:PORT`},
	} {
		var stdout, stderr bytes.Buffer
		code := Run(tc.args, nil, &stdout, &stderr)
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("diffsim %s: exit %d, %q; want exit 2 and one line with %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("a refused serve left its socket behind")
	}
}
