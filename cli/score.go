package main

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
)

// scoreJSON is the `score --json` contract (DESIGN.md), plus fields that help scripts.
type scoreJSON struct {
	Model               string   `json:"model"`
	ModelDescription    string   `json:"model_description,omitempty"`
	Layer               string   `json:"layer"`
	LayerShort          string   `json:"layer_short,omitempty"`
	LayerIndex          int      `json:"layer_index"`
	T                   int      `json:"t"`
	Step                int      `json:"step"`
	Metric              string   `json:"metric"`
	Score               float64  `json:"score"`
	AtoB                float64  `json:"a_to_b"`
	BtoA                float64  `json:"b_to_a"`
	HigherIsMoreSimilar bool     `json:"higher_is_more_similar"`
	Meaningless         string   `json:"meaningless,omitempty"`
	FeatureCosine       *float64 `json:"feature_cosine,omitempty"`
	GlobalCosine        *float64 `json:"global_cosine,omitempty"`
	Size                int      `json:"size"`
	Seed                int64    `json:"seed"`
	Prompt              string   `json:"prompt,omitempty"`
	CFG                 bool     `json:"cfg,omitempty"`
	Device              string   `json:"device"`
	ImageA              string   `json:"image_a"`
	ImageB              string   `json:"image_b"`
}

func (a *app) scoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "score IMAGE_A IMAGE_B",
		Short: "Score one pair at one layer and timestep",
		Example: `  diffsim score a.png b.png
  diffsim score a.png b.png --layer coarse --t 500 --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// A typo should not wait for a model to load.
			if err := checkFiles(args...); err != nil {
				return err
			}
			tg, err := a.openTarget(cmd, nil)
			if err != nil {
				return err
			}
			defer tg.s.Close()
			s, info, layer, t := tg.s, tg.info, tg.layer, tg.t
			imgA, err := s.Load(args[0])
			if err != nil {
				return err
			}
			imgB, err := s.Load(args[1])
			if err != nil {
				return err
			}
			r, err := s.Score(cmd.Context(), session.Request{A: imgA, B: imgB, Layer: layer, T: t, Metric: session.Metric(a.metric), Token: -1})
			if err != nil {
				return err
			}
			l := info.Layers[layer]
			out := scoreJSON{
				Model: info.Name, ModelDescription: info.Description, Layer: l.Name, LayerShort: l.Short, LayerIndex: layer,
				T: t, Step: features.TToStep(t), Metric: a.metric, Score: r.Score, AtoB: r.AtoB, BtoA: r.BtoA,
				HigherIsMoreSimilar: r.HigherIsBetter, Meaningless: r.Meaningless,
				FeatureCosine: finite(r.FeatureCosine), GlobalCosine: finite(r.Global),
				Size: info.Size, Seed: info.Seed, Device: info.Device, ImageA: args[0], ImageB: args[1],
				Prompt: s.Conditioning().Prompt, CFG: s.Conditioning().CFG,
			}
			if !info.Timesteps {
				out.T, out.Step = 0, 0
			}
			if a.json {
				enc := json.NewEncoder(a.stdout)
				return enc.Encode(out)
			}
			dir := "higher = more similar"
			if !r.HigherIsBetter {
				dir = "lower = more similar"
			}
			fmt.Fprintf(a.stdout, "%s %.4f  (A→B %.4f, B→A %.4f; %s)\n", a.metric, r.Score, r.AtoB, r.BtoA, dir)
			if r.Meaningless != "" {
				fmt.Fprintf(a.stdout, "note: %s\n", r.Meaningless)
			}
			fmt.Fprintf(a.stdout, "layer %s, t=%d (step %d), %d px, seed %d, %s\n", l.Label(), out.T, out.Step, info.Size, info.Seed, info.Device)
			fmt.Fprintf(a.stdout, "model: %s\n", info.Description)
			return nil
		},
	}
	cmd.Flags().BoolVar(&a.json, "json", false, "print one JSON object")
	return cmd
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
