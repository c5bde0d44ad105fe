package main

import (
	"github.com/spf13/cobra"
)

func (a *app) modelsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, inspect, pull and import models",
	}
	return cmd
}
