package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/session/bench/synth"
)

// benchSynthCommand is `diffsim bench synth DIR`: the procedural styles × contents dataset.
func (a *benchCmd) benchSynthCommand() *cobra.Command {
	o := synth.Options{Styles: synth.DefaultStyles, Contents: synth.DefaultContents, Size: synth.DefaultSize, Seed: synth.DefaultSeed}
	styles, _ := synth.Styles(synth.MaxStyles)
	contents, _ := synth.Contents(synth.MaxContents)
	var first []string
	for _, s := range styles[:8] {
		first = append(first, s.Name)
	}
	var shapes []string
	for _, c := range contents {
		shapes = append(shapes, c.Name)
	}
	cmd := &cobra.Command{
		Use:   "synth DIR",
		Short: "Write a procedural styles × contents dataset in the grid layout (DIR/STYLE/CONTENT.png)",
		Long: fmt.Sprintf(`synth draws one image per style and content and writes it as DIR/STYLE/CONTENT.png. A
style is a texture in a palette; a content is a shape. Both labels are known by construction,
so the set asks whether a metric follows the style (same style, other shape) or the content
(same shape, other style).

Styles, in order (--styles N takes the first N; the first eight differ in texture and in
palette, and all %d pairs of 8 textures × 8 palettes come before a repeat):
  %s, …
Contents, in order:
  %s.

The same flags give the same bytes. --seed draws another sample of the same classes: the
shape's position, size and rotation and the texture's phase, angle and frequency move, the
classes do not. Train on some seeds and evaluate on others.`, synth.MaxStyles, strings.Join(first, ", "), strings.Join(shapes, ", ")),
		Example: `  diffsim bench synth synth/
  diffsim bench synth synth/ --styles 4 --contents 4 --size 256 --seed 2`,
		Args: exactArgs(1, "a folder to write"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Check(); err != nil {
				return usagef("%v", err)
			}
			start := time.Now()
			paths, err := synth.Write(cmd.Context(), args[0], o)
			if err != nil {
				return fmt.Errorf("write %s: %w (%d images written)", args[0], err, len(paths))
			}
			if !a.quiet {
				fmt.Fprintf(a.stderr, "diffsim: wrote %d images (%d styles × %d contents, %d px, seed %d) to %s in %.1fs\n",
					len(paths), o.Styles, o.Contents, o.Size, o.Seed, args[0], time.Since(start).Seconds())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Styles, "styles", o.Styles, fmt.Sprintf("how many styles (1 to %d)", synth.MaxStyles))
	f.IntVar(&o.Contents, "contents", o.Contents, fmt.Sprintf("how many contents (1 to %d)", synth.MaxContents))
	f.IntVar(&o.Size, "size", o.Size, "image side in pixels")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "sample of the jitter (position, size, rotation, texture phase)")
	f.BoolVar(&a.quiet, "quiet", false, "no summary line on stderr")
	return cmd
}
