package main

// This file wires the HTTP clients: go-retryablehttp driven by the looker
// package's retry policies, its logs through zerolog, and the 429s it sees
// told to the run_once pacer.

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// newLookerClient wires the Looker client: one retrying HTTP client for the
// calls that are safe to repeat, a careful one for run_once.
func newLookerClient(cfg Config, pacer *rerun.Pacer, log zerolog.Logger) (*looker.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if !cfg.VerifySSL {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked, as Looker's SDKs allow
	}
	newClient := func(check retryablehttp.CheckRetry) *http.Client {
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
		c.CheckRetry, c.Backoff = check, looker.Backoff
		// Keep the last answer, so the caller sees Looker's status and
		// message rather than "giving up after N attempts".
		c.ErrorHandler = retryablehttp.PassthroughErrorHandler
		c.Logger = retryLogger{log: log, retryMax: cfg.retry.max}
		c.ResponseLogHook = throttleOn429(pacer)
		return c.StandardClient()
	}
	return looker.NewClient(cfg.BaseURL,
		looker.WithHTTPClient(newClient(looker.RetrySafe)),
		// The library retries POSTs like any other call: run_once gets a
		// policy that repeats it only when Looker certainly did not act.
		looker.WithRunOnceHTTPClient(newClient(looker.RetryRunOnce)),
		looker.WithCredentials(cfg.ClientID, cfg.ClientSecret),
		looker.WithUserAgent("looker-rerun/"+version),
	)
}

// throttleOn429 tells the pacer of every 429 the transport sees, retried or
// not, so that every worker slows down, not only the one that met it.
func throttleOn429(pacer *rerun.Pacer) retryablehttp.ResponseLogHook {
	return func(_ retryablehttp.Logger, resp *http.Response) {
		if resp.StatusCode == http.StatusTooManyRequests {
			d, _ := looker.RetryAfter(resp, time.Now())
			pacer.Throttled(d)
		}
	}
}

// retryLogger adapts zerolog to retryablehttp's LeveledLogger, so retries are
// logged like everything else, and at info: they are what an operator reads
// when a morning goes wrong.
type retryLogger struct {
	log zerolog.Logger
	// retryMax is the client's, to number the attempts.
	retryMax int
}

var _ retryablehttp.LeveledLogger = retryLogger{}

func (l retryLogger) Error(msg string, kv ...any) { l.event(l.log.Info(), msg, kv) }
func (l retryLogger) Warn(msg string, kv ...any)  { l.event(l.log.Warn(), msg, kv) }
func (l retryLogger) Info(msg string, kv ...any)  { l.event(l.log.Info(), msg, kv) }
func (l retryLogger) Debug(msg string, kv ...any) {
	if msg == "retrying request" {
		l.event(l.log.Info(), msg, kv)
		return
	}
	l.event(l.log.Debug(), msg, kv)
}

func (l retryLogger) event(e *zerolog.Event, msg string, kv []any) {
	for i := 0; i+1 < len(kv); i += 2 {
		key, _ := kv[i].(string)
		switch v := kv[i+1].(type) {
		case time.Duration:
			if key == "timeout" {
				key = "wait"
			}
			e = e.Dur(key, v)
		case int:
			if key == "remaining" {
				e = e.Int("attempt", l.retryMax-v+2)
			}
			e = e.Int(key, v)
		case error:
			e = e.AnErr(key, v)
		default:
			e = e.Interface(key, v)
		}
	}
	e.Msg(msg)
}
