package main

// This file wires the HTTP clients: go-retryablehttp driven by the looker
// package's retry policies, every answer it receives told to the Looker
// client (whose run_once pace a 429 slows), and its retries logged through
// zerolog from its typed hooks.

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
)

// newLookerClient wires the Looker client: one retrying HTTP client for the
// calls that are safe to repeat, a careful one for run_once, and run_once
// paced at RERUN_RATE.
func newLookerClient(cfg Config, log zerolog.Logger) (*looker.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if !cfg.VerifySSL {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked, as Looker's SDKs allow
	}
	// lk hears of every answer, retried or not, so that a 429 met by any
	// call slows every run_once. It is set before any request is made.
	var lk *looker.Client
	retries := retryLog{log: log}
	newClient := func(check retryablehttp.CheckRetry, prepare retryablehttp.PrepareRetry) *http.Client {
		c := retryablehttp.NewClient()
		c.HTTPClient = &http.Client{
			Transport: transport,
			Timeout:   cfg.timeout,
			// The retrying client's own requests never follow a redirect
			// (a 307 would post the login form, secret included, wherever
			// it points). StandardClient wraps it in an http.Client of its
			// own, which the looker package stops from following one too.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		c.RetryMax, c.RetryWaitMin, c.RetryWaitMax = cfg.retry.max, cfg.retry.waitMin, cfg.retry.waitMax
		// The library's own Backoff does not cap a Retry-After by
		// RetryWaitMax; looker.Backoff does.
		c.CheckRetry, c.Backoff = retries.noting(check), looker.Backoff
		// Asked after the backoff, before the request is sent again.
		c.PrepareRetry = prepare
		// Keep the last answer, so the caller sees Looker's status and
		// message rather than "giving up after N attempts".
		c.ErrorHandler = retryablehttp.PassthroughErrorHandler
		// Its own messages quote whole URLs, queries included; the hooks
		// say what an operator needs.
		c.Logger = nil
		c.RequestLogHook = retries.logRetry
		c.ResponseLogHook = func(_ retryablehttp.Logger, resp *http.Response) { lk.Observe(resp) }
		hc := c.StandardClient()
		hc.Transport = retries.track(hc.Transport)
		return hc
	}
	opts := []looker.Option{
		looker.WithHTTPClient(newClient(looker.RetrySafe, nil)),
		// The library retries POSTs like any other call: run_once gets a
		// policy that repeats it only when Looker certainly did not act,
		// and only while the run may still start a call: a backoff may
		// end after a stop or RERUN_DEADLINE's start-by time.
		looker.WithRunOnceHTTPClient(newClient(looker.RetryRunOnce, looker.PrepareRunOnceRetry)),
		looker.WithCredentials(cfg.ClientID, cfg.ClientSecret),
		looker.WithUserAgent("looker-rerun/" + version),
		// A Retry-After pauses run_once no longer than a retry waits.
		looker.WithRunOnceRate(cfg.Rate, cfg.retry.waitMax),
		looker.WithThrottleFunc(logThrottle(log)),
	}
	if cfg.clock != nil {
		// The pace waits on the run's clock, as the run's own waits do.
		opts = append(opts, looker.WithClock(cfg.clock))
	}
	lk, err := looker.NewClient(cfg.BaseURL, opts...)
	return lk, err
}

// logThrottle warns of each 429 that slowed or paused the run_once calls.
func logThrottle(log zerolog.Logger) func(looker.Throttle) {
	return func(t looker.Throttle) {
		if t.Slowed {
			log.Warn().Float64("rate", t.Rate).Msg("Looker answered 429: slowing run_once calls")
			return
		}
		log.Warn().Dur("pause", t.Pause).Msg("Looker answered 429: pausing run_once calls")
	}
}

// retryLog logs every retry at info, with why and after how long: retries
// are what an operator reads when a morning goes wrong. go-retryablehttp's
// RequestLogHook says a retry is starting but not why; its CheckRetry sees
// why. A note travels between them in the request's context (track).
type retryLog struct {
	log zerolog.Logger
}

// lastAttempt is what became of a request's previous attempt. One request's
// attempts run one after another, on the caller's goroutine.
type lastAttempt struct {
	status int // 0 when there was no answer
	err    error
	at     time.Time
}

type lastAttemptKey struct{}

// track gives each request a note of its own for noting and logRetry.
func (retryLog) track(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return next.RoundTrip(req.WithContext(context.WithValue(req.Context(), lastAttemptKey{}, &lastAttempt{})))
	})
}

// noting notes what each attempt got before check decides on a retry.
func (retryLog) noting(check retryablehttp.CheckRetry) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if last, ok := ctx.Value(lastAttemptKey{}).(*lastAttempt); ok {
			*last = lastAttempt{err: err, at: time.Now()}
			if resp != nil {
				last.status = resp.StatusCode
			}
		}
		return check(ctx, resp, err)
	}
}

// logRetry is a RequestLogHook: attempt is 0 for the first.
func (l retryLog) logRetry(_ retryablehttp.Logger, req *http.Request, attempt int) {
	if attempt == 0 {
		return
	}
	// The path only: a query is no business of the log.
	e := l.log.Info().Str("method", req.Method).Str("path", looker.RedactURL(req.URL.Path)).Int("attempt", attempt+1)
	if last, ok := req.Context().Value(lastAttemptKey{}).(*lastAttempt); ok {
		if last.status != 0 {
			e = e.Int("status", last.status)
		}
		if err := last.err; err != nil {
			// A *url.Error quotes the whole URL; its cause is enough.
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err
			}
			e = e.AnErr("error", err)
		}
		e = e.Dur("wait", time.Since(last.at))
	}
	e.Msg("retrying request")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
