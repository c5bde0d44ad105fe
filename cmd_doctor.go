package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/engine"
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
			if hf := os.Getenv("HF_HOME"); hf != "" {
				fmt.Fprintf(w, "HF_HOME     %s\n", hf)
			}
			return nil
		},
	}
}
