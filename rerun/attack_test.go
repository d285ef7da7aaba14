package rerun_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// These tests attack the "exactly once" promise: each is a scenario in which
// a report is delivered twice, or a failure is lost while the run says OK.
// They fail on the code as it stands.

// twin is a schedule that delivers exactly what every other twin delivers:
// same owner, content, filters and destinations (a look-alike that no
// definition tells apart).
func twin(id string) lookertest.Plan {
	return lookertest.Plan{ID: id, Name: "Sales " + id, UserID: "5", ContentTypeID: "dashboard::7", Filters: "Region=EMEA",
		Dests: []lookertest.Destination{{Address: "#sales"}}}
}

// TestALookAlikeThatNeedsNoRerunTakesNoCopy: of two look-alikes that failed
// in the window, X needs no re-run (its next delivery succeeded, or it was
// disabled, or a delivery of it is still running); Y is re-run once. An
// Airflow retry of the same window must then send nothing: Y's copy is
// Y's. The books give it to X (its failure came first), and Y is re-run
// again.
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
			s := lookertest.NewServer(t)
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
// the window before and was never re-run (that window's run saw its delivery
// still running, or never ran); X failed in this window. The run re-runs X
// and says OK; an Airflow retry of the same window must send nothing. It
// gives X's copy to Y (another window's failure takes a copy first) and
// re-runs X again: the report goes out twice from one window.
func TestARetryDoesNotResendForALookAlikesOlderFailure(t *testing.T) {
	t.Parallel()
	m := newMorning()
	before := morning{since: m.since.Add(-10 * time.Hour), until: m.since}
	s := lookertest.NewServer(t)
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

// TestACopyStillRunningThatFailsIsNotLost: plan 1 failed; late in the
// window a person pressed "Send now" on it, and that send is still running
// when the run starts (a long PDF, say). Without RERUN_WAIT the run skips
// the plan (already_rerun, "is still running") and says OK, listing nothing
// in progress. The send then fails. The next window's run does not see that
// failure (the send started in the window before), so the report never
// arrives and every run says OK. Either the first run lists the running
// copy as in progress (as it does a plan's own running delivery), or a run
// re-runs the plan.
func TestACopyStillRunningThatFailsIsNotLost(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := lookertest.NewServer(t)
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
// is Europe/London, RERUN_LOOKER_TIMEZONE is left unset (UTC). The time
// zone's proof reads one of the newest plans; made in winter, London shows
// it as UTC does, and the proof passes. But the window holds the night
// London's clocks went back (2026-10-25, 01:00-02:00 twice), and System
// Activity shows times in that hour without saying which of the two they
// are. Read as UTC, a copy made before the failure looks made after it (the
// failure is lost, and the run says OK), and a copy made after it looks
// made before (the report is sent twice). Either the proof must catch the
// zone, or the run must say it cannot tell.
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
			s := lookertest.NewServer(t)
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
			sum, err := rerun.Run(context.Background(), newClient(t, s), w.opts())
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

// TestALostAnswerIsConfirmedThoughThePlanWasEditedMeanwhile: between the
// listing and the run_once call (minutes, with many plans to re-run), the
// owner adds a recipient to the plan. run_once copies the plan as it is now
// and its answer is lost. The run looks for the copy under the plan's
// destinations as listed, does not find it, and sends again: the report goes
// out twice. A lost answer must not be re-sent without looking for the copy
// the call would have made.
func TestALostAnswerIsConfirmedThoughThePlanWasEditedMeanwhile(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := lookertest.NewServer(t)
	s.SetActivityLag(0, 0)
	s.AddPlan(twin("1"))
	s.AddFailure("1", m.at(1), "Slack API error: ratelimited")
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "1", Status: 500, AfterAction: true})
	var once sync.Once
	s.AfterQuery(func(q looker.Query) {
		// The listing's last query: the run-once copies made so far.
		if q.Filters["scheduled_plan.run_once"] == "Yes" {
			once.Do(func() {
				s.EditPlan("1", func(p *lookertest.Plan) {
					p.Dests = append(p.Dests, lookertest.Destination{Address: "boss@example.com"})
				})
			})
		}
	})
	opts := m.opts()
	opts.Confirm = 2 * time.Second
	sum := runOnce(t, s, opts)
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s\nrerun %+v failed %+v", diff, sum.Rerun, sum.Failed)
	}
}

// TestADeliveryThatFailsWhileAwaitedDoesNotTakeALookAlikesCopy: look-alike
// Y failed in the window before; X failed in this window, and X's next
// delivery runs as the task starts. Y's own run came late (Airflow catching
// up), after X's next delivery started, and re-ran Y: copy 501. The books
// give 501 to Y. X's running delivery then fails while the run waits for
// it; deciding again, the run sees 501 (made after that delivery started)
// and takes it for X's re-run too: X is skipped and the run says OK, one
// copy counted for two failures. X must be re-run.
func TestADeliveryThatFailsWhileAwaitedDoesNotTakeALookAlikesCopy(t *testing.T) {
	t.Parallel()
	m := newMorning()
	before := morning{since: m.since.Add(-10 * time.Hour), until: m.since}
	s := lookertest.NewServer(t)
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
