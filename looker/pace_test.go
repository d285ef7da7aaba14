package looker_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// retryAfter is an answer that asks to wait: "" does not say how long.
func retryAfter(code int, wait string) *http.Response {
	r := status(code)
	if wait != "" {
		r.Header.Set("Retry-After", wait)
	}
	return r
}

// pacedClient is a client of s whose RunOnce pace runs on a clock the test
// moves, and which records what each 429 did to it.
func pacedClient(t *testing.T, s *lookertest.Server, perSecond float64, maxPause time.Duration) (*looker.Client, *time.Time, *[]looker.Throttle) {
	t.Helper()
	clock := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	var throttles []looker.Throttle
	c := newClient(t, s, looker.WithRunOnceRate(perSecond, maxPause),
		looker.WithThrottleFunc(func(th looker.Throttle) { throttles = append(throttles, th) }))
	looker.SetRunOnceClock(c, func() time.Time { return clock })
	return c, &clock, &throttles
}

func TestA429SlowsRunOnceAndQuietLetsItRecover(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	c, clock, throttles := pacedClient(t, s, 4, time.Minute)
	var rates []float64
	for range 6 {
		c.Observe(retryAfter(http.StatusTooManyRequests, ""))
		c.Observe(retryAfter(http.StatusTooManyRequests, "")) // the same burst: counted once
		rates = append(rates, c.RunOnceRate())
		*clock = clock.Add(time.Second)
	}
	if diff := cmp.Diff([]float64{2, 1, 0.5, 0.5, 0.5, 0.5}, rates); diff != "" {
		t.Errorf("rates after each burst of 429s (-want +got):\n%s", diff)
	}
	want := []looker.Throttle{{Rate: 2, Slowed: true}, {Rate: 1, Slowed: true}, {Rate: 0.5, Slowed: true},
		{Rate: 0.5}, {Rate: 0.5}, {Rate: 0.5}}
	if diff := cmp.Diff(want, *throttles); diff != "" {
		t.Errorf("throttles reported (-want +got):\n%s", diff)
	}
	// Quiet for long enough, it climbs back to the configured rate, no further.
	for range 5 {
		*clock = clock.Add(11 * time.Second)
		if _, err := c.RunOnce(context.Background(), "42"); err != nil {
			t.Fatal(err)
		}
	}
	if c.RunOnceRate() != 4 {
		t.Errorf("after a quiet minute the rate is %v, want 4", c.RunOnceRate())
	}
	if diff := cmp.Diff(map[string]int{"42": 5}, s.Reruns()); diff != "" {
		t.Errorf("re-runs (-want +got):\n%s", diff)
	}
}

func TestOnlyA429SlowsRunOnce(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	c, _, throttles := pacedClient(t, s, 4, time.Minute)
	c.Observe(retryAfter(http.StatusInternalServerError, "3600"))
	c.Observe(retryAfter(http.StatusServiceUnavailable, "3600"))
	c.Observe(retryAfter(http.StatusOK, ""))
	c.Observe(nil)
	if c.RunOnceRate() != 4 || len(*throttles) != 0 {
		t.Errorf("a 500, a 503 and a 200 made the rate %v and reported %v, want 4 and nothing", c.RunOnceRate(), *throttles)
	}
}

func TestAnUncappedRunOnceOnlyPausesAfterA429(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	c, _, throttles := pacedClient(t, s, 0, time.Minute)
	c.Observe(retryAfter(http.StatusTooManyRequests, "1"))
	want := []looker.Throttle{{Rate: math.Inf(1), Pause: time.Second}}
	if diff := cmp.Diff(want, *throttles); diff != "" {
		t.Errorf("throttles reported (-want +got):\n%s", diff)
	}

	unpaced := newClient(t, s)
	unpaced.Observe(retryAfter(http.StatusTooManyRequests, "1"))
	if !math.IsInf(unpaced.RunOnceRate(), 1) {
		t.Errorf("a client without WithRunOnceRate runs at %v, want no cap", unpaced.RunOnceRate())
	}
}

func TestEveryRunOnceWaitsOutA429sPause(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	c, clock, _ := pacedClient(t, s, 0, 50*time.Millisecond)
	c.Observe(retryAfter(http.StatusTooManyRequests, "3600")) // capped at 50ms
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.RunOnce(ctx, "42")
	if !errors.Is(err, looker.ErrNotSent) || !errors.Is(err, context.Canceled) || !looker.NotActed(err) || looker.Unreachable(err) {
		t.Errorf("RunOnce stopped during the pause = %v; want ErrNotSent and context.Canceled, NotActed and not Unreachable", err)
	}
	if len(s.Reruns()) != 0 {
		t.Errorf("a RunOnce stopped during the pause re-ran %v", s.Reruns())
	}
	*clock = clock.Add(50 * time.Millisecond)
	if _, err := c.RunOnce(context.Background(), "42"); err != nil {
		t.Errorf("RunOnce after the pause: %v", err)
	}
}
