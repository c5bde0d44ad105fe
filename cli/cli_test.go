package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diffsim/diffsim/engine"
)

var (
	imgA = filepath.Join("..", "testdata", "samples", "grass.png")
	imgB = filepath.Join("..", "testdata", "samples", "gravel.png")
)

// TestCommandLine runs the command line in process, as main does, and checks the exit code and
// what reaches each stream. None of these cases loads a model.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.png")
	if err := os.WriteFile(notImage, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "secret.png")
	data, _ := os.ReadFile(imgA)
	if err := os.WriteFile(unreadable, data, 0o000); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // parts of stdout
		not    []string // not in stdout
		stderr string   // part of stderr, which must then be one line; "" for empty stderr
	}{
		{name: "--version", args: []string{"--version"}, code: 0, stdout: []string{"diffsim ", "ONNX Runtime"}},
		{name: "help", args: []string{"help"}, code: 0,
			stdout: []string{"Usage:", "diffsim [flags] IMAGE_A IMAGE_B", "Commands:", "score", "sweep", "bench", "version", "Common flags:", "Diffusion model flags:", "Output flags:", "--export-dir"}},
		{name: "help score", args: []string{"help", "score"}, code: 0,
			stdout: []string{"diffsim score IMAGE_A IMAGE_B", "--json", "--prompt", "Common flags:", "feature cosine"}},
		{name: "score --help", args: []string{"score", "--help"}, code: 0, stdout: []string{"diffsim score IMAGE_A IMAGE_B", "Output flags:"}},
		{name: "help models list", args: []string{"help", "models", "list"}, code: 0, stdout: []string{"diffsim models list", "--json"}},
		{name: "flags shown only where they apply", args: []string{"help", "bench"}, code: 0,
			stdout: []string{"--model", "--shard", "--t"},
			not:    []string{"--prompt", "--cfg", "--ip-adapter", "--graphics", "--export-dir", "Diffusion model flags"}},
		{name: "--t help without the sentinel default", args: []string{"help", "score"}, code: 0,
			stdout: []string{"DDPM timestep 0–999 (default: the model's; 101 for the built-in model)\n"}, not: []string{"(default -1)", "(default 0)"}},
		{name: "help for an unknown command", args: []string{"help", "scor"}, code: 2, stderr: `unknown command "scor"; did you mean score?`},
		{name: "mistyped command", args: []string{"scor", "a", "b"}, code: 2, stderr: `unknown command "scor"; did you mean score?`},
		{name: "mistyped command with flags", args: []string{"--size", "64", "swep", imgA, imgB, "--json"}, code: 2, stderr: "did you mean sweep?"},
		{name: "mistyped subcommand", args: []string{"models", "lst"}, code: 2, stderr: `unknown command "lst"; did you mean list?`},
		{name: "mistyped flag", args: []string{"score", imgA, imgB, "--jsn"}, code: 2, stderr: "unknown flag --jsn; did you mean --json?"},
		{name: "flag of another command", args: []string{"bench", "triplet", dir, "--prompt", "x"}, code: 2, stderr: "--prompt does not apply to diffsim bench; it belongs to diffsim, diffsim baseline build, diffsim rank, diffsim score"},
		{name: "no arguments", args: nil, code: 2, stderr: "takes two images"},
		{name: "one image", args: []string{imgA}, code: 2, stderr: "takes two images"},
		{name: "negative t", args: []string{"score", imgA, imgB, "--t", "-5"}, code: 2, stderr: `invalid argument "-5" for "--t" flag: -5 is outside 0..999`},
		{name: "t far below", args: []string{"score", imgA, imgB, "--t", "-500"}, code: 2, stderr: "-500 is outside 0..999"},
		{name: "t above", args: []string{"score", imgA, imgB, "--t", "1000"}, code: 2, stderr: "1000 is outside 0..999"},
		{name: "step 0", args: []string{"score", imgA, imgB, "--step", "0"}, code: 2, stderr: "0 is outside 1..1000"},
		{name: "t in the explorer", args: []string{imgA, imgB, "--t", "-1"}, code: 2, stderr: "-1 is outside 0..999"},
		{name: "t in rank", args: []string{"rank", imgA, dir, "--t", "-5"}, code: 2, stderr: "outside 0..999"},
		{name: "t and step", args: []string{"score", imgA, imgB, "--t", "5", "--step", "5"}, code: 2, stderr: "give --t or --step, not both"},
		{name: "a folder as an image", args: []string{"score", dir, imgB}, code: 2, stderr: dir + ": a folder, not an image file"},
		{name: "a folder in the explorer", args: []string{dir, imgB}, code: 2, stderr: dir + ": a folder, not an image file"},
		{name: "a missing image", args: []string{"score", imgA, filepath.Join(dir, "nope.png")}, code: 2, stderr: "nope.png: no such file or directory"},
		{name: "not an image", args: []string{"score", notImage, imgB}, code: 2, stderr: "notes.png: not a PNG, JPEG, WebP, BMP, TIFF or GIF image"},
		{name: "an unreadable image", args: []string{"score", unreadable, imgB}, code: 2, stderr: "secret.png: permission denied"},
		{name: "the explorer without a terminal", args: []string{imgA, imgB}, code: 2, stderr: "the explorer needs a terminal; use `diffsim score`"},
		{name: "the explorer, named", args: []string{"explore", imgA, imgB}, code: 2, stderr: "the explorer needs a terminal; use `diffsim score`"},
		{name: "a bad device", args: []string{"score", imgA, imgB, "--device", "tpu"}, code: 2, stderr: `bad --device "tpu"`},
		{name: "a bad metric", args: []string{"score", imgA, imgB, "--metric", "l2"}, code: 2, stderr: `--metric "l2": want aas, cos or mse`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "an unreadable image" && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			var stdout, stderr bytes.Buffer
			code := Run(tc.args, nil, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, not := range tc.not {
				if strings.Contains(stdout.String(), not) {
					t.Errorf("stdout has %q:\n%s", not, stdout.String())
				}
			}
			errOut := stderr.String()
			if tc.args == nil { // diffsim alone: the usage first, then the one line
				errOut = errOut[strings.LastIndex(strings.TrimSuffix(errOut, "\n"), "\n")+1:]
			}
			switch {
			case tc.stderr == "" && errOut != "":
				t.Errorf("stderr %q, want none", errOut)
			case tc.stderr != "" && (!strings.Contains(errOut, tc.stderr) || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "diffsim: ")):
				t.Errorf("stderr %q, want one line with %q", errOut, tc.stderr)
			}
		})
	}
}

// TestImageFilesRefusedAtOnce: a path that names a FIFO, a device or a file far larger than
// any photograph is refused with one line and exit code 2 before anything reads it, in every
// command that takes images; none of them waits on the FIFO (which has no writer) or reads
// /dev/zero's endless bytes.
func TestImageFilesRefusedAtOnce(t *testing.T) {
	t.Setenv("DIFFSIM_SOCKET", filepath.Join(t.TempDir(), "none.sock"))
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.png")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.png")
	data, _ := os.ReadFile(imgA)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 2<<30); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"score, a FIFO", []string{"score", fifo, imgB}, fifo + ": a named pipe (FIFO), not an image file"},
		{"score, a FIFO second", []string{"score", imgA, fifo, "--json"}, "a named pipe (FIFO), not an image file"},
		{"sweep, a FIFO", []string{"sweep", fifo, imgB}, "a named pipe (FIFO)"},
		{"rank, a FIFO query", []string{"rank", fifo, dir}, "a named pipe (FIFO)"},
		{"the explorer, a FIFO", []string{fifo, imgB}, "a named pipe (FIFO)"},
		{"score, /dev/zero", []string{"score", "/dev/zero", imgB}, "/dev/zero: a character device, not an image file"},
		{"score, a 2 GiB file", []string{"score", big, imgB}, "big.png: 2.0 GiB, over the 256 MiB limit on image files (raise it with --max-image)"},
		{"score, over --max-image", []string{"score", imgA, imgB, "--max-image", "1KiB"}, "over the 1 KiB limit on image files"},
		{"a bad --max-image", []string{"score", imgA, imgB, "--max-image", "lots"}, `invalid argument "lots" for "--max-image"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- Run(tc.args, nil, &stdout, &stderr) }()
			var code int
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("diffsim %v still running after 30 s", tc.args)
			}
			errOut := stderr.String()
			if code != 2 || !strings.Contains(errOut, tc.stderr) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, errOut, tc.stderr)
			}
		})
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkKeys fails on any key, at any depth, that is not snake_case.
func checkKeys(t *testing.T, where string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !snakeCase.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", where, k)
			}
			checkKeys(t, where+"."+k, e)
		}
	case []any:
		for _, e := range v {
			checkKeys(t, where+"[]", e)
		}
	}
}

// TestJSONOutputs: every --json output is snake_case, with the keys scripts read.
func TestJSONOutputs(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, tc := range []struct {
		args []string
		keys []string
	}{
		{[]string{"score", imgA, imgA, "--json", "--size", "64"}, []string{"score", "a_to_b", "b_to_a", "feature_cosine", "mse", "global_cosine", "meaningless", "t", "step", "layer_index", "image_a", "higher_is_more_similar", "device"}},
		{[]string{"models", "list", "--json"}, []string{"name", "kind", "path", "size_bytes", "source"}},
		{[]string{"doctor", "--json", "--graphics", "none"}, []string{"version", "revision", "runtime", "gpu_present", "device", "device_notice", "graphics"}},
		{[]string{"version", "--json"}, []string{"module", "version", "revision", "onnxruntime_version"}},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(tc.args, nil, &stdout, &stderr)
			if tc.args[0] != "version" {
				skipWithoutRuntime(t, code, stderr.String())
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if tc.args[0] == "score" && !engine.GPUPresent() && stderr.Len() != 0 {
				t.Errorf("score --json on a machine without a GPU wrote to stderr: %q", stderr.String())
			}
			var v any
			if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, stdout.String())
			}
			checkKeys(t, tc.args[0], v)
			obj, ok := v.(map[string]any)
			if list, isList := v.([]any); isList && len(list) > 0 {
				obj, ok = list[0].(map[string]any)
			}
			if !ok {
				t.Fatalf("not an object or a list of objects: %s", stdout.String())
			}
			for _, k := range tc.keys {
				if _, ok := obj[k]; !ok {
					t.Errorf("no %q in %s", k, stdout.String())
				}
			}
		})
	}
}

func TestVersionLine(t *testing.T) {
	rev, when, modified := "0123456789abcdef0123", "2026-12-03T20:00:00Z", true
	ort := "1.30.0"
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		ort  *string
		want string
	}{
		{"stamped checkout", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/diffsim/diffsim", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: "true"}}},
			&ort, "diffsim (devel) revision 0123456789ab (2026-12-03T20:00:00Z, modified), go1.26.8, ONNX Runtime 1.30.0"},
		{"go install of a tag", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/diffsim/diffsim", Version: "v1.2.3"}},
			nil, "diffsim v1.2.3 (revision unknown: built without VCS stamping), go1.26.8, ONNX Runtime not loaded (no library; diffsim expects " + engine.RuntimeVersion + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := versionReport{buildVersion: versionFrom(&tc.bi), Go: tc.bi.GoVersion, ORTVersion: tc.ort, ORTSupported: engine.RuntimeVersion}
			if tc.ort == nil {
				r.ORTError = ptr("no library")
			}
			if got := r.line(); got != tc.want {
				t.Errorf("line\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	_ = modified
}

// skipWithoutRuntime applies enginetest's rule to a run that failed for want of ONNX Runtime:
// a build without cgo skips; a missing library skips, but fails in CI.
func skipWithoutRuntime(t testing.TB, code int, stderr string) {
	t.Helper()
	switch {
	case code == 0:
	case strings.Contains(stderr, engine.ErrNoCgo.Error()):
		t.Skip("built without cgo: no ONNX Runtime")
	case strings.Contains(stderr, engine.ErrNoLibrary.Error()) && os.Getenv("CI") == "":
		t.Skipf("no ONNX Runtime library (scripts/setup-runtime.sh fetches it): %s", stderr)
	}
}
