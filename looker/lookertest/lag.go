package lookertest

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// defaultSeed seeds the fake's random source until SetSeed: the same lags
// every run, so a test that fails fails again.
const defaultSeed = 1

// lag is how far System Activity trails what Looker did. Server.mu guards it.
type lag struct {
	min, max time.Duration
	rng      *rand.Rand
}

func newLag(seed int64) lag {
	return lag{rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)))}
}

// SetActivityLag makes System Activity trail run_once as Looker's does:
// each run-once copy that run_once makes from now on, its plan row and its
// job, shows in run_inline_query only a random duration in [min, max]
// after Looker made it (the job no earlier than the plan), on the fake's
// clock (SetClock). SendNow's plans lag alike. The API itself
// does not lag: run_once's answer and GET scheduled_plan show the copy at
// once. Plans and jobs a test adds show at once unless their Visible says
// otherwise. The default is no lag. It panics if min is negative or above
// max.
func (s *Server) SetActivityLag(min, max time.Duration) {
	if min < 0 || max < min {
		panic(fmt.Sprintf("lookertest: SetActivityLag(%v, %v): want 0 <= min <= max", min, max))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag.min, s.lag.max = min, max
}

// SetSeed reseeds the random source that draws the lags of SetActivityLag.
// Without it the fake uses a fixed seed, so runs are reproducible.
func (s *Server) SetSeed(seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag.rng = newLag(seed).rng
}

// draw returns a lag in [min, max].
func (l *lag) draw() time.Duration {
	if l.max == 0 {
		return 0
	}
	return l.min + time.Duration(l.rng.Int64N(int64(l.max-l.min)+1))
}

// visibleAfter is the Visible time of a row made at now that lags by d:
// zero, at once, for no lag.
func visibleAfter(now time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return now.Add(d)
}

// shows reports whether System Activity shows, at now, a row whose Visible
// time is v.
func shows(v, now time.Time) bool {
	return v.IsZero() || !v.After(now)
}

// running reports whether j has not ended by now.
func (j *Job) running(now time.Time) bool {
	return j.Status == "" || j.Finalized.After(now)
}

// asOf returns j as System Activity shows it at now: a running job has no
// status, detail or finalized time yet.
func (j *Job) asOf(now time.Time) *Job {
	if !j.running(now) {
		return j
	}
	v := *j
	v.Status, v.Detail, v.Finalized = "", "", time.Time{}
	return &v
}
