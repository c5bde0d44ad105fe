package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/session/serve"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// doctorCmd is `diffsim doctor`: what this machine gives diffsim.
type doctorCmd struct {
	*app
	device, ortLib, graphics string
	json                     bool
}

// doctorReport is what doctor finds; `doctor --json` prints it. A value doctor could not find
// is null.
type doctorReport struct {
	Version    string         `json:"version"`
	Revision   *string        `json:"revision"`
	Go         string         `json:"go"`
	Platform   string         `json:"platform"`
	Cgo        bool           `json:"cgo"`
	CPUs       int            `json:"cpus"`
	CacheDir   string         `json:"cache_dir"`
	HubCache   *string        `json:"hub_cache"`
	Registry   *string        `json:"registry"`
	Runtime    runtimeReport  `json:"runtime"`
	GPUPresent bool           `json:"gpu_present"`
	Device     *string        `json:"device"`       // the device sessions would run on; null without a runtime
	DeviceAsk  string         `json:"device_asked"` // --device
	Notice     *string        `json:"device_notice"`
	Graphics   graphicsReport `json:"graphics"`
	Server     serverReport   `json:"server"`
}

// serverReport is the `diffsim serve` that commands would use: the one on the default socket.
type serverReport struct {
	Socket  string  `json:"socket"`
	Running bool    `json:"running"`
	PID     *int    `json:"pid"` // from the socket's peer credentials, not from what it says
	Version *string `json:"version"`
	Models  *int    `json:"models"`
	Used    bool    `json:"used"`  // commands send their work to it
	Error   *string `json:"error"` // why they do not, when it runs
}

type runtimeReport struct {
	Library *string `json:"library"`
	Source  *string `json:"source"`
	Version *string `json:"version"`
	Error   *string `json:"error"`
}

type graphicsReport struct {
	Protocol string   `json:"protocol"`
	CellW    int      `json:"cell_width"`
	CellH    int      `json:"cell_height"`
	Cols     int      `json:"columns"`
	Rows     int      `json:"rows"`
	Reasons  []string `json:"reasons"`
	Error    *string  `json:"error"`
}

func newDoctorCmd(a *app) *cobra.Command {
	c := &doctorCmd{app: a}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the runtime library, execution providers, terminal graphics and caches",
		Long: `doctor reports what diffsim finds on this machine: its build, the ONNX Runtime library and
its version, the device sessions run on (and why, when it is not the GPU), terminal graphics
and the model caches. It exits 1 when the runtime library cannot be loaded.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&c.device, "device", "auto", "the device to try: auto, cpu, cuda or cuda:N")
	f.StringVar(&c.ortLib, "ort-lib", "", "ONNX Runtime library (default: $ONNXRUNTIME_LIB, then the one scripts/setup-runtime.sh fetched)")
	f.StringVar(&c.graphics, "graphics", "auto", "report as if terminal graphics were forced: auto, sixel, kitty, halfblock, quadrant or none")
	f.BoolVar(&c.json, "json", false, "print one JSON object")
	inGroup(f, groupCommon, "device", "ort-lib")
	inGroup(f, groupOutput, "graphics", "json")
	return cmd
}

func (c *doctorCmd) run(cmd *cobra.Command) error {
	b := readBuild()
	r := doctorReport{
		Version: b.Version, Revision: b.Revision, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Cgo: cgoEnabled, CPUs: runtime.NumCPU(), CacheDir: engine.CacheDir(),
		GPUPresent: engine.GPUPresent(), DeviceAsk: c.device,
	}
	if dir, err := store.CacheDir(); err == nil {
		r.HubCache = &dir
	}
	if reg, err := store.RegistryPath(); err == nil {
		r.Registry = &reg
	}
	var failed error
	if lib, src, err := engine.FindLibrary(c.ortLib); err != nil {
		failed = fmt.Errorf("ONNX Runtime library not found; run scripts/setup-runtime.sh")
		r.Runtime.Error = ptr(oneLine(err))
	} else {
		r.Runtime.Library, r.Runtime.Source = &lib, ptr(fmt.Sprint(src))
		rt, err := engine.Open(engine.Options{Library: c.ortLib, Device: c.device})
		if err != nil {
			failed = err
			r.Runtime.Error = ptr(oneLine(err))
		} else {
			r.Runtime.Version = ptr(rt.Version())
			dev := rt.Device()
			r.Device = ptr(dev.String())
			if dev.Notice != "" {
				r.Notice = &dev.Notice
			}
			rt.Close()
		}
	}
	r.Graphics = c.detectGraphics(cmd)
	r.Server = probeServer(cmd.Context())
	if c.json {
		if err := json.NewEncoder(c.stdout).Encode(r); err != nil {
			return err
		}
	} else {
		writeDoctor(c.stdout, r)
	}
	return failed
}

func writeDoctor(w io.Writer, r doctorReport) {
	rev := "unknown"
	if r.Revision != nil {
		rev = *r.Revision
	}
	fmt.Fprintf(w, "diffsim     %s (revision %s; %s, %s, cgo %v)\n", r.Version, rev, r.Go, r.Platform, r.Cgo)
	fmt.Fprintf(w, "cache       %s\n", r.CacheDir)
	switch {
	case r.Runtime.Library == nil:
		fmt.Fprintf(w, "runtime     MISSING: %s\n", *r.Runtime.Error)
	case r.Runtime.Version == nil:
		fmt.Fprintf(w, "runtime     %s (from %s)\n            cannot load: %s\n", *r.Runtime.Library, *r.Runtime.Source, *r.Runtime.Error)
	default:
		fmt.Fprintf(w, "runtime     %s (from %s)\n", *r.Runtime.Library, *r.Runtime.Source)
		fmt.Fprintf(w, "version     ONNX Runtime %s\n", *r.Runtime.Version)
		fmt.Fprintf(w, "device      %s (asked: %s; NVIDIA GPU present: %v)\n", *r.Device, r.DeviceAsk, r.GPUPresent)
		if r.Notice != nil {
			fmt.Fprintf(w, "            %s\n", *r.Notice)
		}
	}
	fmt.Fprintf(w, "threads     %d CPUs\n", r.CPUs)
	if r.HubCache != nil {
		fmt.Fprintf(w, "hub cache   %s\n", *r.HubCache)
	}
	if r.Registry != nil {
		fmt.Fprintf(w, "registry    %s\n", *r.Registry)
	}
	writeServer(w, r.Server)
	g := r.Graphics
	fmt.Fprintf(w, "graphics    %s (cell %dx%d px, terminal %dx%d cells)\n", g.Protocol, g.CellW, g.CellH, g.Cols, g.Rows)
	for _, reason := range g.Reasons {
		fmt.Fprintf(w, "            %s\n", reason)
	}
	if g.Error != nil {
		fmt.Fprintf(w, "            detection: %s\n", *g.Error)
	}
}

// detectGraphics reports what the terminal can draw, and why.
func (c *doctorCmd) detectGraphics(cmd *cobra.Command) graphicsReport {
	out, _ := c.stdout.(*os.File)
	caps, err := termgfx.Detect(cmd.Context(), c.stdin, out, 500*time.Millisecond, os.Getenv)
	if p, perr := termgfx.ParseProtocol(c.graphics); perr == nil && p != termgfx.Auto {
		caps = caps.Force(p)
	}
	g := graphicsReport{Protocol: fmt.Sprint(caps.Protocol), CellW: caps.CellW, CellH: caps.CellH, Cols: caps.Cols, Rows: caps.Rows, Reasons: caps.Reason}
	if g.Reasons == nil {
		g.Reasons = []string{}
	}
	if err != nil {
		g.Error = ptr(err.Error())
	}
	return g
}

func ptr[T any](v T) *T { return &v }

// probeServer looks for the server commands would use, with the checks they make.
func probeServer(ctx context.Context) serverReport {
	sock := serve.SocketPath()
	info, err := api.Probe(ctx, sock, buildID())
	r := serverReport{Socket: sock, Running: !errors.Is(err, api.ErrNoServer), Used: err == nil}
	if info.PID > 0 {
		r.PID = &info.PID
	}
	if info.API > 0 {
		r.Version, r.Models = &info.Version, &info.Models
	}
	if err != nil && r.Running {
		r.Error = ptr(oneLine(err))
	}
	return r
}

func writeServer(w io.Writer, s serverReport) {
	switch {
	case !s.Running:
		fmt.Fprintf(w, "server      none on %s (commands compute themselves; diffsim serve keeps models warm)\n", s.Socket)
		return
	case s.PID != nil && s.Version != nil:
		build := "diffsim " + *s.Version
		if *s.Version == "" {
			build = "a build that does not say its version"
		}
		fmt.Fprintf(w, "server      pid %d, %s, on %s (%d models loaded)\n", *s.PID, build, s.Socket, *s.Models)
	default:
		fmt.Fprintf(w, "server      on %s\n", s.Socket)
	}
	if s.Error != nil {
		fmt.Fprintf(w, "            not used: %s\n", *s.Error)
	}
}
