//go:build !cgo

package cli

const cgoEnabled = false
