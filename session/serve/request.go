package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Timeouts bound what a client can hold the server to: nothing it does, or fails to do, keeps
// a connection forever. None bounds a computation: a request computes as long as its client
// stays connected (a client that goes away cancels it). Zero fields mean the defaults.
type Timeouts struct {
	Header time.Duration // the request line and headers (default 10 s)
	Body   time.Duration // the body, once the headers are in (default 30 s)
	Write  time.Duration // the answer, once computed (default 30 s)
	Idle   time.Duration // a kept-alive connection between requests (default 2 min)
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.Header, 10*time.Second)
	def(&t.Body, 30*time.Second)
	def(&t.Write, 30*time.Second)
	def(&t.Idle, 2*time.Minute)
	return t
}

// maxBody bounds a request body: a rank of tens of thousands of absolute paths fits.
const maxBody = 8 << 20

// decodeRequest reads a request body strictly, its spec over api.DefaultSpec(): one JSON value of at most maxBody bytes, no
// unknown fields (a misspelt option is an error, not a default), read within the deadline the
// guard set. The deadline is lifted once the body is in: left armed (as http.Server's
// ReadTimeout would be), it would expire under a long computation and cancel the request.
//
// A body that fails (malformed, too slow, too long) closes the connection after the answer,
// with the deadline still armed: what is left of it is not waited for.
func decodeRequest[Req any](w http.ResponseWriter, r *http.Request) (Req, error) {
	var req Req
	if p, ok := any(&req).(interface{ Prefill() }); ok {
		p.Prefill() // the spec over api.DefaultSpec(): what the request leaves out is its default
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err != nil {
		err = fmt.Errorf("bad request body: %v", err)
	} else if dec.More() {
		err = errors.New("bad request body: more than one JSON value")
	}
	if err != nil {
		w.Header().Set("Connection", "close")
		return req, err
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return req, nil
}
