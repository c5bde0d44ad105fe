package main

import "github.com/spf13/cobra"

// researchCommands are the headless research commands: sweep, rank, bench.
func (a *app) researchCommands() []*cobra.Command {
	return nil
}
