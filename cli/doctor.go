package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/ui/termgfx"
)

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the runtime library, execution providers, terminal graphics and caches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := a.stdout
			fmt.Fprintf(w, "diffsim     %s (%s, %s/%s, cgo %v)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, cgoEnabled)
			fmt.Fprintf(w, "cache       %s\n", engine.CacheDir())
			lib, src, err := engine.FindLibrary(a.ortLib)
			if err != nil {
				fmt.Fprintf(w, "runtime     MISSING: %v\n", err)
				return fmt.Errorf("ONNX Runtime library not found; run scripts/setup-runtime.sh")
			}
			fmt.Fprintf(w, "runtime     %s (from %s)\n", lib, src)
			rt, err := engine.Open(engine.Options{Library: a.ortLib, Device: a.device})
			if err != nil {
				fmt.Fprintf(w, "            cannot load: %v\n", err)
				return err
			}
			defer rt.Close()
			fmt.Fprintf(w, "version     ONNX Runtime %s\n", rt.Version())
			dev := rt.Device()
			fmt.Fprintf(w, "device      %s (asked: %s)\n", dev, a.device)
			if dev.Notice != "" {
				fmt.Fprintf(w, "            %s\n", dev.Notice)
			}
			fmt.Fprintf(w, "threads     %d CPUs\n", runtime.NumCPU())
			if dir, err := store.CacheDir(); err == nil {
				fmt.Fprintf(w, "hub cache   %s\n", dir)
			}
			if reg, err := store.RegistryPath(); err == nil {
				fmt.Fprintf(w, "registry    %s\n", reg)
			}
			a.doctorGraphics(cmd)
			return nil
		},
	}
}

// doctorGraphics reports what the terminal can draw, and why.
func (a *app) doctorGraphics(cmd *cobra.Command) {
	w := a.stdout
	out, _ := a.stdout.(*os.File)
	caps, err := termgfx.Detect(cmd.Context(), a.stdin, out, 500*time.Millisecond, os.Getenv)
	if p, perr := termgfx.ParseProtocol(a.graphics); perr == nil && p != termgfx.Auto {
		caps = caps.Force(p)
	}
	fmt.Fprintf(w, "graphics    %s (cell %dx%d px, terminal %dx%d cells)\n", caps.Protocol, caps.CellW, caps.CellH, caps.Cols, caps.Rows)
	for _, r := range caps.Reason {
		fmt.Fprintf(w, "            %s\n", r)
	}
	if err != nil {
		fmt.Fprintf(w, "            detection: %v\n", err)
	}
}
