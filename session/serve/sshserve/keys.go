package sshserve

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"charm.land/ssh"
	"github.com/google/renameio/v2"
	gossh "golang.org/x/crypto/ssh"
)

// hostKey reads the server's host key from path, generating an Ed25519 key there the first
// time (mode 0600, written atomically), so clients see the same host from one start to the
// next. A key others can read is refused, as OpenSSH refuses one.
func hostKey(path string) (gossh.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = newHostKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("host key %s is readable by others (mode %04o): chmod 600 it", path, st.Mode().Perm())
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w (delete it and a new one is made)", path, err)
	}
	return signer, nil
}

func newHostKey(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "diffsim serve host key")
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := renameio.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	return data, nil
}

// Fingerprint is a key's SHA256 fingerprint as ssh prints it ("SHA256:…").
func Fingerprint(k gossh.PublicKey) string { return gossh.FingerprintSHA256(k) }

// keyID names a client key in file names: its fingerprint in URL-safe base64, shortened (96
// bits: no two keys of a class collide).
func keyID(k ssh.PublicKey) string {
	sum := sha256.Sum256(k.Marshal())
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// authorized reports whether key is listed in the authorized_keys file at path. The file is
// read on every attempt, so keys added or removed while the server runs count at once.
func authorized(path string, key ssh.PublicKey) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	want := key.Marshal()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			continue // a line this server cannot read lets nobody in, and hides no other
		}
		if bytes.Equal(k.Marshal(), want) {
			return true, nil
		}
	}
	return false, sc.Err()
}

// countKeys is how many keys the authorized_keys file at path lists.
func countKeys(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for len(data) > 0 {
		_, _, _, rest, err := gossh.ParseAuthorizedKey(data)
		if err != nil {
			break
		}
		n++
		data = rest
	}
	return n, nil
}

// StateDir is where the SSH front keeps its host key and the users' uploads: $DIFFSIM_STATE
// when set, else $XDG_STATE_HOME/diffsim, else ~/.local/state/diffsim.
func StateDir() (string, error) {
	if d := os.Getenv("DIFFSIM_STATE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "diffsim"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state folder for the host key: %w; set DIFFSIM_STATE", err)
	}
	return filepath.Join(home, ".local", "state", "diffsim"), nil
}
