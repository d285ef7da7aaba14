package lookertest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"
)

// LateAction is an operation Looker performed, or was to perform, in the
// background after its request arrived: a Fault's LateAction.
type LateAction struct {
	Op  string // Looker operation id
	URL string // the request URL as received: path and raw query
	// Due is when Looker acts, on the wall clock: the timer that waits for
	// it does, whatever SetClock says.
	Due time.Time
	// Done says Looker acted; Status is then the status its answer had.
	Done   bool
	Status int
	// Dropped says the fake closed first: Looker never acted.
	Dropped bool
}

// late is the work Looker does in the background, after a request's answer
// is decided. Server.mu guards it, except pending, which Close waits on.
type late struct {
	closed  bool
	stop    chan struct{} // closed by Close: pending actions are dropped
	pending sync.WaitGroup
	actions []LateAction
}

// LateActions returns the late actions scripted so far, done, pending or
// dropped, in the order their requests arrived.
func (s *Server) LateActions() []LateAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.late.actions)
}

// actLate has Looker perform op for r after d, in the background, whatever
// becomes of r's answer. The channel yields the answer Looker would have
// given; it is closed without one if the action is dropped. A request
// Looker does not admit is refused now, and nothing is done later.
func (s *Server) actLate(r *http.Request, op string, args []string, d time.Duration) <-chan *httptest.ResponseRecorder {
	answer := make(chan *httptest.ResponseRecorder, 1)
	token, ok := s.admit(r, op)
	if !ok {
		rec := httptest.NewRecorder()
		rec.Code = writeError(rec, http.StatusUnauthorized, "Requires authentication.")
		answer <- rec
		return answer
	}
	// The request's own context ends with its answer; Looker's work does not.
	body := readBody(r)
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader([]byte(body)))

	s.mu.Lock()
	i := len(s.late.actions)
	s.late.actions = append(s.late.actions, LateAction{Op: op, URL: r.URL.RequestURI(), Due: time.Now().Add(d)})
	if s.late.closed {
		s.late.actions[i].Dropped = true
		s.mu.Unlock()
		close(answer)
		return answer
	}
	s.late.pending.Add(1) // under mu, so never after Close's Wait began
	stop := s.late.stop
	s.mu.Unlock()

	go func() {
		defer s.late.pending.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-stop:
			s.mu.Lock()
			s.late.actions[i].Dropped = true
			s.mu.Unlock()
			close(answer)
			return
		}
		rec := httptest.NewRecorder()
		rec.Code = s.perform(rec, req, op, args, token)
		s.mu.Lock()
		s.late.actions[i].Done, s.late.actions[i].Status = true, rec.Code
		s.mu.Unlock()
		answer <- rec
	}()
	return answer
}

// stopLate drops every pending late action and waits for those under way.
func (s *Server) stopLate() {
	s.mu.Lock()
	if !s.late.closed {
		s.late.closed = true
		close(s.late.stop)
	}
	s.mu.Unlock()
	s.late.pending.Wait()
}
