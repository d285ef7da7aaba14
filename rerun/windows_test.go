package rerun_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// These tests are about failures that could fall between two queries, two
// windows or two clocks: each must be examined by one run, and re-run once.

func TestADeliveryThatFailsBetweenTheTwoListingQueriesIsSeen(t *testing.T) {
	t.Parallel()
	m := newMorning()
	// The delivery fails right after the query for failed jobs is answered:
	// had the query for running jobs come after it (or at the same time),
	// the job would be in neither. Several mornings, as the order of two
	// queries sent at once is the scheduler's.
	for i := range 6 {
		s := newServer(t)
		s.AddPlan(lookertest.Plan{ID: "1"})
		running := s.AddJob(lookertest.Job{PlanID: "1", Created: m.at(9)}) // no status yet
		var once sync.Once
		s.AfterQuery(func(q looker.Query) {
			if q.Filters["scheduled_job.status"] == "failure" {
				once.Do(func() { s.FinishJob(running.ID, "failure", "Slack API error: ratelimited") })
			}
		})
		sum := runOnce(t, s, m.opts())
		if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
			t.Errorf("morning %d: deliveries (-want +got):\n%s", i, diff)
		}
		if sum.FailedJobs != 1 || !sum.OK() {
			t.Errorf("morning %d: failed_jobs %d, OK %v: the failure was not seen", i, sum.FailedJobs, sum.OK())
		}
	}
}

func TestAFailureWhoseLaterDeliveryRunsIsNeverDropped(t *testing.T) {
	t.Parallel()
	m := newMorning()
	seed := func(s *lookertest.Server) lookertest.Job {
		s.AddFailure("1", m.at(9), "Webhook answered 502")
		// Its next delivery started after the window, and runs as the task
		// starts.
		return s.AddJob(lookertest.Job{PlanID: "1", Created: m.until.Add(30 * time.Minute)})
	}
	for _, tt := range []struct {
		name        string
		ends        string // how the later delivery ends while the run waits
		wantReruns  map[string]int
		wantSkipped map[string]string
	}{
		{"it fails: re-run once, for both", "failure", map[string]int{"1": 1}, map[string]string{}},
		{"it succeeds: the report arrived", "success", map[string]int{}, map[string]string{"1": rerun.ReasonLaterSuccess}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			later := seed(s)
			var polls atomic.Int32 // queries run at once
			s.AfterQuery(func(q looker.Query) {
				if polls.Add(1) == 8 { // some polls into the wait
					s.FinishJob(later.ID, tt.ends, "")
				}
			})
			opts := m.opts()
			opts.Wait = time.Minute
			sum := runOnce(t, s, opts)
			if diff := cmp.Diff(tt.wantReruns, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSkipped, reasons(sum)); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
			if !sum.OK() || len(sum.InProgress) != 0 {
				t.Errorf("OK %v, in progress %+v", sum.OK(), sum.InProgress)
			}
		})
	}

	t.Run("without RERUN_WAIT: in progress, never skipped", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		later := seed(s)
		sum := runOnce(t, s, m.opts())
		if len(sum.InProgress) != 1 || sum.InProgress[0].PlanID != "1" || len(sum.Skipped) != 0 || len(s.Reruns()) != 0 {
			t.Fatalf("in progress %+v, skipped %+v, deliveries %v", sum.InProgress, sum.Skipped, s.Reruns())
		}
		// The later delivery fails: the next window holds its start, and
		// its run re-runs the plan once.
		s.FinishJob(later.ID, "failure", "Webhook answered 502")
		next := morning{since: m.until, until: m.until.Add(time.Hour)}
		runOnce(t, s, next.opts())
		runOnce(t, s, next.opts())
		if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
	})
}

func TestARerunWhoseDeliveryFailedIsSeenByTheNextWindow(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.AddPlan(lookertest.Plan{ID: "1", UserID: "5", OwnerEmail: "ana@example.com", ContentTypeID: "look::3", Destinations: "#ops"})
	s.AddFailure("1", m.at(5), "Slack API error: ratelimited")
	s.RunOnceOutcome("1", lookertest.Outcome{Status: "failure", Detail: "Slack API error: ratelimited"})
	// The window's run re-runs it, without waiting: the copy fails after.
	first := runOnce(t, s, m.opts())
	// The next window holds the copy's delivery (made now).
	next := morning{since: m.until, until: epoch.Add(time.Hour)}
	opts := next.opts()
	opts.MaxFailedReruns = 2
	second := runOnce(t, s, opts)
	third := runOnce(t, s, opts) // a retry: two failed re-runs now
	if diff := cmp.Diff(map[string]int{"1": 2}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if len(first.Rerun) != 1 || len(second.Rerun) != 1 || second.FailedJobs != 1 {
		t.Errorf("first re-ran %v; second re-ran %v with failed_jobs %d", rerunIDs(first), rerunIDs(second), second.FailedJobs)
	}
	if len(third.NeedsPerson) != 1 || third.NeedsPerson[0].Reason != rerun.ReasonAttemptsExhausted || third.NeedsPerson[0].OwnerEmail != "ana@example.com" {
		t.Errorf("the retry: needs_person %+v, want plan 1 attempts_exhausted", third.NeedsPerson)
	}
}

// TestWindowsThatTileExamineEachFailureOnce runs consecutive windows, as a
// daily schedule would, in order and as a backfill out of order: each
// failure is re-run by one run, once.
func TestWindowsThatTileExamineEachFailureOnce(t *testing.T) {
	t.Parallel()
	end := epoch.Add(-time.Hour)
	var days []morning
	for i := 3; i > 0; i-- {
		until := end.Add(-time.Duration(i-1) * 8 * time.Hour)
		days = append(days, morning{since: until.Add(-8 * time.Hour), until: until})
	}
	seed := func(s *lookertest.Server) {
		s.AddFailure("1", days[0].since, "at the first window's first second")
		s.AddFailure("2", days[0].until.Add(-time.Second), "at the first window's last second")
		s.AddFailure("3", days[1].since, "on the boundary: the second window's")
		s.AddFailure("4", days[2].at(4), "in the last window")
		s.AddFailure("5", days[1].at(1), "failed in the second window")
		s.AddSuccess("5", days[2].at(1)) // its next delivery arrived
	}
	want := map[string]int{"1": 1, "2": 1, "3": 1, "4": 1}
	for _, tt := range []struct {
		name  string
		order []int
	}{
		{"day after day", []int{0, 1, 2}},
		{"a backfill, newest first", []int{2, 1, 0}},
		{"each day twice", []int{0, 0, 1, 1, 2, 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			seed(s)
			for _, i := range tt.order {
				if sum := runOnce(t, s, days[i].opts()); !sum.OK() {
					t.Errorf("window %d: %+v", i, sum)
				}
			}
			if diff := cmp.Diff(want, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTheHourRepeatedWhenDaylightSavingEnds(t *testing.T) {
	t.Parallel()
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-11-01: New York's clocks go back from 02:00 EDT to 01:00 EST.
	edt := func(h, min int) time.Time { return time.Date(2026, 11, 1, h+4, min, 0, 0, time.UTC) }
	est := func(h, min int) time.Time { return time.Date(2026, 11, 1, h+5, min, 0, 0, time.UTC) }
	since, until := time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 16, 0, 0, 0, time.UTC)
	opts := func() rerun.Options {
		o := morning{since: since, until: until}.opts()
		o.Location = newYork
		return o
	}
	copyAt := func(s *lookertest.Server, id string, at time.Time) {
		s.AddPlan(lookertest.Plan{ID: id, Name: "Ops", UserID: "5", ContentTypeID: "look::3", Destinations: "#ops", RunOnce: true, Created: at})
		s.AddJob(lookertest.Job{PlanID: id, Status: "success", Created: at})
	}
	// Job ids, which Looker assigns in order, tell what the clock cannot.
	for _, tt := range []struct {
		name        string
		seed        func(s *lookertest.Server)
		wantReruns  map[string]int
		wantSkipped map[string]string
	}{
		{"a copy at 01:10 EST is after a failure at 01:50 EDT", func(s *lookertest.Server) {
			s.AddFailure("1", edt(1, 50), "boom")
			copyAt(s, "501", est(1, 10))
		}, map[string]int{}, map[string]string{"1": rerun.ReasonAlreadyRerun}},
		{"a copy at 01:50 EDT is before a failure at 01:10 EST", func(s *lookertest.Server) {
			s.AddFailure("1", est(1, 10), "boom")
			copyAt(s, "501", edt(1, 50))
		}, map[string]int{"1": 1}, map[string]string{}},
		{"a success at 01:10 EST is after a failure at 01:50 EDT", func(s *lookertest.Server) {
			s.AddFailure("1", edt(1, 50), "boom")
			s.AddSuccess("1", est(1, 10))
		}, map[string]int{}, map[string]string{"1": rerun.ReasonLaterSuccess}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.SetQueryTimezone(newYork)
			s.AddPlan(lookertest.Plan{ID: "1", Name: "Ops", UserID: "5", ContentTypeID: "look::3", Destinations: "#ops"})
			tt.seed(s)
			sum := runOnce(t, s, opts())
			if diff := cmp.Diff(tt.wantReruns, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSkipped, reasons(sum)); diff != "" || !sum.OK() {
				t.Errorf("OK %v; skipped (-want +got):\n%s", sum.OK(), diff)
			}
		})
	}

	t.Run("a copy not started yet, in the hour, near the failure: a person", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.SetQueryTimezone(newYork)
		s.AddPlan(lookertest.Plan{ID: "1", Name: "Ops", UserID: "5", ContentTypeID: "look::3", Destinations: "#ops"})
		s.AddFailure("1", est(1, 10), "boom")
		// Made at 01:50 EDT, before the failure, but it has no job to be
		// ordered by: only its time, which reads as after.
		s.AddPlan(lookertest.Plan{ID: "501", Name: "Ops", UserID: "5", ContentTypeID: "look::3", Destinations: "#ops", RunOnce: true, Created: edt(1, 50)})
		sum := runOnce(t, s, opts())
		if len(s.Reruns()) != 0 {
			t.Errorf("re-sent on a guess: deliveries %v", s.Reruns())
		}
		if len(sum.NeedsPerson) != 1 || sum.NeedsPerson[0].Reason != rerun.ReasonAmbiguousTime || !strings.Contains(sum.NeedsPerson[0].Detail, "2026-11-01 01:50") {
			t.Errorf("needs_person %+v, want plan 1 with reason %s naming the hour", sum.NeedsPerson, rerun.ReasonAmbiguousTime)
		}
	})

	t.Run("a time in the hour far from the failure is no reason to stop", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.SetQueryTimezone(newYork)
		s.AddFailure("1", est(1, 30), "boom")                   // in the hour, nothing near
		s.AddFailure("2", edt(0, 10).Add(-6*time.Hour), "boom") // the evening before
		sum := runOnce(t, s, opts())
		if diff := cmp.Diff(map[string]int{"1": 1, "2": 1}, s.Reruns()); diff != "" || !sum.OK() {
			t.Errorf("OK %v; deliveries (-want +got):\n%s", sum.OK(), diff)
		}
	})

	t.Run("a window bound in the hour stops the run, naming it", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.SetQueryTimezone(newYork)
		s.AddFailure("1", est(1, 30), "boom")
		o := opts()
		o.Until = edt(1, 45)
		_, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, o))
		if !errors.Is(err, rerun.ErrRepeatedHour) || !strings.Contains(err.Error(), "01:00 to 02:00") || len(s.Reruns()) != 0 {
			t.Errorf("error %v, deliveries %v: want a refusal naming 01:00 to 02:00", err, s.Reruns())
		}
	})
}

func TestARowWithoutASelectedFieldStopsTheRun(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.AddFailure("1", m.at(1), "boom")
	s.OmitFields("scheduled_plan.enabled")
	_, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, m.opts()))
	if err == nil || !strings.Contains(err.Error(), "scheduled_plan.enabled") || !strings.Contains(err.Error(), "Looker version") {
		t.Errorf("error %v, want one naming the field and the Looker version", err)
	}
	if len(s.Reruns()) != 0 {
		t.Errorf("re-ran %v on rows that lack a field", s.Reruns())
	}
}

func TestTheSummaryReportsSystemActivitysLag(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.SetActivityLag(time.Second, time.Second)
	s.AddFailure("1", m.at(1), "boom")
	sum := runOnce(t, s, m.opts())
	if sum.MaxActivityLag < 1 || sum.MaxActivityLag > 5 {
		t.Errorf("max_activity_lag_seconds = %v, want the 1 s lag (at most a poll late)", sum.MaxActivityLag)
	}
	again := runOnce(t, s, m.opts())
	if again.MaxActivityLag != 0 {
		t.Errorf("a run that made no copy reports a lag of %v", again.MaxActivityLag)
	}
}
