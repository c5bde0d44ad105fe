//go:build !cgo

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "sdbench needs cgo (ONNX Runtime)")
	os.Exit(1)
}
