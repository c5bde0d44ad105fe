package api

import (
	"encoding/json"
	"fmt"
	"math"
)

// Float is a float64 that survives JSON whatever its value, the one codec of every number a
// record, a server answer or a benchmark result carries: NaN (a value that does not apply, or
// is not a number) is null, +Inf and −Inf are the strings "+Inf" and "-Inf", and finite
// values are written as encoding/json writes them (the shortest form that reads back to the
// same bits). So an infinite MSE stays infinite through a server, and a script tests one thing
// for "no value": null.
type Float float64

// NaN is the Float that encodes as null.
func NaN() Float { return Float(math.NaN()) }

// IsNaN reports a value that is null in JSON.
func (f Float) IsNaN() bool { return math.IsNaN(float64(f)) }

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
		*f = NaN()
		return nil
	case `"+Inf"`, `"Inf"`:
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
