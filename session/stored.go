package session

import (
	"context"
	"fmt"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/features"
)

// openStoredModel opens a model that is not the built-in one.
func openStoredModel(ctx context.Context, rt *engine.Runtime, o Options) (features.Model, error) {
	return nil, fmt.Errorf("%w: model %q: only the built-in model is supported in this build", ErrUsage, o.Model)
}
