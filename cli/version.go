package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/engine"
)

// versionCmd is `diffsim version`.
type versionCmd struct {
	*app
	ortLib string
	json   bool
}

// buildVersion is what the binary knows about its own build.
type buildVersion struct {
	Module   string  `json:"module"`
	Version  string  `json:"version"`  // the module version: a tag for `go install …@v1.2.3`, (devel) for a checkout
	Revision *string `json:"revision"` // the VCS commit; null when the build was not stamped
	Time     *string `json:"revision_time"`
	Modified *bool   `json:"modified"` // uncommitted changes in the checkout that was built
}

// versionReport is `version --json`.
type versionReport struct {
	buildVersion
	Go           string  `json:"go"`
	ORTVersion   *string `json:"onnxruntime_version"` // null when the library cannot be loaded
	ORTError     *string `json:"onnxruntime_error"`
	ORTSupported string  `json:"onnxruntime_expected"`
}

func newVersionCmd(a *app) *cobra.Command {
	c := &versionCmd{app: a}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print diffsim's version, revision and the ONNX Runtime version",
		Args:  exactArgs(0, "no arguments"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.run() },
	}
	f := cmd.Flags()
	f.StringVar(&c.ortLib, "ort-lib", "", "ONNX Runtime library (default: $ONNXRUNTIME_LIB, then the one scripts/setup-runtime.sh fetched)")
	f.BoolVar(&c.json, "json", false, "print one JSON object")
	inGroup(f, groupCommon, "ort-lib")
	inGroup(f, groupOutput, "json")
	return cmd
}

func (c *versionCmd) run() error {
	r := versionReport{buildVersion: readBuild(), ORTSupported: engine.RuntimeVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		r.Go = bi.GoVersion
	}
	// Loading the library on the CPU is the only way to ask its version; it costs milliseconds.
	if rt, err := engine.Open(engine.Options{Library: c.ortLib, Device: "cpu"}); err != nil {
		r.ORTError = ptr(oneLine(err))
	} else {
		r.ORTVersion = ptr(rt.Version())
		rt.Close()
	}
	if c.json {
		return json.NewEncoder(c.stdout).Encode(r)
	}
	fmt.Fprintln(c.stdout, r.line())
	return nil
}

// line is the version for people: "diffsim (devel) revision 1a2b3c4d5e6f (2026-12-03T20:00:00Z,
// modified), go1.26.8, ONNX Runtime 1.30.0".
func (r versionReport) line() string {
	s := "diffsim " + r.Version
	switch {
	case r.Revision == nil:
		s += " (revision unknown: built without VCS stamping)"
	default:
		rev := *r.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " revision " + rev
		if r.Time != nil {
			s += " (" + *r.Time
			if r.Modified != nil && *r.Modified {
				s += ", modified"
			}
			s += ")"
		}
	}
	if r.Go != "" {
		s += ", " + r.Go
	}
	if r.ORTVersion != nil {
		return s + ", ONNX Runtime " + *r.ORTVersion
	}
	return s + fmt.Sprintf(", ONNX Runtime not loaded (%s; diffsim expects %s)", *r.ORTError, r.ORTSupported)
}

// readBuild reads the module version and VCS stamp the Go toolchain put into the binary.
func readBuild() buildVersion {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return buildVersion{Module: "github.com/diffsim/diffsim", Version: "unknown"}
	}
	return versionFrom(bi)
}

func versionFrom(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Module: bi.Main.Path, Version: bi.Main.Version}
	if v.Version == "" {
		v.Version = "(devel)" // a test binary, or a build outside module mode
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = ptr(s.Value)
		case "vcs.time":
			v.Time = ptr(s.Value)
		case "vcs.modified":
			v.Modified = ptr(s.Value == "true")
		}
	}
	return v
}

// buildID names this build for `diffsim serve` and its clients, which compute themselves when
// the server is another build (their answers could differ): the version and the VCS revision;
// for a build without a revision, or with uncommitted changes, also the size and time of the
// executable, so that two different development builds do not pass for one.
func buildID() string {
	b := readBuild()
	id := b.Version
	if b.Revision != nil {
		rev := *b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		id += " " + rev
		if b.Modified == nil || !*b.Modified {
			return id
		}
		id += "+dirty"
	}
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			id += fmt.Sprintf(" (build %d@%d)", fi.Size(), fi.ModTime().Unix())
		}
	}
	return id
}
