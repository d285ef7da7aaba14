package rerun

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Pacer is the token bucket that every worker draws from before a run_once
// call (RERUN_RATE). Looker rate-limits run_once; when it answers 429 anyway,
// the pacer backs off further:
//   - every worker pauses for the Retry-After the answer asked for (at most
//     maxPause), so the other workers do not walk into the same wall;
//   - a capped rate is halved, at most once a second (a burst of 429s from
//     the workers is one signal), down to minRate;
//   - after recoverAfter without a 429 the rate doubles back up, to the
//     configured rate at most.
type Pacer struct {
	limiter    *rate.Limiter
	configured rate.Limit
	maxPause   time.Duration
	log        zerolog.Logger
	now        func() time.Time

	mu           sync.Mutex
	pauseUntil   time.Time
	lastThrottle time.Time
}

const (
	minRate      = 0.5 // calls a second: the slowest 429s push a capped pacer to
	recoverAfter = 10 * time.Second
)

// NewPacer returns a pacer of perSecond calls a second (0 is no cap) whose
// pauses after a 429 last at most maxPause.
func NewPacer(perSecond float64, maxPause time.Duration, log zerolog.Logger) *Pacer {
	limit := rate.Limit(perSecond)
	if perSecond <= 0 {
		limit = rate.Inf
	}
	return &Pacer{limiter: rate.NewLimiter(limit, 1), configured: limit, maxPause: maxPause, log: log, now: time.Now}
}

// Wait blocks until the next call may go, or ctx ends. A nil pacer never
// waits.
func (p *Pacer) Wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	p.mu.Lock()
	now := p.now()
	if lim := p.limiter.Limit(); lim < p.configured && now.Sub(p.lastThrottle) >= recoverAfter {
		p.limiter.SetLimit(min(lim*2, p.configured))
		p.lastThrottle = now
	}
	pause := p.pauseUntil.Sub(now)
	p.mu.Unlock()
	if pause > 0 {
		t := time.NewTimer(pause)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return p.limiter.Wait(ctx)
}

// Rate is the current calls per second (+Inf when uncapped).
func (p *Pacer) Rate() float64 {
	if p.limiter.Limit() == rate.Inf {
		return math.Inf(1)
	}
	return float64(p.limiter.Limit())
}

// Throttled records a 429 that asked to wait retryAfter (0 when it did not
// say).
func (p *Pacer) Throttled(retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pause := min(max(retryAfter, 0), p.maxPause)
	if until := now.Add(pause); until.After(p.pauseUntil) {
		p.pauseUntil = until
	}
	if now.Sub(p.lastThrottle) < time.Second {
		return
	}
	p.lastThrottle = now
	if lim := p.limiter.Limit(); lim != rate.Inf && lim > minRate {
		next := max(lim/2, minRate)
		p.limiter.SetLimit(next)
		p.log.Warn().Float64("rate", float64(next)).Msg("Looker answered 429: slowing run_once calls")
		return
	}
	p.log.Warn().Dur("pause", pause).Msg("Looker answered 429: pausing run_once calls")
}
