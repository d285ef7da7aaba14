package lookertest_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func TestActivityLagHidesACopyUntilItsTime(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddFailure("42", time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), "boom")
	s.SetActivityLag(150*time.Millisecond, 150*time.Millisecond)
	token := login(t, base)
	copies := func() []any {
		return query(t, base, token, []string{"scheduled_plan.id", "scheduled_job.status"},
			map[string]string{"scheduled_plan.run_once": "Yes"})
	}

	start := time.Now()
	status, obj, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	if status != 200 {
		t.Fatalf("run_once: %d", status)
	}
	made := time.Now() // the copy shows by made+150ms, not before start+150ms
	// Looker's API knows the copy at once; System Activity does not yet.
	if status, _, _ := call(t, "GET", base+"scheduled_plans/"+obj["id"].(string), token, "", ""); status != 200 {
		t.Errorf("GET the copy at once: %d, want 200", status)
	}
	if got := copies(); len(got) != 0 && time.Since(start) < 150*time.Millisecond {
		t.Errorf("System Activity shows the copy at once: %v", got)
	}
	time.Sleep(150*time.Millisecond - time.Since(made))
	want := []any{map[string]any{"scheduled_plan.id": mustFloat(t, obj["id"]), "scheduled_job.status": "success"}}
	if diff := cmp.Diff(want, copies()); diff != "" {
		t.Errorf("after the lag (-want +got):\n%s", diff)
	}
}

func TestRowsATestAddsShowFromTheirVisibleTime(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	now := time.Now()
	s.AddPlan(lookertest.Plan{ID: "1"})
	s.AddPlan(lookertest.Plan{ID: "2", Visible: now.Add(-time.Second)})
	s.AddPlan(lookertest.Plan{ID: "3", Visible: now.Add(time.Hour)})
	s.AddJob(lookertest.Job{PlanID: "1", ID: "11", Status: "failure", Created: now.Add(-time.Minute)})
	s.AddJob(lookertest.Job{PlanID: "1", ID: "12", Status: "failure", Created: now.Add(-time.Minute), Visible: now.Add(time.Hour)})
	s.AddJob(lookertest.Job{PlanID: "3", ID: "31", Status: "failure", Created: now.Add(-time.Minute)})
	token := login(t, base)

	got := query(t, base, token, []string{"scheduled_plan.id", "scheduled_job.id"}, nil)
	want := []any{
		map[string]any{"scheduled_plan.id": 1.0, "scheduled_job.id": 11.0},
		map[string]any{"scheduled_plan.id": 2.0, "scheduled_job.id": nil}, // a plan without jobs is one row
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestARunningJobShowsNoStatusUntilItEnds(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.AddPlan(lookertest.Plan{ID: "43"})
	now := time.Now().UTC().Truncate(time.Second)
	s.AddJob(lookertest.Job{PlanID: "43", Status: "success", Created: now.Add(-time.Minute), Finalized: now.Add(time.Hour)})
	s.RunOnceOutcome("42",
		lookertest.Outcome{Status: "failure", Detail: "Slack API error: ratelimited", After: 150 * time.Millisecond},
		lookertest.Outcome{Status: "success", After: time.Hour})
	token := login(t, base)
	fields := []string{"scheduled_plan.id", "scheduled_job.status", "scheduled_job.status_detail", "scheduled_job.finalized_time"}
	running := func(id any) map[string]any {
		return map[string]any{"scheduled_plan.id": id, "scheduled_job.status": nil, "scheduled_job.status_detail": nil, "scheduled_job.finalized_time": nil}
	}

	start := time.Now()
	_, first, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	made := time.Now() // the first ends by made+150ms, not before start+150ms
	_, second, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	a, b := mustFloat(t, first["id"]), mustFloat(t, second["id"])
	got := query(t, base, token, fields, map[string]string{"scheduled_plan.id": "43"})
	if diff := cmp.Diff([]any{running(43.0)}, got); diff != "" {
		t.Errorf("a job finalized in an hour (-want +got):\n%s", diff)
	}
	if time.Since(start) < 150*time.Millisecond {
		got := query(t, base, token, fields, map[string]string{"scheduled_plan.run_once": "Yes"})
		if diff := cmp.Diff([]any{running(a), running(b)}, got); diff != "" {
			t.Errorf("copies while they run (-want +got):\n%s", diff)
		}
	}
	time.Sleep(150*time.Millisecond - time.Since(made))
	got = query(t, base, token, fields[:3], map[string]string{"scheduled_plan.run_once": "Yes"})
	want := []any{
		map[string]any{"scheduled_plan.id": a, "scheduled_job.status": "failure", "scheduled_job.status_detail": "Slack API error: ratelimited"},
		map[string]any{"scheduled_plan.id": b, "scheduled_job.status": nil, "scheduled_job.status_detail": nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the first's 150ms (-want +got):\n%s", diff)
	}
	// FinishCopies ends what still runs, whatever its Outcome.After.
	s.FinishCopies("42", lookertest.Outcome{Status: "success"})
	want[1] = map[string]any{"scheduled_plan.id": b, "scheduled_job.status": "success", "scheduled_job.status_detail": nil}
	got = query(t, base, token, fields[:3], map[string]string{"scheduled_plan.run_once": "Yes"})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after FinishCopies (-want +got):\n%s", diff)
	}
}

// mustFloat reads a JSON id ("90001" from the API, 90001 from a query) as a
// query row holds it.
func mustFloat(t *testing.T, v any) float64 {
	t.Helper()
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case string:
		var err error
		if f, err = strconv.ParseFloat(x, 64); err != nil {
			t.Fatalf("id %q: %v", x, err)
		}
	default:
		t.Fatalf("id %v (%T)", v, v)
	}
	return f
}
