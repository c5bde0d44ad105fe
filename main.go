// Command diffsim explores visual similarity measured inside attention layers: the Aligned
// Attention Score of DiffSim (ICCV 2025). See README.md; the command line lives in cli.
package main

import (
	"os"

	"github.com/diffsim/diffsim/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
