package rerun_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// These tests are the scenarios that reviews trying to get a report
// delivered twice, or lost while the run says OK, built against the design:
// look-alikes across windows and retries, edits between queries and calls,
// catch-ups, clocks going back, re-runs that keep failing, running copies.

// twin is a schedule that delivers exactly what every other twin delivers:
// same owner, content, filters and destinations (a look-alike that no
// definition tells apart).
func twin(id string) lookertest.Plan {
	return lookertest.Plan{ID: id, Name: "Sales " + id, UserID: "5", ContentTypeID: "dashboard::7", Filters: "Region=EMEA",
		Dests: []lookertest.Destination{{Address: "#sales"}}}
}

// TestALookAlikeThatNeedsNoRerunTakesNoCopy: of two look-alikes that failed
// in the window, X needs no re-run (its next delivery succeeded, it was
// disabled, or a delivery of it is still running); Y is re-run once. An
// Airflow retry of the same window sends nothing: Y's copy stays Y's, since
// only failures that reach the copies' rules take a copy.
func TestALookAlikeThatNeedsNoRerunTakesNoCopy(t *testing.T) {
	t.Parallel()
	m := newMorning()
	for _, tt := range []struct {
		name string
		x    func(s *lookertest.Server)
	}{
		{"X's next delivery succeeded", func(s *lookertest.Server) {
			s.AddSuccess("1", m.at(2))
		}},
		{"X was disabled since", func(s *lookertest.Server) {
			s.DisablePlan("1")
		}},
		{"a later delivery of X is still running", func(s *lookertest.Server) {
			s.AddJob(lookertest.Job{PlanID: "1", Created: m.at(3)}) // no status: running
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.AddPlan(twin("1"))
			s.AddPlan(twin("2"))
			s.AddFailure("1", m.at(1), "Slack API error: ratelimited")
			s.AddFailure("2", m.at(4), "Slack API error: ratelimited")
			tt.x(s)
			first := runOnce(t, s, m.opts())
			retry := runOnce(t, s, m.opts()) // an Airflow retry of the same window
			if diff := cmp.Diff(map[string]int{"2": 1}, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"2"}, rerunIDs(first)); diff != "" {
				t.Errorf("first run re-ran (-want +got):\n%s", diff)
			}
			if len(retry.Rerun) != 0 {
				t.Errorf("the retry re-ran %v, skipped %+v", rerunIDs(retry), retry.Skipped)
			}
		})
	}
}

// TestARetryDoesNotResendForALookAlikesOlderFailure: look-alike Y failed in
// the window before and was never re-run; X failed in this window and is
// re-run. An Airflow retry of the same window must not re-run X again because
// Y's old failure could own X's copy: where it cannot be told, a person is.
func TestARetryDoesNotResendForALookAlikesOlderFailure(t *testing.T) {
	t.Parallel()
	m := newMorning()
	before := morning{since: m.since.Add(-10 * time.Hour), until: m.since}
	s := newServer(t)
	s.AddPlan(twin("1")) // X
	s.AddPlan(twin("2")) // Y
	s.AddFailure("2", before.at(5), "Slack API error: ratelimited")
	s.AddFailure("1", m.at(5), "Slack API error: ratelimited")
	first := runOnce(t, s, m.opts())
	retry := runOnce(t, s, m.opts())
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if !first.OK() || len(retry.Rerun) != 0 {
		t.Errorf("first OK %v re-ran %v; the retry re-ran %v, skipped %+v", first.OK(), rerunIDs(first), rerunIDs(retry), retry.Skipped)
	}
}

// TestACopyStillRunningThatFailsIsNotLost: plan 1 failed; late in the window
// a person pressed "Send now" on it, and that send is still running when the
// run starts. If it fails, its failure is in this window, which no later run
// examines: without RERUN_WAIT the run must say so (a person is needed), or a
// run must re-run the plan.
func TestACopyStillRunningThatFailsIsNotLost(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.SetActivityLag(0, 0)
	s.AddPlan(twin("1"))
	s.AddFailure("1", m.at(1), "Slack API error: ratelimited")
	p := twin("501")
	p.RunOnce, p.Created = true, m.until.Add(-time.Minute)
	s.AddPlan(p)
	send := s.AddJob(lookertest.Job{PlanID: "501", Created: p.Created}) // running
	first := runOnce(t, s, m.opts())
	s.FinishJob(send.ID, "failure", "Slack API error: ratelimited")
	next := morning{since: m.until, until: m.until.Add(10 * time.Hour)}
	second := runOnce(t, s, next.opts())
	reported := len(first.InProgress) > 0 || !first.OK() || len(s.Reruns()) > 0 || !second.OK()
	if !reported {
		t.Errorf("plan 1's failure is lost: first run OK, skipped %+v, in progress %+v; next window OK, re-ran %v; deliveries %v",
			first.Skipped, first.InProgress, rerunIDs(second), s.Reruns())
	}
}

// TestAZoneThatIsUTCOnlyInWinterIsNotTakenForUTC: Looker's Query Time Zone
// is Europe/London, RERUN_LOOKER_TIMEZONE is unset (UTC), and the newest plan,
// made in winter, shows as UTC would. The window holds the night London's
// clocks went back, when System Activity shows 01:00-02:00 twice. A copy and a
// failure in that hour are ordered by their job ids, not their times: neither
// is a covered failure re-sent nor an uncovered one skipped.
func TestAZoneThatIsUTCOnlyInWinterIsNotTakenForUTC(t *testing.T) {
	t.Parallel()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(h, min int) time.Time { return time.Date(2026, 10, 25, h, min, 0, 0, time.UTC) }
	w := morning{since: time.Date(2026, 10, 24, 16, 0, 0, 0, time.UTC), until: time.Date(2026, 10, 25, 16, 0, 0, 0, time.UTC)}
	for _, tt := range []struct {
		name             string
		failure, copyAt  time.Time
		wantNoSilentSkip bool // the copy came before the failure: it covers nothing
	}{
		// 00:50Z is 01:50 BST; 01:10Z is 01:10 GMT, twenty minutes later.
		{"a copy before the failure is taken for its re-run", utc(1, 10), utc(0, 50), true},
		{"a copy after the failure is not seen, and the report is sent again", utc(0, 50), utc(1, 10), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.SetQueryTimezone(london)
			s.AddPlan(twin("1"))
			s.AddFailure("1", tt.failure, "Slack API error: ratelimited")
			p := twin("501")
			p.RunOnce, p.Created = true, tt.copyAt
			s.AddPlan(p)
			s.AddJob(lookertest.Job{PlanID: "501", Status: "success", Created: tt.copyAt})
			// A plan made after the clocks went back: the newest, the one
			// the time zone's proof reads.
			s.AddPlan(lookertest.Plan{ID: "9", Created: utc(12, 0)})
			sum, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, w.opts()))
			if err != nil {
				return // the zone was caught: nothing acted on a misread window
			}
			for _, a := range sum.NeedsPerson {
				if a.PlanID == "1" {
					return // the run said it cannot tell
				}
			}
			if tt.wantNoSilentSkip && len(s.Reruns()) == 0 && sum.OK() {
				t.Errorf("plan 1's failure is lost while the run says OK: skipped %+v", sum.Skipped)
			}
			if !tt.wantNoSilentSkip && len(s.Reruns()) != 0 {
				t.Errorf("plan 1 re-sent though copy 501 delivered it after its failure: deliveries %v", s.Reruns())
			}
		})
	}
}

// ownerEdits are the edits an owner or an admin makes to a plan that change
// what System Activity shows of it, but not the report it delivers.
var ownerEdits = []struct {
	name string
	edit func(p *lookertest.Plan)
}{
	{"a recipient added", func(p *lookertest.Plan) {
		p.Dests = append(p.Dests, lookertest.Destination{Address: "boss@example.com"})
	}},
	{"the schedule reassigned to another owner", func(p *lookertest.Plan) { p.UserID = "6" }},
}

// TestALostAnswerIsConfirmedThoughThePlanWasEditedMeanwhile: between the
// listing and the run_once call (minutes, with many plans to re-run), the
// owner adds a recipient, or an admin reassigns the schedule. run_once copies
// the plan as it is then, and its answer is lost. The look for the copy reads
// the plan again and finds it: the report is not sent again.
func TestALostAnswerIsConfirmedThoughThePlanWasEditedMeanwhile(t *testing.T) {
	t.Parallel()
	m := newMorning()
	for _, tt := range ownerEdits {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.SetActivityLag(0, 0)
			s.AddPlan(twin("1"))
			s.AddFailure("1", m.at(1), "Slack API error: ratelimited")
			s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "1", Status: 500, AfterAction: true})
			var once sync.Once
			s.AfterQuery(func(q looker.Query) {
				// The listing's last query: the run-once copies made so far.
				if q.Filters["scheduled_plan.run_once"] == "Yes" {
					once.Do(func() { s.EditPlan("1", tt.edit) })
				}
			})
			opts := m.opts()
			opts.Confirm = 2 * time.Second
			sum := runOnce(t, s, opts)
			if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s\nrerun %+v failed %+v", diff, sum.Rerun, sum.Failed)
			}
		})
	}
}

// TestADeliveryThatFailsWhileAwaitedDoesNotTakeALookAlikesCopy: look-alike
// Y failed in the window before, and its run came late (Airflow catching up):
// copy 501, made after X's next delivery started. X failed in this window and
// its next delivery fails while the run waits. 501 may be Y's or X's: X is
// either re-run or handed to a person, never skipped with the run saying OK.
func TestADeliveryThatFailsWhileAwaitedDoesNotTakeALookAlikesCopy(t *testing.T) {
	t.Parallel()
	m := newMorning()
	before := morning{since: m.since.Add(-10 * time.Hour), until: m.since}
	s := newServer(t)
	s.SetActivityLag(0, 0)
	s.AddPlan(twin("1")) // X
	s.AddPlan(twin("2")) // Y
	s.AddFailure("2", before.at(5), "Slack API error: ratelimited")
	s.AddFailure("1", m.at(5), "Slack API error: ratelimited")
	next := s.AddJob(lookertest.Job{PlanID: "1", Created: m.until.Add(time.Minute)}) // running
	y := twin("501")
	y.RunOnce, y.Created = true, m.until.Add(30*time.Minute)
	s.AddPlan(y)
	s.AddJob(lookertest.Job{PlanID: "501", Status: "success", Created: y.Created})
	var polls atomic.Int32 // queries run at once
	s.AfterQuery(func(q looker.Query) {
		if polls.Add(1) == 8 { // some polls into the wait
			s.FinishJob(next.ID, "failure", "Slack API error: ratelimited")
		}
	})
	opts := m.opts()
	opts.Wait = time.Minute
	sum := runOnce(t, s, opts)
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" && sum.OK() {
		t.Errorf("X's failure is lost while the run says OK; deliveries (-want +got):\n%s\nskipped %+v", diff, sum.Skipped)
	}
}

// TestARetryAfterTheOwnerAddsARecipientDoesNotResend: plan 1 failed and was
// re-run; then the owner adds a recipient, or an admin reassigns the
// schedule. System Activity now shows the plan with other addresses (or
// another owner) than its copy. An Airflow retry of the same window must not
// send the report to the old recipients again: the copy of the same content
// is read, and the edit after it hands the plan to a person.
func TestARetryAfterTheOwnerAddsARecipientDoesNotResend(t *testing.T) {
	t.Parallel()
	m := newMorning()
	for _, tt := range ownerEdits {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.AddPlan(twin("1"))
			s.AddFailure("1", m.at(1), "Slack API error: ratelimited")
			first := runOnce(t, s, m.opts())
			s.EditPlan("1", tt.edit)
			retry := runOnce(t, s, m.opts())
			if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s\nfirst re-ran %v; the retry re-ran %v, skipped %+v, needs person %+v",
					diff, rerunIDs(first), rerunIDs(retry), retry.Skipped, retry.NeedsPerson)
			}
		})
	}
}

// TestACatchUpDoesNotGiveAnOldFailuresCopyToANewOne: two look-alike
// schedules (a daily and a weekly one of the same dashboard to one channel).
// Y failed in window A, X in window D, three windows later. Airflow catches up
// with A's, B's, C's and D's runs in turn; A's re-runs Y now. D's run must not
// take Y's copy for X's re-run: the books read a week back, see Y's failure,
// and X is re-run or handed to a person.
func TestACatchUpDoesNotGiveAnOldFailuresCopyToANewOne(t *testing.T) {
	t.Parallel()
	until := epoch.Add(-time.Hour)
	var w []morning // A, B, C, D
	for i := 3; i >= 0; i-- {
		end := until.Add(-time.Duration(i) * 10 * time.Hour)
		w = append(w, morning{since: end.Add(-10 * time.Hour), until: end})
	}
	s := newServer(t)
	s.AddPlan(twin("1")) // X
	s.AddPlan(twin("2")) // Y
	s.AddFailure("2", w[0].at(5), "Slack API error: ratelimited")
	s.AddFailure("1", w[3].at(5), "Slack API error: ratelimited")
	var last *rerun.Summary
	for _, win := range w {
		last = runOnce(t, s, win.opts())
	}
	got := s.Reruns()
	person := false
	for _, a := range last.NeedsPerson {
		person = person || a.PlanID == "1"
	}
	if got["1"] == 0 && !person {
		t.Errorf("X's failure in D is neither re-run nor handed to a person: deliveries %v; D's run OK %v, skipped %+v",
			got, last.OK(), last.Skipped)
	}
	if got["1"]+got["2"] > 2 {
		t.Errorf("deliveries %v: more copies than failures", got)
	}
}

// TestAPlanWhoseReRunsAlwaysFailReachesAPerson: without RERUN_WAIT, a plan
// fails every day (its webhook's receiver broken) and every re-run of it fails
// too. Failed re-runs count toward RERUN_MAX_ATTEMPTS since the plan last
// delivered, across windows: a run says a person is needed.
func TestAPlanWhoseReRunsAlwaysFailReachesAPerson(t *testing.T) {
	t.Parallel()
	until := epoch.Add(-time.Hour)
	var days []morning
	for i := 3; i >= 0; i-- {
		end := until.Add(-time.Duration(i) * 10 * time.Hour)
		days = append(days, morning{since: end.Add(-10 * time.Hour), until: end})
	}
	s := newServer(t)
	clock := lookertest.NewClock(days[0].until)
	s.SetClock(clock)
	s.SetActivityLag(0, 0)
	s.AddPlan(twin("1"))
	s.RunOnceOutcome("1", lookertest.Outcome{Status: "failure", Detail: "Webhook answered 502"})
	var said []bool
	for _, d := range days {
		// Each window's run starts as the window ends.
		clock.Advance(d.until.Add(5 * time.Minute).Sub(clock.Now()))
		s.AddFailure("1", d.at(5), "Webhook answered 502")
		opts := d.opts()
		opts.MaxFailedReruns = 2
		sum := runOnce(t, s, opts)
		said = append(said, sum.OK())
	}
	told := false
	for _, ok := range said {
		told = told || !ok
	}
	if !told {
		t.Errorf("%d re-runs failed over %d windows, every run said OK %v: nobody is told", s.Reruns()["1"], len(days), said)
	}
}

// TestALookAlikesCopyIsNotFreedByWhatHappenedAfterIt: look-alike Y failed in
// the window before; its run came late and re-ran Y after X failed in this
// window: copy 501. Then Y was disabled, or its next delivery is running.
// Neither changes whom 501 was made for: Y's failure still counts, and X is
// handed to a person rather than skipped on 501.
func TestALookAlikesCopyIsNotFreedByWhatHappenedAfterIt(t *testing.T) {
	t.Parallel()
	m := newMorning()
	before := morning{since: m.since.Add(-10 * time.Hour), until: m.since}
	for _, tt := range []struct {
		name string
		then func(s *lookertest.Server)
	}{
		{"Y was disabled since", func(s *lookertest.Server) { s.DisablePlan("2") }},
		{"Y's next delivery is running", func(s *lookertest.Server) {
			s.AddJob(lookertest.Job{PlanID: "2", Created: m.until.Add(10 * time.Minute)}) // no status: running
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.AddPlan(twin("1")) // X
			s.AddPlan(twin("2")) // Y
			s.AddFailure("2", before.at(5), "Slack API error: ratelimited")
			s.AddFailure("1", m.at(2), "Slack API error: ratelimited")
			y := twin("501") // Y's re-run, by the window before's late run
			y.RunOnce, y.Created = true, m.at(6)
			s.AddPlan(y)
			s.AddJob(lookertest.Job{PlanID: "501", Status: "success", Created: y.Created})
			tt.then(s)
			sum := runOnce(t, s, m.opts())
			if len(s.Reruns()) == 0 && sum.OK() {
				t.Errorf("X's failure is lost while the run says OK: skipped %+v, needs person %+v, in progress %+v",
					sum.Skipped, sum.NeedsPerson, sum.InProgress)
			}
		})
	}
}

// TestACatchUpWindowOfAnotherLengthDoesNotTakeALookAlikesCopy: after an
// outage, the next day's run re-ran look-alike Y (copy 501); then an operator
// catches up with one manual run over the three days before (the DAG's
// since/until params), in which X failed. 501 may be Y's: X is re-run or
// handed to a person, never skipped with the run saying OK.
func TestACatchUpWindowOfAnotherLengthDoesNotTakeALookAlikesCopy(t *testing.T) {
	t.Parallel()
	r := newMorning() // the day after, run as usual
	catchUp := morning{since: r.since.Add(-30 * time.Hour), until: r.since}
	s := newServer(t)
	s.AddPlan(twin("1")) // X
	s.AddPlan(twin("2")) // Y
	s.AddFailure("1", catchUp.until.Add(-5*time.Hour), "Slack API error: ratelimited")
	s.AddFailure("2", r.at(2), "Slack API error: ratelimited")
	y := twin("501") // R's run re-ran Y
	y.RunOnce, y.Created = true, r.until.Add(5*time.Minute)
	s.AddPlan(y)
	s.AddJob(lookertest.Job{PlanID: "501", Status: "success", Created: y.Created})
	sum := runOnce(t, s, catchUp.opts())
	if len(s.Reruns()) == 0 && sum.OK() {
		t.Errorf("X's failure is lost while the run says OK: skipped %+v, needs person %+v", sum.Skipped, sum.NeedsPerson)
	}
}
