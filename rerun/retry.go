package rerun

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
)

// RetrySafe is the retry policy (a retryablehttp.CheckRetry) of the requests
// that are safe to repeat: login, logout and the System Activity and Look
// queries. It retries connection errors, 429 and 5xx except 501, and nothing
// once ctx has ended.
func RetrySafe(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return !certainlyFatal(err), nil
	}
	return resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented), nil
}

// RetryRunOnce is the retry policy of scheduled_plan_run_once_by_id, which
// delivers the report again each time Looker acts on it. It repeats the call
// only when Looker certainly did not act: a 429 or a 503, or a connection
// that failed before the request was sent. Every other failure is left to the
// caller, which must look for the copy before sending again.
func RetryRunOnce(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return notSent(err) && !certainlyFatal(err), nil
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable, nil
}

// NotActed reports whether a failed call certainly left Looker unchanged: it
// was never sent, or Looker refused it (4xx other than 408, 501, 503). After
// any other failure (another 5xx, a timeout, a connection lost after
// sending) Looker may have acted.
func NotActed(err error) bool {
	var lerr *looker.Error
	if errors.As(err, &lerr) {
		s := lerr.StatusCode
		return (s >= 400 && s < 500 && s != http.StatusRequestTimeout) ||
			s == http.StatusNotImplemented || s == http.StatusServiceUnavailable
	}
	return notSent(err)
}

// notSent reports whether a transport error happened before the request
// left: the connection could not be made or its TLS handshake failed.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || certainlyFatal(err)
}

// certainlyFatal reports errors that no retry can mend: a certificate the
// client does not trust.
func certainlyFatal(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

// Backoff is the wait before retry attempt+1 (a retryablehttp.Backoff):
// exponential from min with full jitter, at most max. A Retry-After header
// on a 429 or 503 is honoured, capped at max too, so a Looker asking for an
// hour cannot stall the task past its timeout.
func Backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return clamp(d, minWait, maxWait)
		}
	}
	ceiling := minWait << min(attempt, 30)
	if ceiling <= 0 || ceiling > maxWait {
		ceiling = maxWait
	}
	if ceiling <= minWait {
		return minWait
	}
	return minWait + rand.N(ceiling-minWait+1)
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// RetryLogger adapts zerolog to retryablehttp's LeveledLogger, so retries are
// logged like everything else, and at info: they are what an operator reads
// when a morning goes wrong.
type RetryLogger struct {
	Log zerolog.Logger
	// RetryMax is the client's, to number the attempts.
	RetryMax int
}

var _ retryablehttp.LeveledLogger = RetryLogger{}

func (l RetryLogger) Error(msg string, kv ...any) { l.event(l.Log.Info(), msg, kv) }
func (l RetryLogger) Warn(msg string, kv ...any)  { l.event(l.Log.Warn(), msg, kv) }
func (l RetryLogger) Debug(msg string, kv ...any) {
	if msg == "retrying request" {
		l.event(l.Log.Info(), msg, kv)
		return
	}
	l.event(l.Log.Debug(), msg, kv)
}
func (l RetryLogger) Info(msg string, kv ...any) { l.event(l.Log.Info(), msg, kv) }

func (l RetryLogger) event(e *zerolog.Event, msg string, kv []any) {
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
				e = e.Int("attempt", l.RetryMax-v+2)
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
