package rerun

import (
	"context"
	"math"
	"net/http"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Pacer is the token bucket that every worker draws from before a run_once
// call. Looker rate-limits run_once; when it answers 429 anyway, the pacer
// halves its rate for the rest of the run.
type Pacer struct {
	limiter *rate.Limiter
	log     zerolog.Logger
}

// minRate is the slowest a pacer goes after 429s: one call every 10 seconds.
const minRate = 0.1

// throttledRate is where an uncapped pacer starts after its first 429.
const throttledRate = 2

// NewPacer returns a pacer of perSecond calls a second; 0 is no cap until
// Looker answers 429.
func NewPacer(perSecond float64, log zerolog.Logger) *Pacer {
	limit := rate.Limit(perSecond)
	if perSecond <= 0 {
		limit = rate.Inf
	}
	return &Pacer{limiter: rate.NewLimiter(limit, 1), log: log}
}

// Wait blocks until the next call may go, or ctx ends. A nil pacer never
// waits.
func (p *Pacer) Wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
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

// Throttled slows the pacer after a 429.
func (p *Pacer) Throttled() {
	cur := float64(p.limiter.Limit())
	next := cur / 2
	if p.limiter.Limit() == rate.Inf {
		next = throttledRate
	}
	next = math.Max(next, minRate)
	if next < cur {
		p.limiter.SetLimit(rate.Limit(next))
		p.log.Warn().Float64("rate", next).Msg("Looker answered 429: slowing run_once calls")
	}
}

// ResponseHook is a retryablehttp.ResponseLogHook that slows the pacer on
// every 429 the transport sees, retried or not.
func (p *Pacer) ResponseHook(_ retryablehttp.Logger, resp *http.Response) {
	if resp.StatusCode == http.StatusTooManyRequests {
		p.Throttled()
	}
}
