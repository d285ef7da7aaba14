package lookertest

import (
	"net/http"
	"slices"
)

// Call is one request the fake received.
type Call struct {
	Op     string // Looker operation id, such as "login" or "scheduled_plan_run_once_by_id"
	Method string
	// URL is the request URL as received: path and raw query.
	URL    string
	Header http.Header
	Body   string
	// Status is the status the fake answered (0 for a reset connection).
	Status int
}

// record is what the fake received, for tests to assert on. Server.mu
// guards it.
type record struct {
	calls      []Call   // the operations it served, faults included
	unexpected []string // the requests it refused as not Looker's API
}

// Calls returns every request to a known operation received so far; requests
// the fake refused as not Looker's API are in Unexpected instead.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.record.calls)
}

// Unexpected returns the requests the fake refused as not Looker's API.
func (s *Server) Unexpected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.record.unexpected)
}
