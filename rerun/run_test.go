package rerun_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// epoch is the time on every test's clock when it starts: the stand-in's
// and the run's (newServer). Waits and System Activity's lag move it, not
// the wall clock.
var epoch = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// newServer starts a stand-in Looker, realistic as NewServer makes it, on a
// clock of its own that starts at epoch.
func newServer(t *testing.T) *lookertest.Server {
	t.Helper()
	s := lookertest.NewServer(t)
	s.SetClock(lookertest.NewClock(epoch))
	return s
}

// onClock returns opts with the clock of s.
func onClock(s *lookertest.Server, opts rerun.Options) rerun.Options {
	opts.Clock = s.Clock()
	return opts
}

// morning is a window of failed deliveries ending an hour before epoch, so
// the run-once copies the stand-in makes (on its clock) come after it.
type morning struct {
	since, until time.Time
}

func newMorning() morning {
	until := epoch.Add(-time.Hour)
	return morning{since: until.Add(-10 * time.Hour), until: until}
}

// at is a time inside the window, h hours after it opens.
func (m morning) at(h float64) time.Time {
	return m.since.Add(time.Duration(h * float64(time.Hour)))
}

func newClient(t *testing.T, s *lookertest.Server) *looker.Client {
	t.Helper()
	c, err := looker.NewClient(s.URL, looker.WithHTTPClient(s.Client()), looker.WithCredentials(lookertest.ClientID, lookertest.ClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// opts are a run's options with the polls in milliseconds; RERUN_CONFIRM
// still covers the stand-in's System Activity lag many times over.
func (m morning) opts() rerun.Options {
	return rerun.Options{Since: m.since, Until: m.until, Concurrency: 4, Log: zerolog.Nop(),
		Confirm: 10 * time.Second, PollMin: 20 * time.Millisecond, PollMax: 200 * time.Millisecond}
}

func runOnce(t *testing.T, s *lookertest.Server, opts rerun.Options) *rerun.Summary {
	t.Helper()
	return run(t, s, newClient(t, s), opts)
}

func reasons(sum *rerun.Summary) map[string]string {
	out := map[string]string{}
	for _, sk := range sum.Skipped {
		out[sk.PlanID] = sk.Reason
	}
	return out
}

func rerunIDs(sum *rerun.Summary) []string {
	var ids []string
	for _, r := range sum.Rerun {
		ids = append(ids, r.PlanID)
	}
	return ids
}

func TestRules(t *testing.T) {
	t.Parallel()
	m := newMorning()
	tests := []struct {
		name        string
		seed        func(s *lookertest.Server)
		wantReruns  map[string]int
		wantSkipped map[string]string
		wantJobs    int
		// needsPerson: something the run could not see the end of (a
		// delivery or copy in the window still running, no RERUN_WAIT).
		needsPerson bool
	}{
		{
			name: "a plan that failed twice is re-run once",
			seed: func(s *lookertest.Server) {
				s.AddFailure("1", m.at(1), "boom")
				s.AddFailure("1", m.at(2), "boom again")
			},
			wantReruns:  map[string]int{"1": 1},
			wantSkipped: map[string]string{},
			wantJobs:    2,
		},
		{
			name: "window edges: the start is in, the end is out",
			seed: func(s *lookertest.Server) {
				s.AddFailure("1", m.since, "at the start")
				s.AddFailure("2", m.until, "at the end")
				s.AddFailure("3", m.since.Add(-time.Second), "just before")
				s.AddFailure("4", m.until.Add(-time.Second), "last second")
			},
			wantReruns:  map[string]int{"1": 1, "4": 1},
			wantSkipped: map[string]string{},
			wantJobs:    2,
		},
		{
			name: "one-off sends are ignored",
			seed: func(s *lookertest.Server) {
				s.AddPlan(lookertest.Plan{ID: "5", RunOnce: true})
				s.AddFailure("5", m.at(1), "a test send failed")
			},
			wantReruns:  map[string]int{},
			wantSkipped: map[string]string{},
			wantJobs:    0,
		},
		{
			name: "a later success is not re-sent, a later failure is",
			seed: func(s *lookertest.Server) {
				s.AddFailure("1", m.at(1), "boom")
				s.AddSuccess("1", m.at(2))
				s.AddSuccess("2", m.at(1))
				s.AddFailure("2", m.at(2), "boom")
				s.AddFailure("3", m.at(1), "boom")
				s.AddSuccess("3", m.until.Add(30*time.Minute)) // after the window, before now
			},
			wantReruns:  map[string]int{"2": 1},
			wantSkipped: map[string]string{"1": rerun.ReasonLaterSuccess, "3": rerun.ReasonLaterSuccess},
			wantJobs:    3,
		},
		{
			name: "a delivery running now is not doubled",
			seed: func(s *lookertest.Server) {
				s.AddFailure("1", m.at(1), "boom")
				s.AddJob(lookertest.Job{PlanID: "1", Created: m.at(9)}) // no status: running (in_progress)
			},
			wantReruns:  map[string]int{},
			wantSkipped: map[string]string{},
			wantJobs:    1,
			needsPerson: true,
		},
		{
			name: "a later delivery still running is not doubled, nor skipped (in progress)",
			seed: func(s *lookertest.Server) {
				s.AddFailure("1", m.at(1), "boom")
				s.AddJob(lookertest.Job{PlanID: "1", Created: m.until.Add(30 * time.Minute)})
			},
			wantReruns:  map[string]int{},
			wantSkipped: map[string]string{},
			wantJobs:    1,
		},
		{
			name: "a disabled plan whose delivery is running is not reported",
			seed: func(s *lookertest.Server) {
				s.AddPlan(lookertest.Plan{ID: "1", Disabled: true})
				s.AddJob(lookertest.Job{PlanID: "1", Created: m.at(5)})
			},
			wantReruns:  map[string]int{},
			wantSkipped: map[string]string{},
			wantJobs:    0,
		},
		{
			name: "a disabled plan is not re-run",
			seed: func(s *lookertest.Server) {
				s.AddFailure("1", m.at(1), "boom")
				s.DisablePlan("1")
			},
			wantReruns:  map[string]int{},
			wantSkipped: map[string]string{"1": rerun.ReasonDisabled},
			wantJobs:    1,
		},
		{
			name: "an existing re-run that succeeded or is running is not repeated; a failed one is",
			seed: func(s *lookertest.Server) {
				for _, id := range []string{"1", "2", "3", "4"} {
					s.AddPlan(lookertest.Plan{ID: id, Name: "Report " + id, UserID: "9", ContentTypeID: "look::" + id, Destinations: "#c" + id})
					s.AddFailure(id, m.at(2), "boom")
				}
				copyOf := func(orig, id string, made time.Time, status string) {
					s.AddPlan(lookertest.Plan{ID: id, Name: "Report " + orig, UserID: "9", ContentTypeID: "look::" + orig,
						Destinations: "#c" + orig, RunOnce: true, Created: made})
					if status != "none" {
						s.AddJob(lookertest.Job{PlanID: id, Status: status, Created: made})
					}
				}
				copyOf("1", "101", m.at(3), "success")
				copyOf("2", "102", m.at(3), "")     // running
				copyOf("3", "103", m.at(3), "none") // created, not started yet
				copyOf("4", "104", m.at(3), "failure")
				copyOf("4", "105", m.at(1), "success") // before the failure: not a re-run of it
			},
			wantReruns: map[string]int{"4": 1},
			wantSkipped: map[string]string{
				"1": rerun.ReasonAlreadyRerun, "2": rerun.ReasonAlreadyRerun, "3": rerun.ReasonAlreadyRerun,
			},
			wantJobs:    5,    // 104's failure is one of plan 4's in the window
			needsPerson: true, // 102 runs, and nobody waits for it

		},
		{
			name: "a copy made before the latest failure does not cover it",
			seed: func(s *lookertest.Server) {
				s.AddFailure("1", m.at(1), "boom") // opens the copies query early
				s.AddSuccess("1", m.at(1.5))
				s.AddPlan(lookertest.Plan{ID: "2", Name: "Ops", ContentTypeID: "look::2", Destinations: "#ops"})
				s.AddFailure("2", m.at(2), "boom")
				s.AddPlan(lookertest.Plan{ID: "202", Name: "Ops", ContentTypeID: "look::2", Destinations: "#ops", RunOnce: true, Created: m.at(3)})
				s.AddJob(lookertest.Job{PlanID: "202", Status: "success", Created: m.at(3)})
				s.AddFailure("2", m.at(5), "failed again at the next schedule")
			},
			wantReruns:  map[string]int{"2": 1},
			wantSkipped: map[string]string{"1": rerun.ReasonLaterSuccess},
			wantJobs:    3,
		},
		{
			name: "a copy of another plan does not count",
			seed: func(s *lookertest.Server) {
				s.AddPlan(lookertest.Plan{ID: "1", Name: "Sales", ContentTypeID: "look::1", Destinations: "#sales"})
				s.AddPlan(lookertest.Plan{ID: "2", Name: "Sales", ContentTypeID: "look::1", Destinations: "#exec"})
				s.AddFailure("1", m.at(1), "boom")
				s.AddPlan(lookertest.Plan{ID: "201", Name: "Sales", ContentTypeID: "look::1", Destinations: "#exec", RunOnce: true, Created: m.at(2)})
				s.AddJob(lookertest.Job{PlanID: "201", Status: "success", Created: m.at(2)})
			},
			wantReruns:  map[string]int{"1": 1},
			wantSkipped: map[string]string{},
			wantJobs:    1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			tt.seed(s)
			sum := runOnce(t, s, m.opts())
			if diff := cmp.Diff(tt.wantReruns, s.Reruns()); diff != "" {
				t.Errorf("deliveries per plan (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSkipped, reasons(sum)); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
			if sum.FailedJobs != tt.wantJobs {
				t.Errorf("failed_jobs = %d, want %d", sum.FailedJobs, tt.wantJobs)
			}
			if len(sum.Failed) != 0 || sum.OK() == tt.needsPerson {
				t.Errorf("failed = %+v, OK %v; want none failed, OK %v", sum.Failed, sum.OK(), !tt.needsPerson)
			}
		})
	}
}

func TestTwoRunsInARowDeliverOnce(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	for _, id := range []string{"1", "2", "3"} {
		s.AddFailure(id, m.at(1), "boom")
	}
	first := runOnce(t, s, m.opts())
	second := runOnce(t, s, m.opts())
	third := runOnce(t, s, m.opts())

	if diff := cmp.Diff(map[string]int{"1": 1, "2": 1, "3": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries per plan after three runs (-want +got):\n%s", diff)
	}
	if got := rerunIDs(first); len(got) != 3 {
		t.Errorf("first run re-ran %v, want 3 plans", got)
	}
	for i, sum := range []*rerun.Summary{second, third} {
		if len(sum.Rerun) != 0 {
			t.Errorf("run %d re-ran %v, want nothing", i+2, rerunIDs(sum))
		}
		want := map[string]string{"1": rerun.ReasonAlreadyRerun, "2": rerun.ReasonAlreadyRerun, "3": rerun.ReasonAlreadyRerun}
		if diff := cmp.Diff(want, reasons(sum)); diff != "" {
			t.Errorf("run %d skipped (-want +got):\n%s", i+2, diff)
		}
	}
}

func TestSummaryNamesTheCopies(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.AddPlan(lookertest.Plan{ID: "42", Name: "Daily revenue", OwnerEmail: "ana@example.com"})
	s.AddFailure("42", m.at(1), "boom")
	s.AddFailure("42", m.at(3), "boom")
	// A re-run Looker refuses: the summary names its owner too, for the alert.
	s.AddPlan(lookertest.Plan{ID: "43", Name: "Churn", OwnerEmail: "bo@example.com", ContentTypeID: "dashboard::9"})
	s.AddFailure("43", m.at(2), "boom")
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "43", Status: http.StatusForbidden})
	sum := runOnce(t, s, m.opts())
	want := []rerun.Resent{{PlanID: "42", Name: "Daily revenue", OwnerEmail: "ana@example.com", Content: "look::42", NewPlanID: s.Copies("42")[0], Failures: 2, LastFailure: m.at(3)}}
	if diff := cmp.Diff(want, sum.Rerun); diff != "" {
		t.Errorf("rerun (-want +got):\n%s", diff)
	}
	if len(sum.Failed) != 1 || sum.Failed[0].PlanID != "43" || sum.Failed[0].OwnerEmail != "bo@example.com" || sum.Failed[0].Content != "dashboard::9" {
		t.Errorf("failed = %+v, want plan 43 with its owner and content", sum.Failed)
	}
	if sum.Window != (rerun.Window{Since: m.since, Until: m.until}) || sum.Source != "system_activity" || sum.FailedPlans != 2 {
		t.Errorf("summary header = %+v", sum)
	}
}

func TestDryRunSendsNothing(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.AddFailure("1", m.at(1), "boom")
	s.AddFailure("2", m.at(1), "boom")
	s.AddSuccess("2", m.at(2))
	opts := m.opts()
	opts.DryRun = true
	sum := runOnce(t, s, opts)
	if got := s.Reruns(); len(got) != 0 {
		t.Errorf("dry run delivered %v", got)
	}
	for _, c := range s.Calls() {
		if c.Op == lookertest.OpRunOnce {
			t.Errorf("dry run called %s", c.URL)
		}
	}
	if !sum.DryRun || cmp.Diff([]string{"1"}, rerunIDs(sum)) != "" || sum.Rerun[0].NewPlanID != "" {
		t.Errorf("dry run summary = %+v, want plan 1 as would-rerun without a new plan id", sum)
	}
	if diff := cmp.Diff(map[string]string{"2": rerun.ReasonLaterSuccess}, reasons(sum)); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}

func TestDeletedPlanIsReportedOthersStillRun(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	for _, id := range []string{"1", "2", "3"} {
		s.AddFailure(id, m.at(1), "boom")
	}
	s.DeletePlan("2")
	sum := runOnce(t, s, m.opts())
	if diff := cmp.Diff(map[string]int{"1": 1, "3": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if len(sum.Failed) != 1 || sum.Failed[0].PlanID != "2" || sum.Failed[0].Status != http.StatusNotFound ||
		!strings.Contains(sum.Failed[0].Error, "no longer exists") {
		t.Errorf("failed = %+v, want plan 2 with a 404 saying it no longer exists", sum.Failed)
	}
	if sum.OK() {
		t.Error("summary OK with a failed re-run")
	}
}
