package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/schedule"
)

// referenceFamily is what the DiffSim reference code (showlab/DiffSim, its *_main.py and
// *_main.sh) runs for one benchmark family. Every family shares SD 1.5, 512 px, seed 2334,
// up_blocks layer 0 (Up0), cosine similarity and classifier-free guidance with the prompt.
type referenceFamily struct {
	name   string
	step   int    // the reference's target_step; t = 1001 − step
	prompt string // the prompt it uses, or the fallback when it fills one per item
	// perItem, when set, is the reference's per-item prompt template, which one pair on the
	// command line cannot fill: diffsim says so and uses prompt unless --prompt is given.
	perItem string
}

// referenceFamilies by every name --reference accepts.
var referenceFamilies = func() map[string]referenceFamily {
	const hq = "High quality image" // argprocess.py's default, and ipref_main.py's and tid_main.py's
	nights := referenceFamily{name: "nights", step: 500, prompt: hq,
		perItem: `"An image of a <category>" (night_main.py: data.csv's prompt column, lower-cased)`}
	cute := referenceFamily{name: "cute", step: 600, prompt: hq,
		perItem: `"The photo of a <class>" (cute_main.py: the top-level class folder's name)`}
	style := referenceFamily{name: "style", step: 900, prompt: hq}
	ip := referenceFamily{name: "ip", step: 750, prompt: hq}
	return map[string]referenceFamily{
		"nights": nights, "cute": cute,
		"style": style, "sref": style, "instantstyle": style, "tid2013": style, "tid": style,
		"ip": ip, "dreambench": ip, "dreambench++": ip,
	}
}()

// referenceNames lists the accepted names for messages.
func referenceNames() string {
	names := make([]string, 0, len(referenceFamilies))
	for n := range referenceFamilies {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// applyReference sets every setting of --reference FAMILY that the user did not give, and
// says on stderr what it set, what it kept, and where results can still differ.
func (c *scoring) applyReference(cmd *cobra.Command) error {
	if c.diff == nil || c.diff.reference == "" {
		return nil
	}
	d := c.diff
	fam, ok := referenceFamilies[strings.ToLower(d.reference)]
	if !ok {
		return usagef("--reference %q: want one of %s", d.reference, referenceNames())
	}
	changed := cmd.Flags().Changed
	var set, kept []string
	if !changed("model") {
		c.model = "sd15"
		set = append(set, "model sd15")
	} else {
		kept = append(kept, "--model "+c.model)
	}
	switch {
	case c.t.set:
		kept = append(kept, fmt.Sprintf("--t %d", c.t.v))
	case c.step.set:
		kept = append(kept, fmt.Sprintf("--step %d", c.step.v))
	default:
		c.step.v, c.step.set = fam.step, true
		t, _ := schedule.StepToT(fam.step)
		set = append(set, fmt.Sprintf("t=%d (step %d)", t, fam.step))
	}
	if !changed("layer") {
		c.layer = "Up0"
		set = append(set, "layer Up0 (up_blocks layer 0)")
	} else {
		kept = append(kept, "--layer "+c.layer)
	}
	if !changed("size") {
		c.size = 512
		set = append(set, "512 px")
	} else {
		kept = append(kept, fmt.Sprintf("--size %d", c.size))
	}
	if !changed("seed") {
		c.seed = api.DefaultSeed
		set = append(set, fmt.Sprintf("seed %d", c.seed))
	} else {
		kept = append(kept, fmt.Sprintf("--seed %d", c.seed))
	}
	if !changed("metric") {
		c.metric = "aas"
		set = append(set, "metric aas (cosine)")
	} else {
		kept = append(kept, "--metric "+c.metric)
	}
	promptGiven := changed("prompt")
	if !promptGiven {
		d.prompt = fam.prompt
		set = append(set, fmt.Sprintf("prompt %q", d.prompt))
	} else {
		kept = append(kept, fmt.Sprintf("--prompt %q", d.prompt))
	}
	if !changed("cfg") {
		d.cfg = true
		set = append(set, "CFG (unconditional and prompted halves in one batch, both scored)")
	} else {
		kept = append(kept, fmt.Sprintf("--cfg=%t", d.cfg))
	}
	if c.quiet {
		return nil
	}
	w := c.stderr
	fmt.Fprintf(w, "diffsim: --reference %s set %s\n", fam.name, strings.Join(set, ", "))
	if len(kept) > 0 {
		fmt.Fprintf(w, "diffsim: --reference %s kept what you gave: %s\n", fam.name, strings.Join(kept, ", "))
	}
	if fam.perItem != "" && !promptGiven {
		fmt.Fprintf(w, "diffsim: note: the reference conditions each item on %s; give --prompt to match it for your pair\n", fam.perItem)
	}
	fmt.Fprintln(w, "diffsim: note: scores can still differ from the reference code's: diffsim encodes with the VAE latent mean and one noise tensor shared by both images (the reference samples the latent and draws noise per image, so its score(A,A) < 1 and score(A,B) ≠ score(B,A)), runs float32 ONNX where it runs float16 PyTorch, and resizes with its own filter")
	return nil
}
