package looker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// This file paces RunOnce. Looker rate-limits scheduled_plan_run_once_by_id;
// when it answers 429 anyway, every caller of RunOnce backs off, not only the
// one that met it.

// ErrNotSent marks a RunOnce that never left: it gave up waiting for its
// turn (ctx ended), or its start check (WithStartCheck) refused it. Looker
// did not act (NotActed reports true).
var ErrNotSent = errors.New("not sent")

// Clock is the time the RunOnce pace reads and waits on: Now, and After as
// time.After does.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// WithClock makes the RunOnce pace read and wait on clock instead of the
// wall clock, so that a caller's waits and its pace share one time (tests
// drive both without sleeping).
func WithClock(clock Clock) Option {
	return func(c *Client) error {
		if clock == nil {
			return errors.New("nil clock")
		}
		c.clock = clock
		return nil
	}
}

type startCheckKey struct{}

// WithStartCheck returns a copy of ctx under which RunOnce asks check
// whether its call may still start: after it has waited its turn in the
// pace, and before its transport repeats a call Looker refused
// (PrepareRunOnceRetry). A caller that stops starting calls at some moment
// (a stop, a deadline for starting) while the calls already started may go
// on (a grace period) passes RunOnce the context of the calls, with a check
// of that moment: a wait for a 429's pause, or a retry's backoff, may
// otherwise end after it and send. An error from check makes RunOnce return
// an error wrapping ErrNotSent and it, and nothing is sent.
func WithStartCheck(ctx context.Context, check func() error) context.Context {
	return context.WithValue(ctx, startCheckKey{}, check)
}

// mayStart asks the start check of ctx, if any.
func mayStart(ctx context.Context) error {
	if check, ok := ctx.Value(startCheckKey{}).(func() error); ok {
		if err := check(); err != nil {
			return fmt.Errorf("%w: %w", ErrNotSent, err)
		}
	}
	return nil
}

// PrepareRunOnceRetry has go-retryablehttp's PrepareRetry signature: set on
// the run_once client (WithRunOnceHTTPClient), it stops a retry whose
// request's start check (WithStartCheck) refuses it, after the backoff and
// before anything is sent again. The error wraps ErrNotSent.
func PrepareRunOnceRetry(req *http.Request) error {
	return mayStart(req.Context())
}

// WithRunOnceRate spaces the RunOnce calls to at most perSecond a second
// (0 is no cap), shared by every goroutine that calls RunOnce. A 429 that the
// client is told of (Observe) makes them all pause for its Retry-After, at
// most maxPause, and halves a capped rate, at most once a second, down to
// 0.5 a second; after 10 seconds without a 429 the rate doubles back up, to
// perSecond at most.
func WithRunOnceRate(perSecond float64, maxPause time.Duration) Option {
	return func(c *Client) error {
		if perSecond < 0 || math.IsNaN(perSecond) || maxPause < 0 {
			return errors.New("run_once rate and pause must not be negative")
		}
		c.pacer = newPacer(perSecond, maxPause)
		return nil
	}
}

// A Throttle is what a 429 did to the RunOnce pace.
type Throttle struct {
	// Rate is the RunOnce calls a second from now on (+Inf when uncapped).
	Rate float64
	// Slowed reports that this 429 halved Rate; otherwise Rate was already
	// as low as it goes (or uncapped) and the calls only pause.
	Slowed bool
	// Pause is how long every RunOnce waits before its call, at most the
	// maxPause given to WithRunOnceRate.
	Pause time.Duration
}

// WithThrottleFunc calls fn when a 429 slows or pauses RunOnce: once for a
// burst of 429s within a second, from the goroutine that called Observe. It
// has no effect without WithRunOnceRate.
func WithThrottleFunc(fn func(Throttle)) Option {
	return func(c *Client) error {
		if fn == nil {
			return errors.New("nil throttle func")
		}
		c.onThrottle = fn
		return nil
	}
}

// Observe tells the client of an answer its transport received, whether the
// transport then retried it or not: pass it every answer (for example from
// go-retryablehttp's ResponseLogHook), so that a 429 met by any call, even
// one retried out of sight, slows RunOnce down. It only reads the status and
// headers, and is safe for concurrent use.
func (c *Client) Observe(resp *http.Response) {
	if c.pacer == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		return
	}
	d, _ := RetryAfter(resp, c.pacer.now())
	if t, ok := c.pacer.throttled(d); ok && c.onThrottle != nil {
		c.onThrottle(t)
	}
}

// RunOnceRate is the RunOnce calls a second now: +Inf when uncapped.
func (c *Client) RunOnceRate() float64 {
	if c.pacer == nil {
		return math.Inf(1)
	}
	return c.pacer.rate()
}

// pacer is the token bucket every RunOnce draws from.
type pacer struct {
	limiter    *rate.Limiter
	configured rate.Limit
	maxPause   time.Duration
	now        func() time.Time
	after      func(time.Duration) <-chan time.Time

	mu           sync.Mutex
	pauseUntil   time.Time
	lastThrottle time.Time
}

const (
	minRate      = 0.5 // calls a second: the slowest 429s push a capped pacer to
	recoverAfter = 10 * time.Second
)

func newPacer(perSecond float64, maxPause time.Duration) *pacer {
	limit := rate.Limit(perSecond)
	if perSecond <= 0 {
		limit = rate.Inf
	}
	return &pacer{limiter: rate.NewLimiter(limit, 1), configured: limit, maxPause: maxPause, now: time.Now, after: time.After}
}

// wait blocks until the next call may go, or ctx ends. A nil pacer never
// waits. The bucket is read at p.now, so that tests can move the clock.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	p.mu.Lock()
	now := p.now()
	if lim := p.limiter.Limit(); lim < p.configured && now.Sub(p.lastThrottle) >= recoverAfter {
		p.limiter.SetLimitAt(now, min(lim*2, p.configured))
		p.lastThrottle = now
	}
	pause := p.pauseUntil.Sub(now)
	p.mu.Unlock()
	if !p.sleep(ctx, pause) {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now = p.now()
	r := p.limiter.ReserveN(now, 1)
	if !p.sleep(ctx, r.DelayFrom(now)) {
		r.CancelAt(p.now())
		return ctx.Err()
	}
	return nil
}

// sleep waits d on the pace's clock, and reports false when ctx ends first.
func (p *pacer) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.after(d):
		return true
	}
}

func (p *pacer) rate() float64 {
	if p.limiter.Limit() == rate.Inf {
		return math.Inf(1)
	}
	return float64(p.limiter.Limit())
}

// throttled records a 429 that asked to wait retryAfter (0 when it did not
// say). ok is false for a 429 of a burst already counted.
func (p *pacer) throttled(retryAfter time.Duration) (t Throttle, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pause := min(max(retryAfter, 0), p.maxPause)
	if until := now.Add(pause); until.After(p.pauseUntil) {
		p.pauseUntil = until
	}
	if now.Sub(p.lastThrottle) < time.Second {
		return Throttle{}, false
	}
	p.lastThrottle = now
	t.Pause = pause
	if lim := p.limiter.Limit(); lim != rate.Inf && lim > minRate {
		p.limiter.SetLimitAt(now, max(lim/2, minRate))
		t.Slowed = true
	}
	t.Rate = p.rate()
	return t, true
}
