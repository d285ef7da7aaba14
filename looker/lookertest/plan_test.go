package lookertest_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func TestGetScheduledPlan(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	tokyo := time.FixedZone("JST", 9*60*60)
	s.AddPlan(lookertest.Plan{ID: "42", Name: "Daily revenue", UserID: "7", ContentTypeID: "dashboard::9",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, tokyo)})
	s.AddPlan(lookertest.Plan{ID: "43"})
	s.DeletePlan("43")

	if status, obj, _ := call(t, "GET", base+"scheduled_plans/42", "", "", ""); status != 401 || obj["message"] == nil {
		t.Errorf("no token: %d %v, want 401", status, obj)
	}
	token := login(t, base)
	status, obj, _ := call(t, "GET", base+"scheduled_plans/42", token, "", "")
	if ids, _ := destinations(t, obj); len(ids) != 1 || ids[0] == "" {
		t.Errorf("destination ids %q, want one", ids)
	}
	wantPlan := map[string]any{
		"id": "42", "name": "Daily revenue", "user_id": "7", "run_once": false, "enabled": true,
		"look_id": nil, "dashboard_id": "9", "lookml_dashboard_id": nil, "crontab": "0 6 * * *",
		"datagroup": nil, "timezone": nil,
		"created_at": "2026-01-01T18:04:05Z", "updated_at": "2026-01-01T18:04:05Z",
		"filters_string": nil, "dashboard_filters": nil,
		"scheduled_plan_destination": []any{map[string]any{
			"scheduled_plan_id": "42", "type": "looker-integration", "format": "wysiwyg_pdf", "address": "#reports-42",
			"apply_formatting": false, "apply_vis": false, "looker_recipient": false, "parameters": nil, "message": nil,
		}},
	}
	if diff := cmp.Diff(wantPlan, obj); status != 200 || diff != "" {
		t.Errorf("GET scheduled_plans/42: %d (-want +got):\n%s", status, diff)
	}
	status, obj, _ = call(t, "GET", base+"scheduled_plans/42?fields=id,%20run_once,enabled,nosuch", token, "", "")
	if diff := cmp.Diff(map[string]any{"id": "42", "run_once": false, "enabled": true}, obj); status != 200 || diff != "" {
		t.Errorf("fields: %d (-want +got):\n%s", status, diff)
	}
	for _, id := range []string{"43", "44"} { // deleted, never was
		status, obj, _ := call(t, "GET", base+"scheduled_plans/"+id, token, "", "")
		if status != 404 || obj["message"] != "Not found" || obj["documentation_url"] == nil {
			t.Errorf("GET scheduled_plans/%s: %d %v, want Looker's 404", id, status, obj)
		}
	}
	// Undeclared parameters are refused, as for every operation.
	if status, _, _ := call(t, "GET", base+"scheduled_plans/42?all=true", token, "", ""); status != 404 || len(s.Unexpected()) != 1 {
		t.Errorf("undeclared parameter: %d, refused %v", status, s.Unexpected())
	}

	// Faults match it by plan, and it is recorded like every call.
	s.Inject(lookertest.Fault{Op: lookertest.OpScheduledPlan, PlanID: "43", Status: 500, Times: -1})
	if status, _, _ := call(t, "GET", base+"scheduled_plans/42", token, "", ""); status != 200 {
		t.Errorf("plan 42 past a fault for plan 43: %d", status)
	}
	if status, _, _ := call(t, "GET", base+"scheduled_plans/43", token, "", ""); status != 500 {
		t.Errorf("plan 43 with a fault: %d, want 500", status)
	}
	var got []string
	for _, c := range s.Calls() {
		if c.Op == lookertest.OpScheduledPlan {
			got = append(got, c.Method+" "+c.URL)
		}
	}
	want := []string{ // the refused request is in Unexpected instead
		"GET /api/4.0/scheduled_plans/42", "GET /api/4.0/scheduled_plans/42",
		"GET /api/4.0/scheduled_plans/42?fields=id,%20run_once,enabled,nosuch",
		"GET /api/4.0/scheduled_plans/43", "GET /api/4.0/scheduled_plans/44",
		"GET /api/4.0/scheduled_plans/42", "GET /api/4.0/scheduled_plans/43",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
}

func TestDisabledAndRenamedPlans(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "1"})
	s.AddPlan(lookertest.Plan{ID: "2", Disabled: true})
	s.AddPlan(lookertest.Plan{ID: "3", Name: "Old name"})
	s.DisablePlan("3")
	s.RenamePlan("3", "New name")
	token := login(t, base)
	fields := []string{"scheduled_plan.id", "scheduled_plan.name", "scheduled_plan.enabled"}

	want := []any{
		map[string]any{"scheduled_plan.id": 2.0, "scheduled_plan.name": "Plan 2", "scheduled_plan.enabled": "No"},
		map[string]any{"scheduled_plan.id": 3.0, "scheduled_plan.name": "New name", "scheduled_plan.enabled": "No"},
	}
	if diff := cmp.Diff(want, query(t, base, token, fields, map[string]string{"scheduled_plan.enabled": "No"})); diff != "" {
		t.Errorf("enabled No (-want +got):\n%s", diff)
	}
	want = []any{map[string]any{"scheduled_plan.id": 1.0, "scheduled_plan.name": "Plan 1", "scheduled_plan.enabled": "Yes"}}
	if diff := cmp.Diff(want, query(t, base, token, fields, map[string]string{"scheduled_plan.enabled": "yes"})); diff != "" {
		t.Errorf("enabled Yes (-want +got):\n%s", diff)
	}

	// The API says so too, and the edit moved updated_at.
	_, obj, _ := call(t, "GET", base+"scheduled_plans/3?fields=name,enabled,created_at,updated_at", token, "", "")
	if obj["name"] != "New name" || obj["enabled"] != false || obj["updated_at"] == obj["created_at"] {
		t.Errorf("GET scheduled_plans/3: %v", obj)
	}
	// A disabled plan still runs once; its copy is enabled and carries the
	// new name.
	status, cp, _ := call(t, "POST", base+"scheduled_plans/3/run_once", token, "", "")
	if status != 200 || cp["enabled"] != true || cp["name"] != "New name" || cp["run_once"] != true {
		t.Errorf("run_once of a disabled plan: %d %v", status, cp)
	}
	got := query(t, base, token, fields, map[string]string{"scheduled_plan.run_once": "Yes"})
	want = []any{map[string]any{"scheduled_plan.id": mustFloat(t, cp["id"]), "scheduled_plan.name": "New name", "scheduled_plan.enabled": "Yes"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the copy in System Activity (-want +got):\n%s", diff)
	}
}

func TestQueryTimezoneOverridesTheQuerys(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddFailure("1", time.Date(2026, 11, 28, 0, 30, 0, 0, time.UTC), "boom")
	token := login(t, base)
	fields := []string{"scheduled_plan.id", "scheduled_job.created_time"}
	window := func(from, to string) map[string]string {
		return map[string]string{"scheduled_job.created_time": from + " to " + to}
	}
	utcWindow := window("2026/11/28 00:00:00", "2026/11/28 01:00:00")

	want := []any{map[string]any{"scheduled_plan.id": 1.0, "scheduled_job.created_time": "2026-11-28 00:30:00"}}
	if diff := cmp.Diff(want, query(t, base, token, fields, utcWindow)); diff != "" {
		t.Errorf("query_timezone UTC honoured (-want +got):\n%s", diff)
	}
	s.SetQueryTimezone(time.FixedZone("Asia/Tokyo", 9*60*60)) // Tokyo keeps no summer time
	if got := query(t, base, token, fields, utcWindow); len(got) != 0 {
		t.Errorf("a UTC window read in Tokyo found %v", got)
	}
	want = []any{map[string]any{"scheduled_plan.id": 1.0, "scheduled_job.created_time": "2026-11-28 09:30:00"}}
	if diff := cmp.Diff(want, query(t, base, token, fields, window("2026/11/28 09:00:00", "2026/11/28 10:00:00"))); diff != "" {
		t.Errorf("in Tokyo (-want +got):\n%s", diff)
	}
	s.SetQueryTimezone(nil)
	want = []any{map[string]any{"scheduled_plan.id": 1.0, "scheduled_job.created_time": "2026-11-28 00:30:00"}}
	if diff := cmp.Diff(want, query(t, base, token, fields, utcWindow)); diff != "" {
		t.Errorf("back to query_timezone (-want +got):\n%s", diff)
	}
}
