package session

import (
	"context"
	"errors"
	"image"
	"sync"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/builtin"
)

// promptModel is the built-in model made to depend on a prompt: it shifts every key by the
// prompt's length, so each prompt gives its own scores, and it counts its runs per setting.
type promptModel struct {
	features.Model
	mu       sync.Mutex
	runs     map[features.Conditioning]int
	prepared []features.Conditioning
}

func (p *promptModel) Prepare(_ context.Context, c features.Conditioning) error {
	if c.Prompt == "refused" {
		return errors.New("no tokenizer")
	}
	p.mu.Lock()
	p.prepared = append(p.prepared, c)
	p.mu.Unlock()
	return nil
}

func (p *promptModel) ExtractConditioned(ctx context.Context, imgs []image.Image, t int, seed int64, c features.Conditioning) ([]features.Extraction, error) {
	p.mu.Lock()
	p.runs[c]++
	p.mu.Unlock()
	ex, err := p.Model.Extract(ctx, imgs, t, seed)
	if err != nil {
		return nil, err
	}
	for _, e := range ex {
		for l := range e.Layers {
			k := append([]float32(nil), e.Layers[l].K...)
			for i := range k {
				k[i] += float32(len(c.Prompt)) * 0.05 * float32(i%7)
			}
			e.Layers[l].K = k
		}
	}
	return ex, nil
}

func TestConditioningIsPartOfTheCacheKey(t *testing.T) {
	ctx := context.Background()
	var pm *promptModel
	cat := features.Conditioning{Prompt: "a cat", CFG: true}
	s, err := Open(ctx, Options{
		Spec: testSpec(func(s *api.Spec) { s.Size = 128; s.Prompt = cat.Prompt; s.CFG = cat.CFG }), Families: families.All(),
		OpenModel: func(ctx context.Context, rt Runtime, o Options) (features.Model, error) {
			m, err := builtin.Open(rt, o.Spec.Size)
			pm = &promptModel{Model: m, runs: map[features.Conditioning]int{}}
			return pm, err
		}})
	enginetest.Check(t, err)
	defer s.Close()
	if len(pm.prepared) != 1 || pm.prepared[0] != cat || s.Conditioning() != cat {
		t.Fatalf("Open prepared %v, session says %v; want the options' conditioning", pm.prepared, s.Conditioning())
	}
	a, b := load(t, s, "chelsea.png"), load(t, s, "coffee.png")
	req := api.Request{A: a, B: b, Layer: 1, T: 101, Token: -1}
	first, err := s.Score(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	dog := features.Conditioning{Prompt: "a dog, long-haired"}
	if err := s.SetConditioning(ctx, dog); err != nil {
		t.Fatal(err)
	}
	other, err := s.Score(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if other.Cached || s.Stats().Forwards != 2 || other.Score == first.Score {
		t.Errorf("a new prompt reused features: cached %v, %d forwards, score %.6f vs %.6f", other.Cached, s.Stats().Forwards, other.Score, first.Score)
	}
	if err := s.SetConditioning(ctx, features.Conditioning{Prompt: "refused"}); !errors.Is(err, api.ErrUsage) {
		t.Errorf("a prompt the model refuses: err = %v, want a usage error", err)
	}
	if s.Conditioning() != dog {
		t.Errorf("a refused prompt changed the setting to %v", s.Conditioning())
	}
	if err := s.SetConditioning(ctx, cat); err != nil {
		t.Fatal(err)
	}
	back, err := s.Score(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cached || s.Stats().Forwards != 2 || back.Score != first.Score {
		t.Errorf("back to the first prompt: cached %v, %d forwards, score %.6f (first %.6f)", back.Cached, s.Stats().Forwards, back.Score, first.Score)
	}
	if pm.runs[cat] != 1 || pm.runs[dog] != 1 {
		t.Errorf("runs per setting %v, want one each", pm.runs)
	}
}

func TestPromptOnAModelWithoutText(t *testing.T) {
	s := openBuiltin(t, 128) // skips without a runtime
	_, err := Open(context.Background(), Options{Spec: testSpec(func(s *api.Spec) { s.Size = 128; s.Prompt = "a cat" }), Families: families.All()})
	if !errors.Is(err, api.ErrUsage) {
		t.Fatalf("a prompt for the built-in model: err = %v, want a usage error", err)
	}
	if err := s.SetConditioning(context.Background(), features.Conditioning{}); err != nil {
		t.Errorf("the unconditional setting works for every model: %v", err)
	}
}
