package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/features/builtin"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/session"
)

// modelsCmd is `diffsim models` and its subcommands.
type modelsCmd struct {
	*app
	json                    bool
	size                    int
	ipAdapter, imageEncoder string
	quiet                   bool
}

// modelEntry is one line of `models list --json`.
type modelEntry struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	Bytes  int64  `json:"size_bytes"`
	Source string `json:"source"`
	Repo   string `json:"repo"`
	Commit string `json:"commit"`
}

func newModelsCmd(app *app) *cobra.Command {
	a := &modelsCmd{app: app}
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, inspect, pull and import models",
		Long: `Models come from the Hugging Face cache (shared with Python tools: $HF_HUB_CACHE,
$HF_HOME/hub or ~/.cache/huggingface/hub), from folders or .onnx files you name, or are the
built-in model. 'pull' downloads a known model (sd15, dinov2-small, dinov2-base, dinov2-large,
clip-b32, clip-b16, clip-l14) or any org/repo; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are
honoured.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	asJSON := &a.json
	list := &cobra.Command{
		Use:   "list",
		Short: "Models available locally: built-in, in the cache, imported",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := store.List(store.Options{})
			if err != nil {
				return err
			}
			all := append([]store.Entry{{Name: store.Builtin, Kind: store.KindBuiltin, Source: "generated", Path: "(generated in Go at start-up)"}}, entries...)
			if *asJSON {
				out := make([]modelEntry, len(all))
				for i, e := range all {
					out[i] = modelEntry{Name: e.Name, Kind: string(e.Kind), Path: e.Path, Bytes: e.Size, Source: e.Source, Repo: e.Repo, Commit: e.Commit}
				}
				return json.NewEncoder(a.stdout).Encode(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tSIZE\tSOURCE\tPATH")
			for _, e := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, humanBytes(e.Size), e.Source, e.Path)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(asJSON, "json", false, "print a JSON list (snake_case keys)")

	inspect := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Show a model's inputs, outputs and attention layers (no weights are loaded)",
		Long: `Show a model's inputs, outputs and attention layers (no weights are loaded). With
--ip-adapter (and optionally --image-encoder) the adapter's IP attention is added to a Stable
Diffusion U-Net first, so the table lists the .ip layers DiffSim-C scores.`,
		Args: exactArgs(1, "a model"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ins, err := session.Inspect(args[0], session.InspectOptions{Size: a.size, IPAdapter: a.ipAdapter, ImageEncoder: a.imageEncoder, Families: families.All()})
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(a.stdout).Encode(ins)
			}
			a.printInspection(ins)
			return nil
		},
	}
	inspect.Flags().BoolVar(asJSON, "json", false, "print JSON")
	inspect.Flags().IntVar(&a.size, "size", 0, "working size in pixels the token grids are shown at (default: the model's)")
	inspect.Flags().StringVar(&a.ipAdapter, "ip-adapter", "", "DiffSim-C: add this IP-Adapter Plus's IP attention to a Stable Diffusion U-Net first")
	inspect.Flags().StringVar(&a.imageEncoder, "image-encoder", "", "DiffSim-C: the CLIP ViT-H/14 image encoder as ONNX (with --ip-adapter)")
	inGroup(inspect.Flags(), groupDiffusion, "ip-adapter", "image-encoder")
	inGroup(inspect.Flags(), groupOutput, "json")
	inGroup(list.Flags(), groupOutput, "json")

	var include []string
	pull := &cobra.Command{
		Use:   "pull NAME|ORG/REPO[@REVISION]",
		Short: "Download a model into the Hugging Face cache (resumable, verified)",
		Args:  exactArgs(1, "a model name or org/repo"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var bar *store.ProgressBar
			if f, ok := a.stderr.(*os.File); ok && !a.quiet {
				bar = store.NewProgressBar(f)
			}
			opts := store.PullOptions{Include: include}
			if bar != nil {
				opts.Progress = bar.Report
			}
			if !a.quiet {
				// A hub that does not answer would otherwise leave the screen still for the
				// whole back-off (15 s over five tries).
				opts.OnRetry = func(what string, try, tries int, wait time.Duration, err error) {
					if bar != nil {
						bar.Close() // the line below the bar; the next report draws a new one
					}
					fmt.Fprintf(a.stderr, "diffsim: could not %s (%v); retrying in %s (try %d of %d)\n", what, oneLine(err), wait.Round(time.Second), try, tries)
				}
			}
			snap, err := store.Pull(cmd.Context(), args[0], opts)
			if bar != nil {
				bar.Close()
			}
			if err != nil {
				if cmd.Context().Err() != nil {
					return fmt.Errorf("pull interrupted; run the same command again to resume")
				}
				if strings.HasPrefix(err.Error(), "unknown model") {
					return usagef("%v", err)
				}
				return err
			}
			fmt.Fprintf(a.stdout, "%s: %d files at %s (commit %s)\n", snap.Name, len(snap.Files), snap.Dir, snap.Commit)
			return nil
		},
	}
	pull.Flags().StringSliceVar(&include, "include", nil, "only files matching these globs (repeatable)")
	pull.Flags().BoolVar(&a.quiet, "quiet", false, "no progress bar")
	inGroup(pull.Flags(), groupOutput, "quiet")

	var name string
	imp := &cobra.Command{
		Use:   "import PATH",
		Short: "Register a local model folder or .onnx file under a name",
		Args:  exactArgs(1, "a model folder or .onnx file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := store.Import(args[0], name); err != nil {
				return usagef("%v", err)
			}
			reg, _ := store.RegistryPath()
			fmt.Fprintf(a.stdout, "imported %s (registry %s)\n", args[0], reg)
			return nil
		},
	}
	imp.Flags().StringVar(&name, "name", "", "name to use with --model (default: the file or folder name)")
	cmd.AddCommand(list, inspect, pull, imp)
	return cmd
}

func (a *modelsCmd) printInspection(ins session.Inspection) {
	w := a.stdout
	fmt.Fprintf(w, "model   %s (%s)\n", ins.Model, ins.Kind)
	if ins.Model == store.Builtin {
		fmt.Fprintf(w, "        %s\n", builtin.Description)
	}
	fmt.Fprintf(w, "graph   %s\n", ins.Graph)
	if ins.Size > 0 {
		fmt.Fprintf(w, "size    %d px (token grids below are at this size)\n", ins.Size)
	}
	for _, in := range ins.Inputs {
		fmt.Fprintf(w, "input   %v\n", in)
	}
	for _, out := range ins.Outputs {
		fmt.Fprintf(w, "output  %v\n", out)
	}
	if ip := ins.IPAdapter; ip != nil {
		fmt.Fprintf(w, "adapter %s: %d IP tokens of width %d into %d cross-attention layers\n", ip.Path, ip.Tokens, ip.Width, ip.Layers)
		if ip.ImageEncoder != "" {
			fmt.Fprintf(w, "encoder %s (penultimate state %s)\n", ip.ImageEncoder, ip.Penultimate)
		}
	}
	fmt.Fprintf(w, "\n%d attention layers:\n", len(ins.Layers))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSHORT\tNAME\tKIND\tGRID\tTOKENS\tHEADS×DIM\tSCALE")
	for _, l := range ins.Layers {
		kind := l.Kind
		if l.Kind == "cross" {
			if l.ImageKV {
				kind += " (image K/V)"
			} else {
				kind += " (text: always 1)"
			}
		}
		grid := "-"
		if l.GridH > 0 {
			grid = fmt.Sprintf("%dx%d", l.GridH, l.GridW)
			if l.Prefix > 0 {
				grid += fmt.Sprintf("+%d", l.Prefix)
			}
		}
		tokens := "-"
		if l.Tokens > 0 {
			tokens = fmt.Sprint(l.Tokens)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d×%d\t%.4g\n", l.Index, l.Short, l.Name, kind, grid, tokens, l.Heads, l.HeadDim, l.Scale)
	}
	tw.Flush()
}

// humanBytes prints a size in binary units (KiB, MiB, GiB), the units the defaults are set
// in (the graph cache's 16 GiB), so a listing and its limit read alike.
func humanBytes(n int64) string {
	switch {
	case n <= 0:
		return "0 B"
	case n < 1<<20:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
