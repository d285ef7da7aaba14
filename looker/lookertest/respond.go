package lookertest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// lookerError is Looker's error body.
type lookerError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}

const docURL = "https://cloud.google.com/looker/docs/r/api/support"

// The writers below return the status they wrote, which handlers return in
// turn for the request record.

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return status
}

// writeError answers as Looker does when it refuses a request.
func writeError(w http.ResponseWriter, status int, msg string) int {
	return writeJSON(w, status, lookerError{Message: msg, DocumentationURL: docURL})
}

// unknown records and reports a request the fake does not serve, and answers
// it 404.
func (s *Server) unknown(w http.ResponseWriter, r *http.Request, why string) int {
	s.complain(r, why)
	return writeError(w, http.StatusNotFound, "Not found")
}

// complain records a request the fake cannot answer truthfully and fails the
// owning test.
func (s *Server) complain(r *http.Request, why string) {
	msg := fmt.Sprintf("lookertest: %s %s: %s", r.Method, r.URL.RequestURI(), why)
	s.mu.Lock()
	s.record.unexpected = append(s.record.unexpected, msg)
	s.mu.Unlock()
	if s.t != nil {
		s.t.Errorf("%s", msg)
	}
}
