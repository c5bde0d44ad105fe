package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// GPUPresent reports whether this machine has an NVIDIA GPU with its driver loaded. It decides
// whether --device auto tries CUDA at all: on a machine without a GPU, the CPU is the expected
// device and deserves no notice.
func GPUPresent() bool { return nvidiaDriverIn("/") }

// nvidiaDriverIn looks for the driver's traces under root ("/" but in tests): the kernel
// module's /proc/driver/nvidia, or a /dev/nvidia0… device node (containers get the nodes
// without /proc/driver).
func nvidiaDriverIn(root string) bool {
	if _, err := os.Stat(filepath.Join(root, "proc", "driver", "nvidia")); err == nil {
		return true
	}
	nodes, _ := filepath.Glob(filepath.Join(root, "dev", "nvidia[0-9]*"))
	return len(nodes) > 0
}

// missingLibrary finds the shared object the loader could not open in an ONNX Runtime
// provider error ("libcublasLt.so.13: cannot open shared object file").
var missingLibrary = regexp.MustCompile(`([A-Za-z0-9_.+-]+\.so[0-9.]*): cannot open shared object file`)

// cudaReason says in a few words, without the runtime's internals, why CUDA could not start.
func cudaReason(gpu bool, err error) string {
	if !gpu {
		return "no NVIDIA GPU driver on this machine"
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if m := missingLibrary.FindStringSubmatch(msg); m != nil {
		if strings.Contains(m[1], "providers_cuda") || strings.Contains(m[1], "providers_shared") {
			return "this ONNX Runtime build has no CUDA provider"
		}
		return m[1] + " is missing (install the CUDA and cuDNN libraries this ONNX Runtime build needs)"
	}
	return "ONNX Runtime could not start CUDA"
}

// cudaNotice is the one line --device auto prints when a GPU is present but the runtime cannot
// use it.
func cudaNotice(err error) string {
	return fmt.Sprintf("a GPU is present but unused: %s; running on CPU (set ONNXRUNTIME_LIB to a GPU build of ONNX Runtime, or give --device cpu)", cudaReason(true, err))
}

// ErrNoCUDA is wrapped by the error of an explicit --device cuda that cannot be honoured.
var ErrNoCUDA = errors.New("CUDA unavailable")

// cudaError is the one-line error of an explicit --device cuda[:ID] that cannot be honoured.
func cudaError(id int, gpu bool, err error) error {
	return fmt.Errorf("--device cuda:%d: %w: %s; use --device cpu, or a GPU build of ONNX Runtime (ONNXRUNTIME_LIB)", id, ErrNoCUDA, cudaReason(gpu, err))
}
