package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// testClient wires a Looker client of s as run does, with millisecond
// retries, logging to the returned buffer at info.
func testClient(t *testing.T, s *lookertest.Server, rate float64) (*looker.Client, *bytes.Buffer) {
	t.Helper()
	cfg := Config{BaseURL: s.URL, ClientID: lookertest.ClientID, ClientSecret: lookertest.ClientSecret,
		VerifySSL: true, Rate: rate, timeout: 5 * time.Second,
		retry: retryTiming{max: 3, waitMin: time.Millisecond, waitMax: 5 * time.Millisecond}}
	var buf bytes.Buffer
	lk, err := newLookerClient(cfg, zerolog.New(zerolog.SyncWriter(&buf)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	return lk, &buf
}

// logLines decodes each JSON log line.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestEveryRetryIsLoggedAtInfoWithoutTheQuery(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.Inject(lookertest.Fault{Op: lookertest.OpScheduledPlan, Status: http.StatusServiceUnavailable, RetryAfter: "0", Times: 2})
	lk, buf := testClient(t, s, 0)
	if _, err := lk.ScheduledPlan(context.Background(), "42", "hidden_field"); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, l := range logLines(t, buf) {
		if _, ok := l["wait"].(float64); !ok {
			t.Errorf("retry log %v has no wait", l)
		}
		delete(l, "wait") // how long it took is the clock's
		got = append(got, l)
	}
	retry := func(attempt int) map[string]any {
		return map[string]any{"level": "info", "message": "retrying request", "method": "GET",
			"path": "/api/4.0/scheduled_plans/42", "attempt": float64(attempt), "status": float64(503)}
	}
	if diff := cmp.Diff([]map[string]any{retry(2), retry(3)}, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if strings.Contains(buf.String(), "hidden_field") {
		t.Errorf("the log shows the query: %s", buf)
	}
}

func TestA429RetriedOutOfSightSlowsRunOnce(t *testing.T) {
	t.Parallel()
	for _, op := range []string{lookertest.OpRunOnce, lookertest.OpScheduledPlan} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			s.AddPlan(lookertest.Plan{ID: "42"})
			s.Inject(lookertest.Fault{Op: op, Status: http.StatusTooManyRequests, RetryAfter: "0"})
			lk, buf := testClient(t, s, 4)
			if _, err := lk.ScheduledPlan(context.Background(), "42"); err != nil {
				t.Fatal(err)
			}
			if _, err := lk.RunOnce(context.Background(), "42"); err != nil {
				t.Fatal(err)
			}
			if lk.RunOnceRate() != 2 {
				t.Errorf("after a 429 retried by the transport, run_once runs at %v a second, want it halved to 2", lk.RunOnceRate())
			}
			if !strings.Contains(buf.String(), `"level":"warn","rate":2,"message":"Looker answered 429: slowing run_once calls"`) {
				t.Errorf("the slowdown is not logged:\n%s", buf)
			}
		})
	}
}

func TestLogThrottle(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logThrottle(zerolog.New(&buf))(looker.Throttle{Rate: 0.5, Pause: 2 * time.Second})
	if want := `{"level":"warn","pause":2000,"message":"Looker answered 429: pausing run_once calls"}`; strings.TrimSpace(buf.String()) != want {
		t.Errorf("log = %s, want %s", buf.String(), want)
	}
}
