package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// Device is an execution provider: the CPU, or a CUDA device.
type Device struct {
	Kind   string // "cpu" or "cuda"
	ID     int    // CUDA device index
	Auto   bool   // chosen by --device auto
	Notice string // why auto fell back to the CPU, for a one-line notice
}

func (d Device) String() string {
	if d.Kind == "cuda" {
		return fmt.Sprintf("cuda:%d", d.ID)
	}
	return "cpu"
}

// ParseDevice reads the --device flag: auto (or empty), cpu, cuda, cuda:ID.
func ParseDevice(s string) (Device, error) {
	switch s = strings.ToLower(strings.TrimSpace(s)); {
	case s == "" || s == "auto":
		return Device{Kind: "cuda", Auto: true}, nil
	case s == "cpu":
		return Device{Kind: "cpu"}, nil
	case s == "cuda" || s == "gpu":
		return Device{Kind: "cuda"}, nil
	case strings.HasPrefix(s, "cuda:"):
		id, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || id < 0 {
			return Device{}, fmt.Errorf("bad --device %q: want auto, cpu, cuda or cuda:N", s)
		}
		return Device{Kind: "cuda", ID: id}, nil
	}
	return Device{}, fmt.Errorf("bad --device %q: want auto, cpu, cuda or cuda:N", s)
}
