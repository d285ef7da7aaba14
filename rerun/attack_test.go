package rerun_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// These tests try to get a report sent after the run stopped starting
// re-runs (a SIGTERM, RERUN_DEADLINE's start-by time), or lost with the run
// saying OK, through what sits between deciding to send and the request
// leaving: the run_once pace, a 429's pause, a look-alike group sent one
// after another.

// pausedClient is a client of s whose run_once pace runs on the clock of s
// and is paused for pause, as a 429 with that Retry-After pauses it.
func pausedClient(t *testing.T, s *lookertest.Server, pause time.Duration) *looker.Client {
	t.Helper()
	lk, err := looker.NewClient(s.URL, looker.WithHTTPClient(s.Client()), looker.WithCredentials(lookertest.ClientID, lookertest.ClientSecret),
		looker.WithRunOnceRate(0, time.Hour), looker.WithClock(s.Clock()))
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
	resp.Header.Set("Retry-After", strconv.Itoa(int(pause/time.Second)))
	lk.Observe(resp)
	return lk
}

// graceNeverEnds is the clock of a run whose grace period after a stop has
// not ended yet: its After(grace) never fires.
type graceNeverEnds struct {
	*lookertest.Clock
	grace time.Duration
}

func (c graceNeverEnds) After(d time.Duration) <-chan time.Time {
	if d == c.grace {
		return nil
	}
	return c.Clock.After(d)
}

// stopAtRunOnce stops the run, as a SIGTERM would, as run_once is called:
// after the run decided to send, before the call waits its turn.
type stopAtRunOnce struct {
	rerun.Looker
	stop context.CancelFunc
}

func (l stopAtRunOnce) RunOnce(ctx context.Context, planID string) (looker.ScheduledPlan, error) {
	l.stop()
	return l.Looker.RunOnce(ctx, planID)
}

// TestARunOncePausedByA429DoesNotStartLate: a 429 paused every run_once for
// a minute. A run whose start-by time passes during that minute, or that is
// stopped during it (its calls' grace period still on), must not send when
// the pause ends: the plan is not attempted, and the run does not say OK.
func TestARunOncePausedByA429DoesNotStartLate(t *testing.T) {
	t.Parallel()
	m := newMorning()
	t.Run("start-by time passes during the pause", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.SetActivityLag(0, 0)
		s.AddFailure("1", m.at(1), "Slack API error: ratelimited")
		opts := onClock(s, m.opts())
		opts.StartBy = epoch.Add(30 * time.Second)
		sum, err := rerun.Run(context.Background(), pausedClient(t, s, time.Minute), opts)
		if !errors.Is(err, rerun.ErrOutOfTime) {
			t.Errorf("Run error %v, want one wrapping ErrOutOfTime", err)
		}
		if diff := cmp.Diff(map[string]int{}, s.Reruns()); diff != "" {
			t.Errorf("deliveries after the start-by time (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"1"}, sum.NotAttempted); diff != "" || sum.OK() {
			t.Errorf("not attempted (-want +got):\n%s\nsummary %+v", diff, sum)
		}
	})
	t.Run("stopped during the pause", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.SetActivityLag(0, 0)
		s.AddFailure("1", m.at(1), "Slack API error: ratelimited")
		opts := m.opts()
		opts.Grace = 7 * time.Second
		opts.Clock = graceNeverEnds{s.Clock(), opts.Grace}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sum, err := rerun.Run(ctx, stopAtRunOnce{pausedClient(t, s, time.Minute), cancel}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int{}, s.Reruns()); diff != "" {
			t.Errorf("deliveries after the stop (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"1"}, sum.NotAttempted); diff != "" || sum.OK() {
			t.Errorf("not attempted (-want +got):\n%s\nsummary %+v", diff, sum)
		}
	})
}

// TestALookAlikeGroupCutByStartByIsFinishedByTheRetry: three look-alikes
// failed; they are sent one after another, each run_once taking a minute,
// and the start-by time passes after the first (whose answer is lost after
// Looker acted: its copy must be found, not sent again). The plans left are
// not attempted, exit 4; the Airflow retry of the same window sends each of
// them once, and the first never again.
func TestALookAlikeGroupCutByStartByIsFinishedByTheRetry(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	for _, id := range []string{"1", "2", "3"} {
		s.AddPlan(twin(id))
		s.AddFailure(id, m.at(1), "Slack API error: ratelimited")
	}
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "1", Status: 502, AfterAction: true})
	opts := onClock(s, m.opts())
	opts.StartBy = epoch.Add(30 * time.Second)
	first, err := rerun.Run(context.Background(), minutePerRunOnce{newClient(t, s), s.Clock()}, opts)
	if !errors.Is(err, rerun.ErrOutOfTime) {
		t.Fatalf("first run error %v, want one wrapping ErrOutOfTime", err)
	}
	if diff := cmp.Diff([]string{"2", "3"}, first.NotAttempted); diff != "" {
		t.Errorf("first run not attempted (-want +got):\n%s\nrerun %+v failed %+v", diff, first.Rerun, first.Failed)
	}
	retry := run(t, s, newClient(t, s), m.opts())
	if diff := cmp.Diff(map[string]int{"1": 1, "2": 1, "3": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s\nretry rerun %v skipped %+v needs person %+v", diff, rerunIDs(retry), retry.Skipped, retry.NeedsPerson)
	}
	if !retry.OK() {
		t.Errorf("the retry is not OK: %+v", retry)
	}
}

// TestADeliveryThatFailsWhileAwaitedAfterStartByIsLeftToTheRetry: with
// RERUN_WAIT the run waits for a delivery running in the window; it fails
// after the start-by time. The run must not re-run it then, nor say OK: the
// plan is not attempted, and the Airflow retry of the same window re-runs it
// once.
func TestADeliveryThatFailsWhileAwaitedAfterStartByIsLeftToTheRetry(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.AddPlan(lookertest.Plan{ID: "1"})
	s.AddJob(lookertest.Job{PlanID: "1", Status: "failure", Detail: "Webhook answered 502", Created: m.at(9), Finalized: epoch.Add(20 * time.Second)})
	opts := onClock(s, m.opts())
	opts.Wait = time.Minute
	opts.StartBy = epoch.Add(10 * time.Second)
	first, err := rerun.Run(context.Background(), newClient(t, s), opts)
	if !errors.Is(err, rerun.ErrOutOfTime) {
		t.Errorf("first run error %v, want one wrapping ErrOutOfTime", err)
	}
	if diff := cmp.Diff([]string{"1"}, first.NotAttempted); diff != "" || first.OK() {
		t.Errorf("first run not attempted (-want +got):\n%s\nsummary %+v", diff, first)
	}
	if diff := cmp.Diff(map[string]int{}, s.Reruns()); diff != "" {
		t.Errorf("deliveries after the start-by time (-want +got):\n%s", diff)
	}
	retry := run(t, s, newClient(t, s), m.opts())
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" || !retry.OK() {
		t.Errorf("deliveries after the retry (-want +got):\n%s\nretry %+v", diff, retry)
	}
}
