// Command diffsim explores visual similarity measured inside attention layers: the Aligned
// Attention Score of DiffSim (ICCV 2025). See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// Exit codes: the contract scripts rely on.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	cmd := newRootCommand(&app{stdin: stdin, stdout: stdout, stderr: stderr, started: time.Now()})
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "diffsim: interrupted")
		return exitFailure
	}
	fmt.Fprintln(stderr, "diffsim:", oneLine(err))
	return exitCode(err)
}
