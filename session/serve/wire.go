package serve

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
)

// Float is a float64 that survives JSON whatever its value: NaN is null, ±Inf the strings
// "+Inf" and "-Inf", and finite values are written as encoding/json writes them (the shortest
// form that reads back to the same bits).
type Float float64

// MarshalJSON writes f.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte("null"), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Float) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "null":
		*f = Float(math.NaN())
		return nil
	case `"+Inf"`:
		*f = Float(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = Float(math.Inf(-1))
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a number, null, \"+Inf\" or \"-Inf\", got %s", b)
	}
	*f = Float(v)
	return nil
}

// wireMap encodes m; nil for a map that was never set (no token asked for).
func wireMap(m features.Map) *Map {
	if m.Values == nil && m.W == 0 && m.H == 0 {
		return nil
	}
	b := make([]byte, 0, 4*len(m.Values))
	for _, v := range m.Values {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return &Map{W: m.W, H: m.H, Values: b}
}

// featuresMap decodes what wireMap encoded.
func (m *Map) featuresMap() (features.Map, error) {
	if m == nil {
		return features.Map{}, nil
	}
	if len(m.Values)%4 != 0 {
		return features.Map{}, fmt.Errorf("map of %d bytes: want 4 per float32", len(m.Values))
	}
	v := make([]float32, len(m.Values)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(m.Values[4*i:]))
	}
	return features.Map{W: m.W, H: m.H, Values: v}, nil
}

func infoResponse(i session.ModelInfo) InfoResponse {
	return InfoResponse{Name: i.Name, Family: i.Family, Description: i.Description, Device: i.Device, Notice: i.Notice,
		Layers: i.Layers, DefaultLayer: i.DefaultLayer, Timesteps: i.Timesteps, DefaultT: i.DefaultT, Size: i.Size, Seed: i.Seed}
}

// ModelInfo is the answer as the session's type.
func (r InfoResponse) ModelInfo() session.ModelInfo {
	return session.ModelInfo{Name: r.Name, Family: r.Family, Description: r.Description, Device: r.Device, Notice: r.Notice,
		Layers: r.Layers, DefaultLayer: r.DefaultLayer, Timesteps: r.Timesteps, DefaultT: r.DefaultT, Size: r.Size, Seed: r.Seed}
}

func resultResponse(r session.Result) ResultResponse {
	return ResultResponse{
		Score: Float(r.Score), AtoB: Float(r.AtoB), BtoA: Float(r.BtoA), Metric: string(r.Metric), HigherIsBetter: r.HigherIsBetter,
		Meaningless: r.Meaningless, FeatureCosine: Float(r.FeatureCosine), MSE: Float(r.MSE), Global: Float(r.Global),
		MapA: wireMap(r.MapA), MapB: wireMap(r.MapB), AttnRow: wireMap(r.AttnRow), Cached: r.Cached,
		ElapsedMS: float64(r.Elapsed.Microseconds()) / 1000,
	}
}

// result is the answer as the session's type, answering req (Elapsed is left to the caller).
func (r ResultResponse) result(req session.Request) (session.Result, error) {
	out := session.Result{
		Req: req, Score: float64(r.Score), AtoB: float64(r.AtoB), BtoA: float64(r.BtoA), Metric: session.Metric(r.Metric),
		HigherIsBetter: r.HigherIsBetter, Meaningless: r.Meaningless, FeatureCosine: float64(r.FeatureCosine),
		MSE: float64(r.MSE), Global: float64(r.Global), Cached: r.Cached,
	}
	var err error
	for _, m := range []struct {
		name string
		in   *Map
		out  *features.Map
	}{{"map_a", r.MapA, &out.MapA}, {"map_b", r.MapB, &out.MapB}, {"attn_row", r.AttnRow, &out.AttnRow}} {
		if *m.out, err = m.in.featuresMap(); err != nil {
			return out, fmt.Errorf("diffsim server: bad %s: %w", m.name, err)
		}
	}
	return out, nil
}

func statsResponse(s session.Stats) StatsResponse {
	return StatsResponse{Forwards: s.Forwards, Extracted: s.Extracted, CacheHits: s.CacheHits, CacheBytes: s.CacheBytes, CacheBudget: s.CacheBudget}
}

func (r StatsResponse) stats() session.Stats {
	return session.Stats{Forwards: r.Forwards, Extracted: r.Extracted, CacheHits: r.CacheHits, CacheBytes: r.CacheBytes, CacheBudget: r.CacheBudget}
}
