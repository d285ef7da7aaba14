package lookertest

import "time"

// clock is the time the fake reads to decide what System Activity shows:
// lags, running jobs, when a copy was made, when a plan was edited. Server.mu
// guards it. Timers that really wait (latency, Delay, LateAction) run on the
// wall clock whatever it says.
type clock struct {
	now func() time.Time // nil reads the wall clock
}

// SetClock makes the fake read the time from now, as pstest's
// SetTimeNowFunc does: System Activity's lag and running jobs, the time
// run_once and SendNow make a plan, the updated time of an edit, and
// FinishCopies and FinishJob all follow it, so a test drives them without
// sleeping. Nil restores the wall clock, the default. now is called with
// the server's lock held: it must not call the Server.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock.now = now
}

// now returns the fake's time, in UTC. Server.mu must be held.
func (s *Server) now() time.Time {
	if s.clock.now == nil {
		return time.Now().UTC()
	}
	return s.clock.now().UTC()
}
