package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Timeouts: nothing a client does, or fails to do, holds a connection forever.
const (
	headerTimeout = 10 * time.Second // the request line and headers
	bodyTimeout   = 30 * time.Second // the body, once the headers are in
	writeTimeout  = 30 * time.Second // the answer, once computed
	idleTimeout   = 2 * time.Minute  // a kept-alive connection between requests
)

// maxBody bounds a request body: a rank of tens of thousands of absolute paths fits.
const maxBody = 8 << 20

// decodeRequest reads a request body strictly: one JSON value of at most maxBody bytes, no
// unknown fields (a misspelt option is an error, not a default), read within the deadline the
// guard set. The deadline is lifted once the body is in: left armed (as http.Server's
// ReadTimeout would be), it would expire under a long computation and cancel the request.
func decodeRequest[Req any](w http.ResponseWriter, r *http.Request) (Req, error) {
	var req Req
	defer http.NewResponseController(w).SetReadDeadline(time.Time{})
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("bad request body: %v", err)
	}
	if dec.More() {
		return req, errors.New("bad request body: more than one JSON value")
	}
	return req, nil
}
