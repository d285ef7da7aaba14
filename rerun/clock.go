package rerun

import (
	"context"
	"time"
)

// Clock is the time a run reads and waits on: when run_once answered, how
// long to look for a copy, when to poll System Activity again, how long the
// grace period after a stop lasts. Tests give a fake one
// (lookertest.Clock, shared with the stand-in Looker) so that waits take no
// wall-clock time; nil in Options is the real time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed,
	// as time.After does.
	After(d time.Duration) <-chan time.Time
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleepCtx waits d on clock or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, clock Clock, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-clock.After(d):
		return true
	}
}

// graceful returns a context for the calls to Looker that outlives ctx by
// grace on clock, so a stop does not cut a run_once whose outcome would then
// be unknown, nor the look for its copy.
func graceful(ctx context.Context, clock Clock, grace time.Duration) (context.Context, context.CancelFunc) {
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-clock.After(grace):
		case <-callCtx.Done():
		}
		cancel()
	})
	return callCtx, func() { stop(); cancel() }
}
