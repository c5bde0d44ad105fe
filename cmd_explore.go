package main

import (
	"github.com/spf13/cobra"
)

// explore opens the interactive explorer on a pair of images.
func (a *app) explore(cmd *cobra.Command, imageA, imageB string) error {
	return usagef("the explorer is not built yet; use diffsim score %s %s", imageA, imageB)
}
