package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/rerun"
)

func TestRetryLoggerLogsRetriesAtInfo(t *testing.T) {
	var buf bytes.Buffer
	l := retryLogger{log: zerolog.New(&buf).Level(zerolog.InfoLevel), retryMax: 5}
	l.Debug("performing request", "method", "POST", "url", "https://x")
	l.Debug("retrying request", "request", "POST https://x/api/4.0/login (status: 503)", "timeout", 2*time.Second, "remaining", 5)
	out := buf.String()
	if strings.Contains(out, "performing request") {
		t.Errorf("debug noise at info: %s", out)
	}
	for _, want := range []string{`"level":"info"`, `"message":"retrying request"`, `"attempt":2`, `"wait":2000`, `(status: 503)`} {
		if !strings.Contains(out, want) {
			t.Errorf("retry log %s lacks %s", out, want)
		}
	}
}

func TestThrottleOn429(t *testing.T) {
	t.Parallel()
	answer := func(code int, retryAfter string) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}}
		r.Header.Set("Retry-After", retryAfter)
		return r
	}
	p := rerun.NewPacer(4, 50*time.Millisecond, zerolog.Nop())
	hook := throttleOn429(p)
	hook(nil, answer(500, "3600"))
	hook(nil, answer(503, "3600"))
	if p.Rate() != 4 {
		t.Errorf("a 500 and a 503 changed the rate to %v, want 4", p.Rate())
	}
	hook(nil, answer(429, "3600")) // a pause capped at 50ms
	if p.Rate() != 2 {
		t.Errorf("after a 429 the rate is %v, want it halved to 2", p.Rate())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait right after a 429 = %v, want it to pause", err)
	}
}
