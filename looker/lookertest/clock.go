package lookertest

import (
	"slices"
	"sync"
	"time"
)

// Clock is a fake clock for tests, shared by the fake and the code under
// test (it satisfies rerun.Clock), so that waits, lags and late actions take
// no wall-clock time.
//
// Time stands still until someone waits: After(d) moves the clock d forward
// and returns a channel that has already fired, so a poll that sleeps 20 s
// takes no time at all, and Advance moves it by hand. What the fake scheduled
// for a time on the way (a Fault's LateAction) happens as the clock passes
// that time, in order, before After or Advance returns: a client that waits
// past a late action finds it done. Several goroutines waiting at once each
// move the clock by their own wait, one after another, so time may run
// faster than any one of them waits, never backwards.
//
// A Clock is safe for concurrent use. Create it with NewClock.
type Clock struct {
	// adv makes one move at a time, so timers fire in order of their times.
	adv sync.Mutex

	mu     sync.Mutex
	now    time.Time
	timers []*clockTimer
	seq    int
}

// clockTimer is work due at a time on the clock.
type clockTimer struct {
	due time.Time
	seq int // ties fire in the order set
	fn  func()
}

// NewClock returns a clock that reads start until it is moved.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After moves the clock d forward (firing what falls due on the way) and
// returns a channel holding the time it reached: waiting d takes no
// wall-clock time. d <= 0 does not move it.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.move(d)
	return ch
}

// Advance moves the clock d forward, firing what falls due on the way.
func (c *Clock) Advance(d time.Duration) {
	c.move(d)
}

// move moves the clock d past the time it read when called, and returns
// the time then. Timers due on the way fire in order, each at its own time,
// with no lock of the clock's held.
func (c *Clock) move(d time.Duration) time.Time {
	c.mu.Lock()
	target := c.now.Add(max(d, 0))
	c.mu.Unlock()
	c.adv.Lock()
	defer c.adv.Unlock()
	for {
		c.mu.Lock()
		i := -1
		for j, t := range c.timers {
			if !t.due.After(target) && (i < 0 || t.due.Before(c.timers[i].due) || (t.due.Equal(c.timers[i].due) && t.seq < c.timers[i].seq)) {
				i = j
			}
		}
		if i < 0 {
			if target.After(c.now) {
				c.now = target
			}
			now := c.now
			c.mu.Unlock()
			return now
		}
		t := c.timers[i]
		c.timers = slices.Delete(c.timers, i, i+1)
		if t.due.After(c.now) {
			c.now = t.due
		}
		c.mu.Unlock()
		t.fn()
	}
}

// afterFunc has fn called when the clock reaches d from now, by whoever
// moves it there. stop cancels it; it reports whether fn was still to come.
// fn must not move the clock.
func (c *Clock) afterFunc(d time.Duration, fn func()) (due time.Time, stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &clockTimer{due: c.now.Add(d), seq: c.seq, fn: fn}
	c.timers = append(c.timers, t)
	return t.due, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// clock is the fake's time: a Clock, or the wall clock. Server.mu guards it.
type clock struct {
	c *Clock // nil reads the wall clock
}

// SetClock makes the fake read its time from c, as pstest's SetTimeNowFunc
// does: System Activity's lag and running jobs, the time run_once and
// SendNow make a plan, the updated time of an edit, FinishCopies and
// FinishJob, and the time a Fault's LateAction is performed all follow it,
// so a test drives them without sleeping. Give the code under test the same
// clock (rerun.Options.Clock). Latency and a Fault's Delay still wait on the
// wall clock: they stand for a client's timeout, which does. Nil restores
// the wall clock, the default.
func (s *Server) SetClock(c *Clock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock.c = c
}

// Clock returns the clock SetClock set, nil for the wall clock.
func (s *Server) Clock() *Clock {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock.c
}

// now returns the fake's time, in UTC. Server.mu must be held.
func (s *Server) now() time.Time {
	if s.clock.c == nil {
		return time.Now().UTC()
	}
	return s.clock.c.Now().UTC()
}
