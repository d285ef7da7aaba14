package rerun_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zones for the time zone tests, whatever the machine has

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// These tests run against a stand-in as slow and messy as a production
// Looker: System Activity shows a copy seconds after run_once answers, and
// answers get lost after Looker acted, or Looker acts after the client gave
// up. They assert what users judge the tool by: how many times each report
// was delivered, and whether the exit code tells the truth.

// slowClient gives up on run_once after timeout, as LOOKERSDK_TIMEOUT does.
func slowClient(t *testing.T, s *lookertest.Server, timeout time.Duration) *looker.Client {
	t.Helper()
	c, err := looker.NewClient(s.URL, looker.WithHTTPClient(s.Client()), looker.WithCredentials(lookertest.ClientID, lookertest.ClientSecret),
		looker.WithRunOnceHTTPClient(&http.Client{Transport: s.Client().Transport, Timeout: timeout}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run runs rerun.Run through lk, on the clock of s.
func run(t *testing.T, s *lookertest.Server, lk rerun.Looker, opts rerun.Options) *rerun.Summary {
	t.Helper()
	sum, err := rerun.Run(context.Background(), lk, onClock(s, opts))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

func TestLostAnswersAreConfirmedBeforeSendingAgain(t *testing.T) {
	t.Parallel()
	m := newMorning()
	tests := []struct {
		name  string
		fault lookertest.Fault
		// wantNote: the re-run was proven by its copy, not by an answer.
		wantNote bool
	}{
		{"500 after Looker acted", lookertest.Fault{Status: 500, AfterAction: true}, true},
		{"a gateway's 504 after Looker acted", lookertest.Fault{Status: 504, AfterAction: true, Body: "<html>504 Gateway Time-out</html>"}, true},
		{"a proxy's HTML 503 after Looker acted", lookertest.Fault{Status: 503, AfterAction: true, Body: lookertest.ProxyPage}, true},
		{"connection reset after Looker acted", lookertest.Fault{Reset: true, AfterAction: true}, true},
		{"Looker acts after the client gave up", lookertest.Fault{Delay: 5 * time.Second, LateAction: 600 * time.Millisecond}, true},
		{"500 before Looker acted: sent again, once", lookertest.Fault{Status: 500}, false},
		{"a proxy's HTML 503 before forwarding: sent again, once", lookertest.Fault{Status: 503, Body: lookertest.ProxyPage}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.SetActivityLag(time.Second, 2*time.Second)
			s.AddFailure("1", m.at(1), "boom")
			f := tt.fault
			f.Op, f.PlanID = lookertest.OpRunOnce, "1"
			s.Inject(f)
			opts := m.opts()
			opts.Confirm = 4 * time.Second
			sum := run(t, s, slowClient(t, s, 300*time.Millisecond), opts)
			if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if !sum.OK() || len(sum.Rerun) != 1 {
				t.Fatalf("summary not OK: %+v", sum)
			}
			if got := sum.Rerun[0]; got.NewPlanID != s.Copies("1")[0] || (got.Note != "") != tt.wantNote {
				t.Errorf("rerun = %+v, want copy %s, a note: %v", got, s.Copies("1")[0], tt.wantNote)
			}
			// A retry right after sees what this run did.
			again := run(t, s, newClient(t, s), opts)
			if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" || len(again.Rerun) != 0 {
				t.Errorf("a second run re-ran %v; deliveries (-want +got):\n%s", again.Rerun, diff)
			}
		})
	}
}

func TestRunEndsOnlyWhenTheLedgerShowsItsWork(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.SetActivityLag(2*time.Second, 3*time.Second)
	for _, id := range []string{"1", "2", "3"} {
		s.AddFailure(id, m.at(1), "boom")
	}
	opts := m.opts()
	first := run(t, s, newClient(t, s), opts)
	second := run(t, s, newClient(t, s), opts) // an Airflow retry, at once
	if diff := cmp.Diff(map[string]int{"1": 1, "2": 1, "3": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if !first.OK() || len(second.Rerun) != 0 || len(second.Skipped) != 3 {
		t.Errorf("first OK %v; second re-ran %v, skipped %v", first.OK(), second.Rerun, second.Skipped)
	}

	// A copy that does not show within RERUN_CONFIRM is reported.
	s2 := newServer(t)
	s2.SetActivityLag(3*time.Second, 3*time.Second)
	s2.AddFailure("1", m.at(1), "boom")
	opts.Confirm = 500 * time.Millisecond
	sum := run(t, s2, newClient(t, s2), opts)
	if sum.OK() || len(sum.Rerun) != 1 || sum.Rerun[0].Outcome != rerun.OutcomeUnconfirmed {
		t.Errorf("copy never seen: OK %v, rerun %+v; want outcome %q", sum.OK(), sum.Rerun, rerun.OutcomeUnconfirmed)
	}
}

func TestRenamedPlanKeepsItsCopy(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.AddPlan(lookertest.Plan{ID: "1", Name: "Daily revenue", UserID: "5", ContentTypeID: "dashboard::7", Destinations: "#finance"})
	s.AddFailure("1", m.at(1), "boom")
	run(t, s, newClient(t, s), m.opts())
	s.RenamePlan("1", "Daily revenue (EMEA)")
	sum := run(t, s, newClient(t, s), m.opts())
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries after a rename (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"1": rerun.ReasonAlreadyRerun}, reasons(sum)); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}

// lookAlikes adds plans alike in owner, content and destinations.
func lookAlikes(s *lookertest.Server, at time.Time, ids ...string) {
	for _, id := range ids {
		s.AddPlan(lookertest.Plan{ID: id, Name: "Sales", UserID: "5", ContentTypeID: "look::3", Destinations: "#sales"})
		s.AddFailure(id, at, "boom")
	}
}

func TestLookAlikePlans(t *testing.T) {
	t.Parallel()
	m := newMorning()

	t.Run("a lost answer is not proven by a look-alike's copy", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		lookAlikes(s, m.at(1), "1", "2")
		// One of the two calls (whichever goes second) is refused before
		// Looker acts, with a 500: its outcome is unknown.
		s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, Status: 500})
		opts := m.opts()
		opts.Confirm = 2 * time.Second
		sum := run(t, s, newClient(t, s), opts)
		if diff := cmp.Diff(map[string]int{"1": 1, "2": 1}, s.Reruns()); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		if !sum.OK() || len(sum.Rerun) != 2 || sum.Rerun[0].NewPlanID == sum.Rerun[1].NewPlanID {
			t.Errorf("rerun = %+v: each plan needs its own copy", sum.Rerun)
		}
	})

	t.Run("each plan's outcome is its own copy's", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		lookAlikes(s, m.at(1), "1", "2")
		s.RunOnceOutcome("1", lookertest.Outcome{Status: "failure", Detail: "Slack API error: ratelimited", After: 300 * time.Millisecond})
		s.RunOnceOutcome("2", lookertest.Outcome{Status: "success", After: 300 * time.Millisecond})
		opts := m.opts()
		opts.Wait = 10 * time.Second
		sum := run(t, s, newClient(t, s), opts)
		got := map[string]string{}
		for _, rr := range sum.Rerun {
			got[rr.PlanID] = rr.Outcome
		}
		if diff := cmp.Diff(map[string]string{"1": rerun.OutcomeFailedAgain, "2": rerun.OutcomeDelivered}, got); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}
	})

	t.Run("N failed look-alikes need N copies, across runs", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		lookAlikes(s, m.at(1), "1", "2", "3")
		// Someone already sent one of them by hand.
		s.AddPlan(lookertest.Plan{ID: "501", Name: "Sales", UserID: "5", ContentTypeID: "look::3", Destinations: "#sales", RunOnce: true, Created: m.at(2)})
		s.AddJob(lookertest.Job{PlanID: "501", Status: "success", Created: m.at(2)})
		first := run(t, s, newClient(t, s), m.opts())
		second := run(t, s, newClient(t, s), m.opts())
		copies := 0
		for _, n := range s.Reruns() {
			copies += n
		}
		if copies != 2 || len(first.Rerun) != 2 || len(second.Rerun) != 0 || len(first.Skipped) != 1 {
			t.Errorf("made %d copies (want 2 for 3 plans and 1 copy); first run re-ran %d, skipped %d; second re-ran %d",
				copies, len(first.Rerun), len(first.Skipped), len(second.Rerun))
		}
	})
}

func TestRunningWorkIsAwaited(t *testing.T) {
	t.Parallel()
	m := newMorning()

	t.Run("a delivery running in the window fails: re-run once", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.AddPlan(lookertest.Plan{ID: "1"})
		s.AddJob(lookertest.Job{PlanID: "1", Status: "failure", Detail: "Webhook answered 502", Created: m.at(9), Finalized: epoch.Add(700 * time.Millisecond)})
		opts := m.opts()
		opts.Wait = 10 * time.Second
		sum := run(t, s, newClient(t, s), opts)
		if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		if !sum.OK() || len(sum.Rerun) != 1 || sum.Rerun[0].Outcome != rerun.OutcomeDelivered {
			t.Errorf("rerun = %+v, in progress %+v", sum.Rerun, sum.InProgress)
		}
	})

	t.Run("still running at the end of the wait: a person is needed", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.AddPlan(lookertest.Plan{ID: "1"})
		s.AddJob(lookertest.Job{PlanID: "1", Status: "success", Created: m.at(9), Finalized: epoch.Add(time.Hour)})
		opts := m.opts()
		opts.Wait = 300 * time.Millisecond
		sum := run(t, s, newClient(t, s), opts)
		if sum.OK() || len(sum.InProgress) != 1 || sum.InProgress[0].Outcome != rerun.OutcomeRunning || len(s.Reruns()) != 0 {
			t.Errorf("OK %v, in progress %+v, deliveries %v", sum.OK(), sum.InProgress, s.Reruns())
		}
	})

	t.Run("without RERUN_WAIT, a delivery in the window: in progress, and a person is needed", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.AddFailure("1", m.at(1), "boom")
		s.AddJob(lookertest.Job{PlanID: "1", Status: "failure", Created: m.at(5), Finalized: epoch.Add(time.Hour)})
		sum := run(t, s, newClient(t, s), m.opts())
		// If it fails, its failure is this window's: no later run looks.
		if sum.OK() || len(sum.InProgress) != 1 || sum.InProgress[0].Outcome != rerun.OutcomeRunning || len(s.Reruns()) != 0 {
			t.Errorf("OK %v, in progress %+v, deliveries %v", sum.OK(), sum.InProgress, s.Reruns())
		}
	})

	t.Run("an earlier run's copy still running is waited for", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.AddPlan(lookertest.Plan{ID: "1", UserID: "5", ContentTypeID: "look::1", Destinations: "#a"})
		s.AddFailure("1", m.at(1), "boom")
		s.AddPlan(lookertest.Plan{ID: "601", UserID: "5", ContentTypeID: "look::1", Destinations: "#a", RunOnce: true, Created: m.at(2)})
		s.AddJob(lookertest.Job{PlanID: "601", Status: "failure", Detail: "SMTP 451", Created: m.at(2), Finalized: epoch.Add(1500 * time.Millisecond)})
		opts := m.opts()
		opts.Wait = 10 * time.Second
		sum := run(t, s, newClient(t, s), opts)
		if sum.OK() || len(sum.Skipped) != 1 || sum.Skipped[0].Outcome != rerun.OutcomeFailedAgain || len(s.Reruns()) != 0 {
			t.Errorf("a retry must not turn the alert green: OK %v, skipped %+v, summary %+v", sum.OK(), sum.Skipped, sum)
		}
	})
}

func TestTimeZoneIsProvenBeforeActing(t *testing.T) {
	t.Parallel()
	m := newMorning()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	seed := func(s *lookertest.Server) {
		s.AddPlan(lookertest.Plan{ID: "1", Created: m.since.Add(-48 * time.Hour)})
		s.AddFailure("1", m.at(1), "boom")
	}
	for _, tt := range []struct {
		name        string
		looker, set *time.Location // Looker's Query Time Zone, RERUN_LOOKER_TIMEZONE
		wantErr     string
	}{
		{"Looker in UTC", nil, nil, ""},
		{"Looker in Tokyo, not said", tokyo, nil, "UTC+09:00"},
		{"Looker in Tokyo, said", tokyo, tokyo, ""},
		{"Looker in New York, said", newYork, newYork, ""},
		// Looker honours query_timezone when user-specific time zones are on.
		{"Looker honouring query_timezone, Tokyo said", nil, tokyo, ""},
		{"Looker in New York, Tokyo said", newYork, tokyo, "UTC-05:00"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			seed(s)
			s.SetQueryTimezone(tt.looker)
			opts := m.opts()
			opts.Location = tt.set
			sum, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, opts))
			if tt.wantErr != "" {
				if !errors.Is(err, rerun.ErrZone) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "User Specific Time Zones") {
					t.Fatalf("error = %v, want one naming %s and Looker's settings", err, tt.wantErr)
				}
				if len(s.Reruns()) != 0 || len(s.Calls()) == 0 {
					t.Errorf("acted on a shifted window: %v", s.Reruns())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" || sum.FailedJobs != 1 {
				t.Errorf("failed_jobs %d; deliveries (-want +got):\n%s", sum.FailedJobs, diff)
			}
		})
	}

	t.Run("the newest plans deleted or another user's: the next proves it", func(t *testing.T) {
		t.Parallel()
		for _, allHidden := range []bool{false, true} {
			s := newServer(t)
			seed(s)
			s.AddPlan(lookertest.Plan{ID: "2", Created: m.until.Add(-time.Hour)})
			s.AddPlan(lookertest.Plan{ID: "3", Created: m.until.Add(-2 * time.Hour)})
			s.Inject(lookertest.Fault{Op: lookertest.OpScheduledPlan, PlanID: "2", Status: http.StatusForbidden})
			s.Inject(lookertest.Fault{Op: lookertest.OpScheduledPlan, PlanID: "3", Status: http.StatusNotFound})
			if allHidden {
				s.Inject(lookertest.Fault{Op: lookertest.OpScheduledPlan, PlanID: "1", Status: http.StatusForbidden})
			}
			_, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, m.opts()))
			switch {
			case allHidden && (err == nil || !strings.Contains(err.Error(), "the Admin role")):
				t.Errorf("no plan readable: error %v, want one saying what the API user needs", err)
			case !allHidden && err != nil:
				t.Errorf("plan 1 proves the zone, got %v", err)
			case !allHidden && len(s.Reruns()) != 1:
				t.Errorf("deliveries %v, want plan 1 re-run", s.Reruns())
			}
		}
	})

	t.Run("no plan at all: nothing can have failed", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.SetQueryTimezone(tokyo)
		sum := run(t, s, newClient(t, s), m.opts())
		if !sum.OK() || sum.FailedPlans != 0 {
			t.Errorf("summary %+v", sum)
		}
	})
}

// TestRandomisedMornings mixes faults, System Activity lag of 0-3 s, late
// actions, proxy 503s and look-alike pairs, and runs twice over the same
// window. No plan ever gets two copies (a look-alike group never more
// copies than plans), and a run that says OK re-ran every plan that needed
// it exactly once.
func TestRandomisedMornings(t *testing.T) {
	t.Parallel()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			rnd := rand.New(rand.NewPCG(seed, 42))
			m := newMorning()
			s := newServer(t)
			s.SetSeed(int64(seed))
			s.SetActivityLag(0, 3*time.Second)
			groups := map[string][]string{} // group -> plan ids
			for i := range 8 + rnd.IntN(6) {
				id := strconv.Itoa(100 + i)
				group := id
				if i > 0 && rnd.IntN(3) == 0 { // a look-alike of the plan before
					group = strconv.Itoa(100 + i - 1)
					for g, ids := range groups {
						if ids[len(ids)-1] == group {
							group = g
						}
					}
				}
				groups[group] = append(groups[group], id)
				s.AddPlan(lookertest.Plan{ID: id, Name: "Report " + group, UserID: "5", ContentTypeID: "look::" + group, Destinations: "#c" + group})
				s.AddFailure(id, m.at(1+rnd.Float64()*8), "Slack API error: ratelimited")
				switch rnd.IntN(7) {
				case 0:
					s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: id, Status: 500, AfterAction: true})
				case 1:
					s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: id, Status: 500})
				case 2:
					s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: id, Status: 503, Body: lookertest.ProxyPage, AfterAction: rnd.IntN(2) == 0})
				case 3:
					s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: id, Reset: true, AfterAction: true})
				case 4:
					s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: id, Delay: 5 * time.Second, LateAction: time.Duration(rnd.IntN(800)) * time.Millisecond})
				}
			}
			opts := m.opts()
			opts.Confirm = 5 * time.Second // more than lag plus the latest action
			var sums []*rerun.Summary
			for range 2 {
				sums = append(sums, run(t, s, slowClient(t, s, 300*time.Millisecond), opts))
			}
			reruns := s.Reruns()
			for g, ids := range groups {
				copies := 0
				for _, id := range ids {
					copies += reruns[id]
				}
				if copies > len(ids) {
					t.Errorf("group %s (plans %v) got %d copies", g, ids, copies)
				}
				if (sums[0].OK() || sums[1].OK()) && copies != len(ids) {
					t.Errorf("a run said OK, but group %s (plans %v) got %d copies", g, ids, copies)
				}
				for _, id := range ids {
					if reruns[id] > 1 && len(ids) == 1 {
						t.Errorf("plan %s delivered %d times", id, reruns[id])
					}
				}
			}
			if t.Failed() {
				for i, sum := range sums {
					t.Logf("run %d: OK %v rerun %+v failed %+v", i+1, sum.OK(), sum.Rerun, sum.Failed)
				}
			}
			if !sums[1].OK() {
				t.Errorf("the second run needs a person: failed %+v, error %q", sums[1].Failed, sums[1].Error)
			}
		})
	}
}

// stopAfterRunOnce stops the run, as a SIGTERM would, the moment run_once
// answers (or fails).
type stopAfterRunOnce struct {
	rerun.Looker
	stop context.CancelFunc
}

func (l stopAfterRunOnce) RunOnce(ctx context.Context, planID string) (looker.ScheduledPlan, error) {
	defer l.stop()
	return l.Looker.RunOnce(ctx, planID)
}

// TestStopBoundsTheLook: a stop (SIGTERM) as the run starts looking for the
// copy of a lost answer, or waiting for its copies to show, ends the look
// within the grace period, and never sends again.
func TestStopBoundsTheLook(t *testing.T) {
	t.Parallel()
	m := newMorning()
	for _, tt := range []struct {
		name    string
		fault   lookertest.Fault
		lag     time.Duration
		wantSum func(*rerun.Summary) bool
	}{
		{"while looking for a lost answer's copy", lookertest.Fault{Op: lookertest.OpRunOnce, Status: 500}, 0,
			func(sum *rerun.Summary) bool {
				return len(sum.Failed) == 1 && strings.Contains(sum.Failed[0].Error, "not sent again")
			}},
		{"while waiting for the copies to show", lookertest.Fault{}, 10 * time.Second,
			func(sum *rerun.Summary) bool {
				return len(sum.Rerun) == 1 && sum.Rerun[0].Outcome == rerun.OutcomeUnconfirmed
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.SetActivityLag(tt.lag, tt.lag)
			s.AddFailure("1", m.at(1), "boom")
			if tt.fault.Op != "" {
				s.Inject(tt.fault)
			}
			opts := m.opts()
			opts.Confirm, opts.Grace = time.Minute, 300*time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sum, err := rerun.Run(ctx, stopAfterRunOnce{newClient(t, s), cancel}, onClock(s, opts))
			if err != nil {
				t.Fatal(err)
			}
			if sum.OK() || !strings.Contains(sum.Error, "stopped") || !tt.wantSum(sum) {
				t.Errorf("summary after a stop: %+v", sum)
			}
			if n := s.Reruns()["1"]; n > 1 {
				t.Errorf("plan 1 delivered %d times", n)
			}
		})
	}
}
