package api

import (
	"encoding/json"
	"math"
	"testing"
)

func TestFloatSurvivesJSON(t *testing.T) {
	cases := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.0 / 3, math.Pi, 1e-310, math.SmallestNonzeroFloat64,
		math.MaxFloat64, -math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	for _, v := range cases {
		b, err := json.Marshal(struct{ V Float }{Float(v)})
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		var got struct{ V Float }
		got.V = 42 // a decoder that skipped the field would leave this
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%v: unmarshal %s: %v", v, b, err)
		}
		g := float64(got.V)
		if math.IsNaN(v) != math.IsNaN(g) || (!math.IsNaN(v) && math.Float64bits(g) != math.Float64bits(v)) {
			t.Errorf("%v went through %s and came back %v", v, b, g)
		}
	}
	var f Float
	if err := json.Unmarshal([]byte(`"NaN"`), &f); err == nil {
		t.Errorf(`"NaN" was accepted as %v; want an error`, f)
	}
}

func TestMapSurvivesTheWire(t *testing.T) {
	nan := float32(math.NaN())
	cases := []Map{
		{},
		{W: 2, H: 1, Values: []float32{0.1, nan}},
		{W: 3, H: 2, Values: []float32{1, -1, math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.Inf(-1)), -0.0}},
	}
	for _, m := range cases {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var got Map
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.W != m.W || got.H != m.H || len(got.Values) != len(m.Values) || (m.Values == nil) != (got.Values == nil) {
			t.Fatalf("%+v came back %+v", m, got)
		}
		for i := range m.Values {
			if math.Float32bits(got.Values[i]) != math.Float32bits(m.Values[i]) {
				t.Errorf("value %d: %v came back %v", i, m.Values[i], got.Values[i])
			}
		}
	}
	var m Map
	if err := json.Unmarshal([]byte(`{"w":1,"h":1,"values":"AQID"}`), &m); err == nil {
		t.Error("a map of 3 bytes was accepted")
	}
	if err := json.Unmarshal([]byte(`{"w":2,"h":2,"values":"AAAAAA=="}`), &m); err == nil {
		t.Error("a map of one value claiming 2×2 was accepted")
	}
}
