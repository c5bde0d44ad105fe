package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
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
func (a *app) applyReference(cmd *cobra.Command) error {
	if a.reference == "" {
		return nil
	}
	fam, ok := referenceFamilies[strings.ToLower(a.reference)]
	if !ok {
		return usagef("--reference %q: want one of %s", a.reference, referenceNames())
	}
	changed := cmd.Flags().Changed
	var set, kept []string
	if !changed("model") {
		a.model = "sd15"
		set = append(set, "model sd15")
	} else {
		kept = append(kept, "--model "+a.model)
	}
	switch {
	case changed("t"):
		kept = append(kept, fmt.Sprintf("--t %d", a.t))
	case changed("step"):
		kept = append(kept, fmt.Sprintf("--step %d", a.step))
	default:
		a.step = fam.step
		t, _ := features.StepToT(fam.step)
		set = append(set, fmt.Sprintf("t=%d (step %d)", t, fam.step))
	}
	if !changed("layer") {
		a.layer = "Up0"
		set = append(set, "layer Up0 (up_blocks layer 0)")
	} else {
		kept = append(kept, "--layer "+a.layer)
	}
	if !changed("size") {
		a.size = 512
		set = append(set, "512 px")
	} else {
		kept = append(kept, fmt.Sprintf("--size %d", a.size))
	}
	if !changed("seed") {
		a.seed = session.DefaultSeed
		set = append(set, fmt.Sprintf("seed %d", a.seed))
	} else {
		kept = append(kept, fmt.Sprintf("--seed %d", a.seed))
	}
	if !changed("metric") {
		a.metric = "aas"
		set = append(set, "metric aas (cosine)")
	} else {
		kept = append(kept, "--metric "+a.metric)
	}
	promptGiven := changed("prompt")
	if !promptGiven {
		a.prompt = fam.prompt
		set = append(set, fmt.Sprintf("prompt %q", a.prompt))
	} else {
		kept = append(kept, fmt.Sprintf("--prompt %q", a.prompt))
	}
	if !changed("cfg") {
		a.cfg = true
		set = append(set, "CFG (unconditional and prompted halves in one batch, both scored)")
	} else {
		kept = append(kept, fmt.Sprintf("--cfg=%t", a.cfg))
	}
	if a.quiet {
		return nil
	}
	w := a.stderr
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
