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
	// Due is when Looker acts, on the fake's clock (SetClock), or on the
	// wall clock without one.
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
	// cancels drop the actions pending on a Clock (SetClock), which no
	// goroutine waits for.
	cancels []func()
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
	defer s.mu.Unlock()
	i := len(s.late.actions)
	s.late.actions = append(s.late.actions, LateAction{Op: op, URL: r.URL.RequestURI()})
	if s.late.closed {
		s.late.actions[i].Dropped = true
		close(answer)
		return answer
	}
	s.late.pending.Add(1) // under mu, so never after Close's Wait began
	act := func() {
		defer s.late.pending.Done()
		rec := httptest.NewRecorder()
		rec.Code = s.perform(rec, req, op, args, token)
		s.mu.Lock()
		s.late.actions[i].Done, s.late.actions[i].Status = true, rec.Code
		s.mu.Unlock()
		answer <- rec
	}
	drop := func() {
		defer s.late.pending.Done()
		s.mu.Lock()
		s.late.actions[i].Dropped = true
		s.mu.Unlock()
		close(answer)
	}
	if c := s.clock.c; c != nil {
		// Looker acts when the clock reaches the time, moved by whoever
		// waits: the client polling for the copy, say.
		due, stop := c.afterFunc(d, act)
		s.late.actions[i].Due = due.UTC()
		s.late.cancels = append(s.late.cancels, func() {
			if stop() {
				drop()
			}
		})
		return answer
	}
	s.late.actions[i].Due = time.Now().Add(d)
	stop := s.late.stop
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			act()
		case <-stop:
			drop()
		}
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
	cancels := s.late.cancels
	s.late.cancels = nil
	s.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
	s.late.pending.Wait()
}
