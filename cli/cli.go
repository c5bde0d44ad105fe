// Package cli is diffsim's command line: one small type per command, each with its own flags,
// help and exit codes, and the wiring from flags to a session, the explorer or a headless
// command. main calls Run and nothing else.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
)

// Exit codes: the contract scripts rely on.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Run runs the command line args (without the program name) and returns the exit code.
func Run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, started: time.Now()}
	root := newRoot(a)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := mistypedCommand(root, args)
	if err == nil {
		err = root.ExecuteContext(ctx)
	}
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

// app is what every command shares: the streams, and when the process started.
type app struct {
	stdin          *os.File
	stdout, stderr io.Writer
	started        time.Time // for --trace-startup
}

// usageError marks errors in what the user typed (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue),
		errors.Is(err, api.ErrUsage),
		errors.Is(err, imagefile.ErrBadImage),
		errors.Is(err, fs.ErrNotExist),
		errors.Is(err, fs.ErrPermission):
		return exitUsage
	}
	return exitFailure
}

// oneLine keeps the first line of an error: diffsim promises one clear line on stderr.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// exactArgs is cobra.ExactArgs with diffsim's wording and exit code 2.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s, got %d argument(s) (see %s)", cmd.CommandPath(), what, len(args), helpRef(cmd))
		}
		return nil
	}
}

// pathReason drops the path an fs error repeats, so the line names the file once.
func pathReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// minArgs is cobra.MinimumNArgs with diffsim's wording and exit code 2.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s takes %s, got %d argument(s) (see %s)", cmd.CommandPath(), what, len(args), helpRef(cmd))
		}
		return nil
	}
}
