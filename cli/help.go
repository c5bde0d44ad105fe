package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// setupHelp gives every command diffsim's help (flags grouped, only those that apply), the
// `help [COMMAND]` command, exit code 2 for bad usage, and "did you mean …?" for a mistyped
// flag.
func setupHelp(root *cobra.Command) {
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Help about diffsim or one of its commands",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				name := strings.Join(args, " ")
				if len(rest) > 0 {
					name = rest[0]
				}
				return unknownCommand(target, name)
			}
			return target.Help()
		},
	})
	var each func(*cobra.Command)
	each = func(c *cobra.Command) {
		c.SilenceUsage, c.SilenceErrors = true, true
		c.SuggestionsMinimumDistance = 2
		c.SetHelpFunc(func(cmd *cobra.Command, _ []string) { writeHelp(cmd.OutOrStdout(), cmd) })
		c.SetFlagErrorFunc(flagError)
		for _, sub := range c.Commands() {
			each(sub)
		}
	}
	each(root)
}

// unknownCommand is the usage error for a command name that does not exist under parent.
func unknownCommand(parent *cobra.Command, name string) error {
	if s := parent.SuggestionsFor(name); len(s) > 0 {
		return usagef("unknown command %q; did you mean %s?", name, strings.Join(s, " or "))
	}
	return usagef("unknown command %q (%s lists the commands)", name, helpRef(parent))
}

// mistypedCommand catches `diffsim scor a b` before cobra reads it as the explorer with three
// images: a first argument that is not a file but is close to a command's name.
func mistypedCommand(root *cobra.Command, args []string) error {
	cmd, rest, err := root.Find(args)
	if err != nil || cmd != root {
		return nil
	}
	first := ""
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if f := root.Flags().Lookup(name); f != nil && f.NoOptDefVal == "" && !hasValue {
				i++ // the flag's value
			}
			continue
		}
		first = a
		break
	}
	if first == "" {
		return nil
	}
	if _, err := os.Stat(first); err == nil {
		return nil // an image: the explorer
	}
	if len(root.SuggestionsFor(first)) > 0 {
		return unknownCommand(root, first)
	}
	return nil
}

// flagError turns pflag's errors into usage errors, with a suggestion for a mistyped flag and
// a pointer to the commands a flag belongs to when it is not this one's.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return usagef("%v (see %s)", err, helpRef(cmd))
	}
	best, bestD := "", 3
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if d := levenshtein.ComputeDistance(name, f.Name); d < bestD || (d == bestD && best == "") && strings.HasPrefix(f.Name, name) {
			best, bestD = f.Name, d
		}
	})
	if best != "" && bestD <= 2 {
		return usagef("unknown flag --%s; did you mean --%s?", name, best)
	}
	if where := commandsWithFlag(cmd.Root(), name); len(where) > 0 {
		return usagef("--%s does not apply to %s; it belongs to %s", name, cmd.CommandPath(), strings.Join(where, ", "))
	}
	return usagef("unknown flag --%s (see %s)", name, helpRef(cmd))
}

// helpRef is the command that shows cmd's help: "diffsim help score".
func helpRef(cmd *cobra.Command) string {
	return strings.TrimSpace("diffsim help " + helpTopic(cmd))
}

func helpTopic(cmd *cobra.Command) string {
	return strings.TrimSpace(strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()))
}

// commandsWithFlag lists the commands that have the flag name.
func commandsWithFlag(root *cobra.Command, name string) []string {
	var out []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.Flags().Lookup(name); f != nil && !f.Hidden {
			out = append(out, c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// writeHelp prints a command's help: what it does, usage, examples, subcommands, then its
// flags under their groups. Only the flags the command has are listed.
func writeHelp(w io.Writer, cmd *cobra.Command) {
	var b strings.Builder
	desc := cmd.Long
	if desc == "" {
		desc = cmd.Short
	}
	b.WriteString(strings.TrimSpace(desc) + "\n\nUsage:\n")
	if cmd.Runnable() {
		fmt.Fprintf(&b, "  %s\n", cmd.UseLine())
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "  %s COMMAND [flags]\n", cmd.CommandPath())
	}
	if cmd.Example != "" {
		b.WriteString("\nExamples:\n" + strings.TrimRight(cmd.Example, "\n") + "\n")
	}
	if cmd.HasAvailableSubCommands() {
		b.WriteString("\nCommands:\n")
		subs := cmd.Commands()
		width := 0
		for _, s := range subs {
			width = max(width, len(s.Name()))
		}
		for _, s := range subs {
			if s.IsAvailableCommand() || s.Name() == "help" {
				fmt.Fprintf(&b, "  %-*s  %s\n", width, s.Name(), s.Short)
			}
		}
	}
	groups := map[string]*pflag.FlagSet{}
	order := []string{"Flags", groupCommon, groupDiffusion, groupOutput}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		g := "Flags"
		if v := f.Annotations[groupKey]; len(v) > 0 {
			g = v[0]
		}
		if f.Name == "help" {
			g = groupOutput
		}
		if groups[g] == nil {
			groups[g] = pflag.NewFlagSet(g, pflag.ContinueOnError)
			groups[g].SortFlags = false
			if !slices.Contains(order, g) {
				order = append(order, g)
			}
		}
		groups[g].AddFlag(f)
	})
	for _, g := range order {
		if fs := groups[g]; fs != nil {
			fmt.Fprintf(&b, "\n%s:\n%s", g, fs.FlagUsagesWrapped(100))
		}
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\nRun '%s help COMMAND' for a command's flags.\n", cmd.Root().Name())
	}
	io.WriteString(w, b.String())
}
