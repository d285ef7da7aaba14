package looker_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/looker-rerun/looker-rerun/looker"
)

var (
	dialErr  = &url.Error{Op: "Post", URL: "https://x/api/4.0/login", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	resetErr = &url.Error{Op: "Post", URL: "https://x/api/4.0/x", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}
	eofErr   = &url.Error{Op: "Post", URL: "https://x/api/4.0/x", Err: io.EOF}
	certErr  = &url.Error{Op: "Post", URL: "https://x/api/4.0/x", Err: x509.UnknownAuthorityError{}}
	timeout  = &url.Error{Op: "Post", URL: "https://x/api/4.0/x", Err: context.DeadlineExceeded}
)

func status(code int) *http.Response {
	return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody}
}

// answer is a response with a body of the given content type.
func answer(code int, contentType, body string) *http.Response {
	r := status(code)
	r.Header.Set("Content-Type", contentType)
	r.Body = io.NopCloser(strings.NewReader(body))
	return r
}

const (
	lookerJSON = `{"message":"Service Unavailable","documentation_url":"https://cloud.google.com/looker/docs/r/api/support"}`
	proxyPage  = `<html><head><title>503 Service Temporarily Unavailable</title></head><body>upstream connect error</body></html>`
	// envoyJSON is how Envoy, Kong and most API gateways answer: JSON with a
	// message, and no documentation_url.
	envoyJSON = `{"message":"upstream connect error or disconnect/reset before headers. reset reason: connection termination"}`
)

func TestRetryPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		resp               *http.Response
		err                error
		wantSafe, wantOnce bool
	}{
		{"refused connection", nil, dialErr, true, true},
		{"reset after sending", nil, resetErr, true, false},
		{"closed without an answer", nil, eofErr, true, false},
		{"timeout", nil, timeout, true, false},
		{"untrusted certificate", nil, certErr, false, false},
		{"429 from Looker", answer(429, "application/json", lookerJSON), nil, true, true},
		{"503 from Looker", answer(503, "application/json; charset=utf-8", lookerJSON), nil, true, true},
		{"503 from a proxy, in HTML", answer(503, "text/html", proxyPage), nil, true, false},
		{"429 from a proxy, in HTML", answer(429, "text/html", proxyPage), nil, true, true},
		{"429 from a gateway, JSON with only a message", answer(429, "application/json", `{"message":"API rate limit exceeded"}`), nil, true, true},
		{"429 without a body", status(429), nil, true, true},
		{"503 in JSON without a message", answer(503, "application/json", `{"error":"upstream"}`), nil, true, false},
		{"503 from a gateway, JSON with only a message", answer(503, "application/json", envoyJSON), nil, true, false},
		{"503 JSON with a null documentation_url", answer(503, "application/json", `{"message":"x","documentation_url":null}`), nil, true, false},
		{"503 JSON with a documentation_url not a string", answer(503, "application/json", `{"message":"x","documentation_url":1}`), nil, true, false},
		{"503 JSON with an empty message", answer(503, "application/json", `{"message":"","documentation_url":"u"}`), nil, true, false},
		{"503 JSON with an empty documentation_url", answer(503, "application/json", `{"message":"x","documentation_url":""}`), nil, true, true},
		{"503 JSON body declared as text", answer(503, "text/plain", lookerJSON), nil, true, false},
		{"503 without a body", status(503), nil, true, false},
		{"500", status(500), nil, true, false},
		{"502", status(502), nil, true, false},
		{"504", status(504), nil, true, false},
		{"501", status(501), nil, false, false},
		{"404", status(404), nil, false, false},
		{"401", status(401), nil, false, false},
		{"200", status(200), nil, false, false},
	}
	for _, tt := range tests {
		var before string
		if tt.resp != nil && tt.resp.Body != http.NoBody {
			b, _ := io.ReadAll(tt.resp.Body)
			before, tt.resp.Body = string(b), io.NopCloser(strings.NewReader(string(b)))
		}
		safe, _ := looker.RetrySafe(context.Background(), tt.resp, tt.err)
		once, _ := looker.RetryRunOnce(context.Background(), tt.resp, tt.err)
		if safe != tt.wantSafe || once != tt.wantOnce {
			t.Errorf("%s: RetrySafe %v RetryRunOnce %v, want %v %v", tt.name, safe, once, tt.wantSafe, tt.wantOnce)
		}
		if tt.resp != nil && before != "" {
			// The policy reads the body to tell Looker's error from a
			// proxy's: the caller must still find it whole.
			if after, _ := io.ReadAll(tt.resp.Body); string(after) != before {
				t.Errorf("%s: body after RetryRunOnce = %q, want %q", tt.name, after, before)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, policy := range map[string]func(context.Context, *http.Response, error) (bool, error){
		"RetrySafe": looker.RetrySafe, "RetryRunOnce": looker.RetryRunOnce,
	} {
		if retry, err := policy(ctx, status(503), nil); retry || !errors.Is(err, context.Canceled) {
			t.Errorf("%s after cancel: %v %v, want no retry and the context's error", name, retry, err)
		}
	}
}

// lerr is Looker's own error answer to a run_once, as the client returns it.
func lerr(code int) error {
	return fmt.Errorf("looker: run scheduled plan 1: %w", &looker.Error{StatusCode: code, Method: "POST", Path: "/p", FromLooker: true})
}

// proxyErr is the same status from a proxy in front of Looker, in its own
// words.
func proxyErr(code int) error {
	return fmt.Errorf("looker: run scheduled plan 1: %w", &looker.Error{StatusCode: code, Method: "POST", Path: "/p", Message: "<html>"})
}

func TestNotActed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{lerr(400), true}, {lerr(403), true}, {lerr(404), true}, {lerr(409), true}, {lerr(422), true},
		{lerr(429), true}, {lerr(503), true}, {proxyErr(404), true}, {proxyErr(429), true},
		{proxyErr(503), false},
		{lerr(408), false}, {lerr(500), false}, {lerr(501), false}, {lerr(502), false}, {lerr(504), false},
		{dialErr, true}, {resetErr, false}, {eofErr, false}, {timeout, false},
		{context.DeadlineExceeded, false}, {errors.New("something"), false},
	}
	for _, tt := range tests {
		if got := looker.NotActed(tt.err); got != tt.want {
			t.Errorf("NotActed(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false}, {dialErr, true}, {certErr, true}, {lerr(503), true}, {lerr(429), true}, {proxyErr(429), true},
		{proxyErr(503), false}, {lerr(404), false}, {lerr(403), false}, {lerr(408), false}, {lerr(500), false},
		{lerr(502), false}, {proxyErr(502), false}, {resetErr, false}, {eofErr, false}, {timeout, false},
		{errors.New("something"), false},
	}
	for _, tt := range tests {
		if got := looker.Unreachable(tt.err); got != tt.want {
			t.Errorf("Unreachable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	const lo, hi = 10 * time.Millisecond, time.Second
	withRetryAfter := func(code int, v string) *http.Response {
		r := status(code)
		r.Header.Set("Retry-After", v)
		return r
	}
	for _, tt := range []struct {
		name string
		resp *http.Response
		want time.Duration
	}{
		{"Retry-After is honoured", withRetryAfter(429, "0"), lo},
		{"Retry-After seconds", withRetryAfter(503, "1"), time.Second},
		{"Retry-After past the cap is capped", withRetryAfter(429, "3600"), hi},
		{"a far HTTP date is capped", withRetryAfter(429, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), hi},
		{"a past HTTP date waits the minimum", withRetryAfter(429, "Mon, 02 Jan 2006 15:04:05 GMT"), lo},
	} {
		if got := looker.Backoff(lo, hi, 0, tt.resp); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	for attempt := range 40 {
		for range 20 {
			got := looker.Backoff(lo, hi, attempt, status(500))
			ceiling := min(hi, lo<<min(attempt, 30))
			if got < lo || got > ceiling {
				t.Fatalf("attempt %d: %s, want within [%s, %s]", attempt, got, lo, ceiling)
			}
		}
	}
}
