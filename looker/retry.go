package looker

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"
)

// This file is what the client knows about repeating a call: which answers
// mean Looker did not act, how long to wait, and what a Retry-After may cost.
// The policies have the signatures of go-retryablehttp's CheckRetry and
// Backoff, built from standard-library types only, so the caller can wire them
// into that library (or any other) without this package importing it.

// RetrySafe is the retry policy of the calls that are safe to repeat: login,
// logout and the System Activity and Look queries. It retries connection
// errors, 429 and 5xx except 501, and nothing once ctx has ended or the
// server's certificate is not trusted.
func RetrySafe(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return !untrusted(err), nil
	}
	return resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented), nil
}

// RetryRunOnce is the retry policy of scheduled_plan_run_once_by_id (RunOnce),
// which delivers the report again each time Looker acts on it. It repeats the
// call only when Looker certainly did not act: a connection that was never
// made, any 429, or a 503 that is Looker's own JSON error. Any other answer is
// left to the caller, which must look for the copy before sending again. To
// tell Looker's 503 from a proxy's it reads the start of the body and puts it
// back.
//
// A 429 and a 503 from something in front of Looker mean different things.
// A 429 (RFC 6585) says the client sent too many requests: a rate limiter
// answers it instead of forwarding the call, so whoever says it, Looker never
// saw the call, and it is repeated after the wait Backoff reads from its
// Retry-After. Left to the caller, a storm of 429s would cost a System
// Activity check for every plan. A 503 from a proxy or gateway is typically
// its upstream failing: Looker refused the connection, or reset it or timed
// out after the request reached it, perhaps after it made the copy. Only
// Looker's own 503 says that Looker itself turned the call away.
func RetryRunOnce(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return neverConnected(err) && !untrusted(err), nil
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true, nil
	case http.StatusServiceUnavailable:
		return fromLooker(resp), nil
	}
	return false, nil
}

// fromLooker reports whether resp carries Looker's own JSON error. It reads
// at most maxErrorBody bytes of the body and leaves them to read again.
func fromLooker(resp *http.Response) bool {
	if resp.Body == nil {
		return false
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = rereadBody{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	_, ok := lookerError(resp.Header, head)
	return ok
}

// rereadBody is a body whose start was read ahead: it reads the start again,
// then the rest, and closes the original.
type rereadBody struct {
	io.Reader
	io.Closer
}

// NotActed reports whether a failed call certainly left Looker unchanged: it
// was never sent (ErrNotSent, or no connection), or it was refused: any 429 (see RetryRunOnce for why even a
// proxy's), a 503 only when it is Looker's own JSON error, and any other 4xx
// but 408. After any other failure (408, another 5xx, a proxy's 503, a
// timeout, a connection lost after sending) Looker may have acted.
func NotActed(err error) bool {
	if errors.Is(err, ErrNotSent) {
		return true
	}
	var lerr *Error
	if errors.As(err, &lerr) {
		switch s := lerr.StatusCode; {
		case s == http.StatusTooManyRequests:
			return true
		case s == http.StatusServiceUnavailable:
			return lerr.FromLooker
		case s == http.StatusRequestTimeout:
			return false
		default:
			return s >= 400 && s < 500
		}
	}
	return neverConnected(err)
}

// Unreachable reports whether a call failed because Looker could not be
// reached or would not take calls: no connection, or a 429 or Looker's own
// 503 still there after every retry. A caller counts these to stop a run
// that Looker is turning away, rather than failing plan after plan. A refusal
// of this one call (404, 422) is not one, nor is a failure after which
// Looker may have acted.
func Unreachable(err error) bool {
	var lerr *Error
	if errors.As(err, &lerr) {
		return lerr.StatusCode == http.StatusTooManyRequests ||
			(lerr.StatusCode == http.StatusServiceUnavailable && lerr.FromLooker)
	}
	return err != nil && neverConnected(err)
}

// neverConnected reports whether a transport error happened before the
// request left: the connection could not be made or its TLS handshake failed.
func neverConnected(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || untrusted(err)
}

// untrusted reports a certificate the client does not trust: no retry can
// mend it.
func untrusted(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

// Backoff is the wait before retry attempt+1: exponential from minWait with
// full jitter, at most maxWait. A Retry-After header on a 429 or 503 is
// honoured, capped at maxWait too, so a Looker asking for an hour cannot
// stall the task past its timeout.
func Backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := RetryAfter(resp, time.Now()); ok {
			return max(minWait, min(d, maxWait))
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

// RetryAfter reads the Retry-After header of resp: seconds, or an HTTP date
// (relative to now). ok is false when there is none or it cannot be read. A
// wait over a day is read as a day.
func RetryAfter(resp *http.Response, now time.Time) (d time.Duration, ok bool) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		const day = int64(24 * time.Hour / time.Second)
		return time.Duration(min(s, day)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
