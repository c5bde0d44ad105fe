// Package sshserve is the SSH front of diffsim serve: every SSH session with a terminal gets
// the explorer, drawn on the client's own terminal, on the server's warm model (one copy in
// memory however many sessions: forwards, caches and the memory bound are the server's).
// Clients need nothing but ssh.
//
// Access is by public key only, from an authorized_keys file, or, in the open mode meant for
// a classroom on a trusted network, any key. Sessions name images inside a served folder (no
// absolute paths, nothing that leaves it), or pick them in a picker; scp and sftp upload into
// the user's own folder, under a quota, checked as images on arrival. Each session has a real
// pty, so the explorer's terminal detection reads the client's answers through the channel
// as it reads a local terminal's.
package sshserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/ssh"
	"charm.land/wish/v2"
	"charm.land/wish/v2/scp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/serve"
	"github.com/diffsim/diffsim/ui"
)

// Defaults.
const (
	DefaultMaxSessions = 40
	DefaultPerKey      = 4
	DefaultIdleTimeout = 30 * time.Minute
	DefaultUploadQuota = 100 << 20
)

// Config configures the SSH front.
type Config struct {
	// StateDir holds the host key (ssh_host_ed25519_key) and, unless Uploads says otherwise,
	// the users' upload folders.
	StateDir string
	// AuthorizedKeys is the file of public keys let in; "" means ~/.ssh/authorized_keys of
	// the user running the server. Ignored when Open.
	AuthorizedKeys string
	// Open lets any public key in: for a classroom on a trusted network. It is said at start
	// and in every session's status line.
	Open bool
	// Images is the folder sessions name images in ("" serves none: uploads only).
	Images string
	// Uploads is the folder of the users' own folders; "" means StateDir/uploads.
	Uploads string
	// UploadQuota bounds each user's folder; 0 means DefaultUploadQuota.
	UploadQuota int64
	// MaxSessions bounds the sessions open at once, PerKey those of one key; 0 means the
	// defaults.
	MaxSessions, PerKey int
	// IdleTimeout closes a session after this long without a key press; 0 means
	// DefaultIdleTimeout, negative never.
	IdleTimeout time.Duration
	// Spec is the model every session explores.
	Spec api.Spec
	// Log gets one line per session opened, refused and closed; nil logs nothing.
	Log io.Writer
}

// Server is the SSH front over a serve.Server.
type Server struct {
	cfg  Config
	api  *serve.Server
	ssh  *ssh.Server
	lib  *library
	host gossh.PublicKey
	keys int // authorized keys at start (for the start line)

	mu     sync.Mutex
	total  int
	perKey map[string]int
	// live are the sessions' cancel functions, so Close can end them at once.
	live map[*int]context.CancelFunc
}

// New prepares the SSH front over api: the host key (generated on the first start), the
// access rule and the folders. It listens on nothing until Serve.
func New(api *serve.Server, cfg Config) (*Server, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("sshserve: no state folder")
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.PerKey <= 0 {
		cfg.PerKey = DefaultPerKey
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.UploadQuota <= 0 {
		cfg.UploadQuota = DefaultUploadQuota
	}
	if cfg.Uploads == "" {
		cfg.Uploads = filepath.Join(cfg.StateDir, "uploads")
	}
	s := &Server{cfg: cfg, api: api, perKey: map[string]int{}, live: map[*int]context.CancelFunc{}}
	if !cfg.Open {
		if s.cfg.AuthorizedKeys == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("no authorized keys: %w; give --authorized-keys FILE", err)
			}
			s.cfg.AuthorizedKeys = filepath.Join(home, ".ssh", "authorized_keys")
		}
		n, err := countKeys(s.cfg.AuthorizedKeys)
		switch {
		case err != nil:
			return nil, fmt.Errorf("authorized keys %s: %w; give --authorized-keys FILE, or --ssh-open on a trusted classroom network", s.cfg.AuthorizedKeys, err)
		case n == 0:
			return nil, fmt.Errorf("authorized keys %s lists no key this server can read; add the students' public keys, or use --ssh-open on a trusted classroom network", s.cfg.AuthorizedKeys)
		}
		s.keys = n
	}
	signer, err := hostKey(filepath.Join(cfg.StateDir, "ssh_host_ed25519_key"))
	if err != nil {
		return nil, err
	}
	s.host = signer.PublicKey()
	if s.lib, err = newLibrary(cfg.Images, cfg.Uploads, cfg.UploadQuota); err != nil {
		return nil, err
	}
	s.ssh, err = wish.NewServer(
		func(srv *ssh.Server) error { srv.AddHostKey(signer); return nil },
		wish.WithVersion("SSH-2.0-diffsim"),
		wish.WithPublicKeyAuth(s.allow),
		func(srv *ssh.Server) error { srv.PtyHandler = allocatePty; return nil },
		wish.WithSubsystem("sftp", s.sftp),
		wish.WithMiddleware(s.explore, scp.Middleware(uploadsOf{s}, uploadsOf{s}), s.admitMiddleware),
	)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Fingerprint is the host key's fingerprint, for users to check on their first connection.
func (s *Server) Fingerprint() string { return Fingerprint(s.host) }

// Describe is the start line's access part: who may connect.
func (s *Server) Describe() string {
	if s.cfg.Open {
		return "OPEN MODE: any SSH key gets in; use it only on a trusted network"
	}
	return fmt.Sprintf("keys from %s (%d)", s.cfg.AuthorizedKeys, s.keys)
}

// Listen listens on addr for SSH; a missing host means loopback (127.0.0.1), so sessions are
// offered to the network only when a host says so.
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if _, perr := strconv.Atoi(addr); perr != nil {
			return nil, fmt.Errorf("--ssh %q: want HOST:PORT or :PORT (e.g. :2222, or 0.0.0.0:2222 for the network)", addr)
		}
		host, port = "", addr
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("--ssh %s: %w", addr, err)
	}
	return ln, nil
}

// Serve answers SSH on ln until ctx ends; then it closes every session and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.ssh.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.mu.Lock()
	for _, cancel := range s.live {
		cancel()
	}
	s.mu.Unlock()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.ssh.Shutdown(shut); err != nil {
		s.ssh.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, ssh.ErrServerClosed) {
		return err
	}
	return nil
}

// allow is the public-key check: any key in the open mode, else those in the file.
func (s *Server) allow(ctx ssh.Context, key ssh.PublicKey) bool {
	if s.cfg.Open {
		return true
	}
	ok, err := authorized(s.cfg.AuthorizedKeys, key)
	if err != nil {
		s.logf("authorized keys %s: %v", s.cfg.AuthorizedKeys, err)
	}
	if !ok {
		s.logf("refused key %s for %s from %s", gossh.FingerprintSHA256(key), ctx.User(), ctx.RemoteAddr())
	}
	return ok
}

func (s *Server) logf(format string, a ...any) {
	if s.cfg.Log != nil {
		fmt.Fprintf(s.cfg.Log, "diffsim ssh: "+format+"\n", a...)
	}
}

// who is the session's user for logs: the name they gave and their key.
func who(sess ssh.Session) string {
	k := "no key"
	if pk := sess.PublicKey(); pk != nil {
		k = gossh.FingerprintSHA256(pk)
	}
	return fmt.Sprintf("%s (%s) from %s", sess.User(), k, sess.RemoteAddr())
}

// refuse ends a session with one line on the client's stderr and an exit status.
func refuse(sess ssh.Session, code int, format string, a ...any) {
	eol := "\n"
	if _, _, ok := sess.Pty(); ok {
		eol = "\r\n" // the client's terminal is raw while the session lasts
	}
	fmt.Fprintf(sess.Stderr(), "diffsim: "+format+eol, a...)
	_ = sess.Exit(code)
}

// admitMiddleware counts every session (explorer, scp, sftp) against the limits, refusing
// with one line past them.
func (s *Server) admitMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		release, err := s.admit(sessionKey(sess))
		if err != nil {
			s.logf("refused %s: %v", who(sess), err)
			refuse(sess, 1, "%v", err)
			return
		}
		defer release()
		next(sess)
	}
}

// sessionKey names the session's key for the per-key limit.
func sessionKey(sess ssh.Session) string {
	if pk := sess.PublicKey(); pk != nil {
		return keyID(pk)
	}
	return ""
}

// admit counts a session of the key id against the limits, or says why it cannot open; the
// caller calls release when the session ends.
func (s *Server) admit(id string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.total >= s.cfg.MaxSessions:
		return nil, fmt.Errorf("the server is full (%d sessions, its --ssh-max-sessions); try again in a while", s.total)
	case s.perKey[id] >= s.cfg.PerKey:
		return nil, fmt.Errorf("your key already has %d sessions open (the server's --ssh-per-key); close one first", s.perKey[id])
	}
	s.total++
	s.perKey[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.perKey[id]--; s.perKey[id] <= 0 {
				delete(s.perKey, id)
			}
		})
	}, nil
}

// files is the session's user's view of the images and uploads.
func (s *Server) files(sess ssh.Session) (*userFiles, error) {
	pk := sess.PublicKey()
	if pk == nil {
		return nil, errors.New("no public key: this server lets in keys only")
	}
	return s.lib.user(keyID(pk))
}

// sftp serves the SFTP subsystem (sftp, and scp in its default mode) in the user's folder.
func (s *Server) sftp(sess ssh.Session) {
	release, err := s.admit(sessionKey(sess))
	if err != nil {
		s.logf("refused sftp %s: %v", who(sess), err)
		refuse(sess, 1, "%v", err)
		return
	}
	defer release()
	u, err := s.files(sess)
	if err != nil {
		refuse(sess, 1, "%v", err)
		return
	}
	if err := serveSFTP(sess, u); err != nil {
		s.logf("sftp %s: %v", who(sess), err)
	}
}

// uploadsOf routes legacy scp uploads (scp -O) to the session's user.
type uploadsOf struct{ s *Server }

func (h uploadsOf) Mkdir(sess ssh.Session, e *scp.DirEntry) error {
	u, err := h.s.files(sess)
	if err != nil {
		return err
	}
	return scpFiles{u}.Mkdir(sess, e)
}

func (h uploadsOf) Write(sess ssh.Session, e *scp.FileEntry) (int64, error) {
	u, err := h.s.files(sess)
	if err != nil {
		return 0, err
	}
	return scpFiles{u}.Write(sess, e)
}

// errLegacyDownload answers scp -O from the server: the legacy protocol only uploads here.
var errLegacyDownload = errors.New("scp -O only uploads here; fetch your files (exports/) with sftp, or scp without -O")

func (uploadsOf) Glob(ssh.Session, string) ([]string, error) { return nil, errLegacyDownload }
func (uploadsOf) WalkDir(ssh.Session, string, fs.WalkDirFunc) error {
	return errLegacyDownload
}
func (uploadsOf) NewDirEntry(ssh.Session, string) (*scp.DirEntry, error) {
	return nil, errLegacyDownload
}
func (uploadsOf) NewFileEntry(ssh.Session, string) (*scp.FileEntry, func() error, error) {
	return nil, nil, errLegacyDownload
}

// errIdle ends a session nobody typed in for the idle timeout.
var errIdle = errors.New("idle")

// explore runs the explorer for a session with a terminal.
func (s *Server) explore(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		t := terminalOf(sess)
		req, err := parseArgs(sess.Command())
		switch {
		case err != nil:
			refuse(sess, 2, "%v", err)
			return
		case req.help:
			io.WriteString(sess, strings.ReplaceAll(helpText, "\n", "\r\n"))
			_ = sess.Exit(0)
			return
		case t == nil:
			refuse(sess, 2, "the explorer needs a terminal: ssh -t -p PORT HOST [A.png B.png]")
			return
		}
		code := s.run(sess, t, req)
		_ = sess.Exit(code)
		next(sess)
	}
}

// run is one explorer session; it returns the exit status.
func (s *Server) run(sess ssh.Session, t *terminal, req request) int {
	resize := make(chan ui.WindowSize, 1)
	flush := t.connect(sess.Context(), sess, resize)
	defer flush()
	// A dropped connection cancels the session's context: closing the pty's master side then
	// makes every write the explorer has blocked on the slave fail at once (a dead client
	// stops reading, and a sixel frame is far larger than a pty's buffer), so the session
	// ends and frees its place without disturbing any other.
	stop := context.AfterFunc(sess.Context(), func() { t.master.Close() })
	defer stop()
	go keepAlive(sess.Context(), sess)

	u, err := s.files(sess)
	if err != nil {
		refuse(sess, 1, "%v", err)
		return 1
	}
	for _, name := range []string{req.a, req.b} {
		if name == "" {
			continue
		}
		f, _, err := u.open(name)
		if err != nil {
			s.logf("refused %s: %v", who(sess), err)
			refuse(sess, 2, "%v", err)
			return 2
		}
		f.Close()
	}
	ctx, cancel := context.WithCancelCause(sess.Context())
	defer cancel(nil)
	id := new(int)
	s.mu.Lock()
	s.live[id] = func() { cancel(errors.New("the server is stopping")) }
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.live, id)
		s.mu.Unlock()
	}()

	b, err := s.backend(ctx, t, u)
	if err != nil {
		refuse(sess, 1, "%v", err)
		return 1
	}
	defer b.Close() // the session's images leave the memory bound with it
	opts, err := req.options(b.Info())
	if err != nil {
		refuse(sess, 2, "%v", err)
		return 2
	}
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	opts.Input, opts.Output = t.slave, t.slave
	opts.Remote = &ui.Remote{Env: termEnv(sess.Environ(), t.term), Resize: resize, Status: s.status(),
		Touch: func() { last.Store(time.Now().UnixNano()) }}
	opts.Picker = u
	opts.ExportDir = filepath.Join(u.own, "exports")
	// Ended from here (idle, the server stopping), the explorer restores the client's terminal
	// and the session says why; a client that stopped reading cannot block that for long.
	ran := make(chan struct{})
	defer close(ran)
	context.AfterFunc(ctx, func() {
		select {
		case <-ran:
		case <-time.After(3 * time.Second):
			t.master.Close()
		}
	})
	if idle := s.cfg.IdleTimeout; idle > 0 {
		go watchIdle(ctx, &last, idle, func() { cancel(errIdle) })
	}

	s.logf("session %s: %s", who(sess), describe(req))
	start := time.Now()
	err = ui.Run(ctx, b, req.a, req.b, opts)
	code := 0
	var msg string
	switch {
	case errors.Is(context.Cause(ctx), errIdle):
		msg, code = fmt.Sprintf("closed after %v without a key press (the server's --ssh-idle-timeout)", s.cfg.IdleTimeout), 1
	case sess.Context().Err() != nil:
		s.logf("dropped %s after %v", who(sess), time.Since(start).Round(time.Second))
		return 1 // nobody is there to read a message
	case context.Cause(ctx) != nil:
		msg, code = context.Cause(ctx).Error(), 1
	case err != nil:
		msg, code = err.Error(), 1
	}
	if msg != "" {
		fmt.Fprintf(t.slave, "diffsim: %s\r\n", oneLine(msg))
	}
	s.logf("closed %s after %v", who(sess), time.Since(start).Round(time.Second))
	return code
}

// backend opens the session's view of the server's model, saying so when the model must
// load first (seconds to minutes for Stable Diffusion).
func (s *Server) backend(ctx context.Context, t *terminal, u *userFiles) (*serve.Shared, error) {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(time.Second):
			fmt.Fprintf(t.slave, "diffsim: loading the model %s for the first session; later sessions open at once\r\n", modelName(s.cfg.Spec))
		}
	}()
	b, err := s.api.Shared(ctx, s.cfg.Spec, u.Load)
	close(done)
	if err != nil {
		return nil, fmt.Errorf("the server could not open its model: %v", oneLine(err.Error()))
	}
	return b, nil
}

// status is what each session's status line says of where it runs: over SSH, and in the
// open mode, that too.
func (s *Server) status() string {
	if s.cfg.Open {
		return "ssh · open mode"
	}
	return "ssh"
}

func modelName(spec api.Spec) string {
	if spec.Model == "" {
		return "builtin"
	}
	return spec.Model
}

func describe(r request) string {
	if r.a == "" {
		return "picker"
	}
	return r.a + " ⇄ " + r.b
}

// termEnv is the terminal's environment from what the client sent: TERM from its pty
// request, and of the variables it chose to send only those that describe the terminal
// (COLORTERM, and what terminals set to name themselves), never anything that would steer
// the server (TMUX would make terminal detection ask the server's tmux).
func termEnv(sent []string, term string) []string {
	env := []string{"TERM=" + term}
	for _, kv := range sent {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "COLORTERM", k == "NO_COLOR", k == "TERM_PROGRAM", k == "TERM_PROGRAM_VERSION",
			k == "LANG", strings.HasPrefix(k, "LC_"):
			env = append(env, kv)
		}
	}
	return env
}

// keepAlive asks the client for a reply every so often, as sshd's ClientAliveInterval does,
// and closes the connection when none comes: a client that vanished without closing (a
// laptop lid shut, Wi-Fi gone) then frees its session instead of holding it until the idle
// timeout.
func keepAlive(ctx context.Context, sess ssh.Session) {
	conn, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn)
	if !ok {
		return
	}
	t := time.NewTicker(keepAliveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case err := <-replied:
			if err != nil {
				return // the connection is already gone
			}
		case <-time.After(keepAliveWait):
			conn.Close()
			return
		case <-ctx.Done():
			return
		}
	}
}

// Keep-alive timing: a silent client is dropped within about a minute.
const keepAliveEvery, keepAliveWait = 15 * time.Second, 45 * time.Second

// watchIdle calls stop once nobody has typed for idle.
func watchIdle(ctx context.Context, last *atomic.Int64, idle time.Duration, stop func()) {
	t := time.NewTicker(min(max(idle/8, 100*time.Millisecond), 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if time.Since(time.Unix(0, last.Load())) >= idle {
				stop()
				return
			}
		}
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
