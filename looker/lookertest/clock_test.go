package lookertest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func TestTheClockDecidesWhatSystemActivityShows(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	start := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	clock := lookertest.NewClock(start)
	s.SetClock(clock)
	s.SetActivityLag(10*time.Second, 10*time.Second)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.RunOnceOutcome("42", lookertest.Outcome{Status: "failure", Detail: "boom", After: time.Minute}, lookertest.Outcome{})
	token := login(t, base)
	fields := []string{"scheduled_plan.id", "scheduled_plan.created_time", "scheduled_job.status", "scheduled_job.finalized_time"}
	copies := func() []any {
		t.Helper()
		return query(t, base, token, fields, map[string]string{"scheduled_plan.run_once": "Yes"})
	}

	_, first, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	if first["created_at"] != "2026-11-27T15:00:00Z" {
		t.Errorf("the copy was created at %v, want the clock's time", first["created_at"])
	}
	_, second, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	a, b := mustFloat(t, first["id"]), mustFloat(t, second["id"])
	row := func(id float64, status, finalized any) map[string]any {
		return map[string]any{"scheduled_plan.id": id, "scheduled_plan.created_time": "2026-11-27 15:00:00",
			"scheduled_job.status": status, "scheduled_job.finalized_time": finalized}
	}

	for _, step := range []struct {
		advance time.Duration
		want    []any
	}{
		{9 * time.Second, nil}, // the lag has not passed
		{time.Second, []any{row(a, nil, nil), row(b, nil, nil)}},                            // shown, both running
		{time.Minute, []any{row(a, "failure", "2026-11-27 15:01:00"), row(b, nil, nil)}},    // the first ended
		{24 * time.Hour, []any{row(a, "failure", "2026-11-27 15:01:00"), row(b, nil, nil)}}, // the second runs until told
	} {
		clock.Advance(step.advance)
		got := copies()
		if len(step.want) == 0 && len(got) == 0 {
			continue
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("at %v (-want +got):\n%s", clock.Now().Sub(start), diff)
		}
	}
	s.FinishCopies("42", lookertest.Outcome{Status: "success"})
	want := []any{row(a, "failure", "2026-11-27 15:01:00"), row(b, "success", "2026-11-28 15:01:10")}
	if diff := cmp.Diff(want, copies()); diff != "" {
		t.Errorf("after FinishCopies (-want +got):\n%s", diff)
	}
}

func TestAfterQueryChangesTheTableBetweenTwoQueries(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	s.SetClock(lookertest.NewClock(now))
	s.AddPlan(lookertest.Plan{ID: "42"})
	j := s.AddJob(lookertest.Job{PlanID: "42", Status: "success", Created: now.Add(-time.Minute), Finalized: now.Add(time.Hour)})
	token := login(t, base)

	var mu sync.Mutex
	var seen []looker.Query
	s.AfterQuery(func(q looker.Query) {
		mu.Lock()
		first := len(seen) == 0
		seen = append(seen, q)
		mu.Unlock()
		if first {
			s.FinishJob(j.ID, "failure", "Slack API error: channel_not_found")
		}
	})
	fields := []string{"scheduled_job.id", "scheduled_job.status", "scheduled_job.status_detail", "scheduled_job.finalized_time"}
	running := []any{map[string]any{"scheduled_job.id": mustFloat(t, j.ID), "scheduled_job.status": nil, "scheduled_job.status_detail": nil, "scheduled_job.finalized_time": nil}}
	failed := []any{map[string]any{"scheduled_job.id": mustFloat(t, j.ID), "scheduled_job.status": "failure",
		"scheduled_job.status_detail": "Slack API error: channel_not_found", "scheduled_job.finalized_time": "2026-11-27 15:00:00"}}
	if diff := cmp.Diff(running, query(t, base, token, fields, nil)); diff != "" {
		t.Errorf("the first query, evaluated before the hook (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(failed, query(t, base, token, fields, nil)); diff != "" {
		t.Errorf("the second query, after the hook (-want +got):\n%s", diff)
	}
	s.AfterQuery(nil)
	query(t, base, token, fields, nil)

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].Model != "system__activity" || seen[1].View != "scheduled_plan" || !cmp.Equal(seen[1].Fields, fields) {
		t.Errorf("the hook saw %+v: want the two queries before it was cleared", seen)
	}
}

func TestFinishJobOfAnUnknownJobPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Errorf("FinishJob of an unknown job did not panic")
		}
	}()
	lookertest.New().FinishJob("404", "failure", "")
}

// TestALateActionHappensWhenTheClockReachesIt: on a Clock, Looker acts late
// exactly when whoever waits moves the clock past the action's time, with
// the copy made at that time, and never on the wall clock.
func TestALateActionHappensWhenTheClockReachesIt(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	start := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	clock := lookertest.NewClock(start)
	s.SetClock(clock)
	s.SetActivityLag(0, 0)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, LateAction: time.Minute, Reset: true})
	token := login(t, base)
	if resp, _, err := runOnce(t, base, token, time.Minute); err == nil {
		t.Fatalf("run_once answered %d, want the connection reset", resp.StatusCode)
	}
	if late := s.LateActions(); len(late) != 1 || late[0].Done || !late[0].Due.Equal(start.Add(time.Minute)) {
		t.Fatalf("late actions %+v, want one pending, due a minute after %v", late, start)
	}
	clock.Advance(59 * time.Second)
	if got := s.Reruns(); len(got) != 0 {
		t.Fatalf("Looker acted %v before the action was due", got)
	}
	// Waiting past it, as a client polling for the copy does, makes it
	// happen before the wait returns.
	if now := <-clock.After(30 * time.Second); !now.Equal(start.Add(89 * time.Second)) {
		t.Errorf("After returned %v, want %v", now, start.Add(89*time.Second))
	}
	if diff := cmp.Diff(map[string]int{"42": 1}, s.Reruns()); diff != "" {
		t.Errorf("reruns (-want +got):\n%s", diff)
	}
	rows := query(t, base, token, []string{"scheduled_plan.id", "scheduled_plan.created_time"}, map[string]string{"scheduled_plan.run_once": "Yes"})
	if len(rows) != 1 || rows[0].(map[string]any)["scheduled_plan.created_time"] != "2026-11-27 15:01:00" {
		t.Errorf("copies %v, want one made at the action's time", rows)
	}
}

// TestALateActionPendingOnAClockIsDroppedAtClose: Close drops what the clock
// has not reached, and returns without anyone moving it.
func TestALateActionPendingOnAClockIsDroppedAtClose(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	clock := lookertest.NewClock(time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC))
	s.SetClock(clock)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, LateAction: time.Minute, Status: 504})
	runOnce(t, base, login(t, base), time.Minute)
	s.Close()
	clock.Advance(time.Hour)
	if late := s.LateActions(); len(late) != 1 || !late[0].Dropped || late[0].Done || len(s.Reruns()) != 0 {
		t.Errorf("late actions %+v, reruns %v: want the action dropped", late, s.Reruns())
	}
}
