// Package families lists the model families diffsim reads. It is the one place a family is
// registered: the command line passes All() to the session (session.Options.Families,
// session.InspectOptions.Families), so that session and ui import no family package and a
// test can hand the session a registry of fakes.
package families

import (
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/builtin"
	"github.com/diffsim/diffsim/features/diffusion"
	"github.com/diffsim/diffsim/features/vision"
)

// All is every family diffsim reads: the built-in model, Stable Diffusion U-Nets (with
// IP-Adapter for DiffSim-C), vision transformers and generic image graphs.
func All() features.Families {
	return features.Families{builtin.Family{}, diffusion.Family{}, vision.ViTFamily{}, vision.GenericFamily{}}
}
