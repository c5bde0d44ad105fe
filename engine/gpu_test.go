package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNvidiaDriverIn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  bool
	}{
		{"no driver", []string{"dev/null", "proc/cpuinfo"}, false},
		{"kernel module", []string{"proc/driver/nvidia/version"}, true},
		{"device node only (a container)", []string{"dev/nvidia0", "dev/nvidiactl"}, true},
		{"control node without a GPU", []string{"dev/nvidiactl", "dev/nvidia-uvm"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := nvidiaDriverIn(root); got != tc.want {
				t.Errorf("nvidiaDriverIn(%v) = %v, want %v", tc.files, got, tc.want)
			}
		})
	}
}

func TestCUDAMessages(t *testing.T) {
	trace := errors.New("Error creating session options: [ONNXRuntimeError] : 1 : FAIL : Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory\n  at onnxruntime::ProviderLibrary::Get()")
	noProvider := errors.New("[ONNXRuntimeError] : 1 : FAIL : libonnxruntime_providers_shared.so: cannot open shared object file: No such file or directory")
	for _, tc := range []struct {
		gpu  bool
		err  error
		want string
	}{
		{false, nil, "no NVIDIA GPU driver"},
		{true, noProvider, "has no CUDA provider"},
		{true, trace, "libcublasLt.so.13 is missing"},
		{true, errors.New("CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=x ; file=/onnxruntime_src/cuda_call.cc"), "could not start CUDA"},
	} {
		got := cudaError(1, tc.gpu, tc.err).Error()
		if !strings.Contains(got, tc.want) || !strings.HasPrefix(got, "--device cuda:1: CUDA unavailable") || strings.ContainsAny(got, "\n[]") || strings.Contains(got, "onnxruntime::") {
			t.Errorf("cudaError(gpu %v, %q) = %q; want one line with %q and no runtime internals", tc.gpu, tc.err, got, tc.want)
		}
		if !errors.Is(cudaError(0, tc.gpu, tc.err), ErrNoCUDA) {
			t.Errorf("cudaError does not wrap ErrNoCUDA")
		}
		if tc.gpu {
			if n := cudaNotice(tc.err); !strings.HasPrefix(n, "a GPU is present but unused: "+cudaReason(true, tc.err)) || strings.Contains(n, "\n") {
				t.Errorf("cudaNotice = %q", n)
			}
		}
	}
}
