package lookertest_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// destinations takes the ids out of a plan's scheduled_plan_destination and
// returns them, leaving the rest of each destination in obj.
func destinations(t *testing.T, obj map[string]any) (ids []string, dests []any) {
	t.Helper()
	dests, ok := obj["scheduled_plan_destination"].([]any)
	if !ok {
		t.Fatalf("scheduled_plan_destination is %T, want an array: %v", obj["scheduled_plan_destination"], obj)
	}
	for _, d := range dests {
		m, ok := d.(map[string]any)
		if !ok {
			t.Fatalf("a destination is %T, want an object", d)
		}
		id, _ := m["id"].(string)
		ids = append(ids, id)
		delete(m, "id")
	}
	return ids, dests
}

// dest is a ScheduledPlanDestination as the fake answers it, without its id.
func dest(planID, typ, format, address string, lookerRecipient bool) map[string]any {
	return map[string]any{
		"scheduled_plan_id": planID, "type": typ, "format": format, "address": address,
		"apply_formatting": false, "apply_vis": false, "looker_recipient": lookerRecipient, "parameters": nil, "message": nil,
	}
}

func TestPlanDefinitionsAsTheAPIAndSystemActivityShowThem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		plan      lookertest.Plan
		wantDests []any
		wantAddrs string // System Activity's destination_addresses
	}{
		{
			name: "addresses of a look",
			plan: lookertest.Plan{ID: "1", ContentTypeID: "look::3", OwnerEmail: "ana@example.com",
				Destinations: "ana@example.com, https://hooks.example.com/x,#sales,https://u:p@hooks.example.com/y"},
			wantDests: []any{
				dest("1", "email", "csv", "ana@example.com", true),
				dest("1", "webhook", "csv", "https://hooks.example.com/x", false),
				dest("1", "looker-integration", "csv", "#sales", false),
				dest("1", "webhook", "csv", "https://u:p@hooks.example.com/y", false),
			},
			wantAddrs: "ana@example.com, https://hooks.example.com/x,#sales,https://u:p@hooks.example.com/y",
		},
		{
			name:      "addresses of a dashboard",
			plan:      lookertest.Plan{ID: "1", ContentTypeID: "dashboard::9", Destinations: "ops@example.com"},
			wantDests: []any{dest("1", "email", "wysiwyg_pdf", "ops@example.com", false)},
			wantAddrs: "ops@example.com",
		},
		{
			name: "structured destinations win over addresses",
			plan: lookertest.Plan{ID: "1", ContentTypeID: "dashboard::9", Destinations: "ignored@example.com",
				Dests: []lookertest.Destination{
					{Type: "s3", Format: "csv", Address: "s3://bucket/reports/"},
					{Format: "xlsx", Address: "ops@example.com"},
					{Address: "#finance"},
				}},
			wantDests: []any{
				dest("1", "s3", "csv", "s3://bucket/reports/", false),
				dest("1", "email", "xlsx", "ops@example.com", false),
				dest("1", "looker-integration", "wysiwyg_pdf", "#finance", false),
			},
			wantAddrs: "s3://bucket/reports/,ops@example.com,#finance",
		},
		{
			name:      "no destinations given",
			plan:      lookertest.Plan{ID: "1"},
			wantDests: []any{dest("1", "looker-integration", "csv", "#reports-1", false)},
			wantAddrs: "#reports-1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, base := fake(t)
			s.AddPlan(tc.plan)
			token := login(t, base)

			status, obj, _ := call(t, "GET", base+"scheduled_plans/1", token, "", "")
			ids, dests := destinations(t, obj)
			if diff := cmp.Diff(tc.wantDests, dests); status != 200 || diff != "" {
				t.Errorf("GET: %d; destinations (-want +got):\n%s", status, diff)
			}
			if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(tc.wantDests) || slices.Contains(ids, "") {
				t.Errorf("destination ids %q, want distinct and set", ids)
			}
			_, again, _ := call(t, "GET", base+"scheduled_plans/1", token, "", "")
			if idsAgain, _ := destinations(t, again); !slices.Equal(ids, idsAgain) {
				t.Errorf("destination ids %q, then %q: want them stable", ids, idsAgain)
			}
			got := query(t, base, token, []string{"scheduled_plan.id", "scheduled_plan.destination_addresses"}, nil)
			want := []any{map[string]any{"scheduled_plan.id": 1.0, "scheduled_plan.destination_addresses": tc.wantAddrs}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("System Activity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFiltersUnderTheirNameAndTheirAlias(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "1", Filters: "Region=EMEA&Date=7+days"})
	s.AddPlan(lookertest.Plan{ID: "2"})
	token := login(t, base)

	_, obj, _ := call(t, "GET", base+"scheduled_plans/1?fields=id,filters_string,dashboard_filters", token, "", "")
	want := map[string]any{"id": "1", "filters_string": "Region=EMEA&Date=7+days", "dashboard_filters": "Region=EMEA&Date=7+days"}
	if diff := cmp.Diff(want, obj); diff != "" {
		t.Errorf("plan 1 (-want +got):\n%s", diff)
	}
	_, obj, _ = call(t, "GET", base+"scheduled_plans/2?fields=filters_string,dashboard_filters,scheduled_plan_destination", token, "", "")
	if obj["filters_string"] != nil || obj["dashboard_filters"] != nil || len(obj) != 3 {
		t.Errorf("plan 2, no filters: %v", obj)
	}
}

func TestRunOnceCopiesTheDefinitionDestinationsReversed(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	s.SetClock(lookertest.NewClock(now))
	s.AddPlan(lookertest.Plan{ID: "42", ContentTypeID: "look::3", Filters: "Region=EMEA", Created: created,
		Dests: []lookertest.Destination{{Address: "a@example.com"}, {Address: "#sales"}, {Type: "webhook", Format: "json", Address: "https://h.example.com/"}}})
	token := login(t, base)
	_, orig, _ := call(t, "GET", base+"scheduled_plans/42", token, "", "")
	origIDs, _ := destinations(t, orig)

	status, cp, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	if status != 200 {
		t.Fatalf("run_once: %d %v", status, cp)
	}
	cpID, _ := cp["id"].(string)
	ids, dests := destinations(t, cp)
	want := []any{
		dest(cpID, "webhook", "json", "https://h.example.com/", false),
		dest(cpID, "looker-integration", "csv", "#sales", false),
		dest(cpID, "email", "csv", "a@example.com", false),
	}
	if diff := cmp.Diff(want, dests); diff != "" {
		t.Errorf("the copy's destinations, reversed (-want +got):\n%s", diff)
	}
	for _, id := range ids {
		if id == "" || slices.Contains(origIDs, id) {
			t.Errorf("the copy's destination ids %q, the original's %q: want new ones", ids, origIDs)
		}
	}
	times := map[string]any{"filters_string": cp["filters_string"], "created_at": cp["created_at"], "updated_at": cp["updated_at"]}
	wantTimes := map[string]any{"filters_string": "Region=EMEA", "created_at": "2026-11-27T15:00:00Z", "updated_at": "2026-11-27T15:00:00Z"}
	if diff := cmp.Diff(wantTimes, times); diff != "" {
		t.Errorf("the copy's filters and times (-want +got):\n%s", diff)
	}
	// GET answers the copy as run_once did.
	_, got, _ := call(t, "GET", base+"scheduled_plans/"+url.PathEscape(cpID), token, "", "")
	if gotIDs, gotDests := destinations(t, got); !slices.Equal(ids, gotIDs) || !cmp.Equal(want, gotDests) {
		t.Errorf("GET the copy: %v", got)
	}

	s.KeepCopyOrder(true)
	_, kept, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	s.SetActivityLag(0, 0)
	s.SetClock(lookertest.NewClock(now.Add(time.Hour))) // past the lags
	rows := query(t, base, token, []string{"scheduled_plan.id", "scheduled_plan.destination_addresses"},
		map[string]string{"scheduled_plan.run_once": "Yes"})
	wantRows := []any{
		map[string]any{"scheduled_plan.id": mustFloat(t, cpID), "scheduled_plan.destination_addresses": "https://h.example.com/,#sales,a@example.com"},
		map[string]any{"scheduled_plan.id": mustFloat(t, kept["id"]), "scheduled_plan.destination_addresses": "a@example.com,#sales,https://h.example.com/"},
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("System Activity: reversed, then kept (-want +got):\n%s", diff)
	}
}

func TestEditPlanChangesWhatLaterCopiesCarry(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.KeepCopyOrder(true)
	clock := lookertest.NewClock(time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC))
	s.SetClock(clock)
	s.AddPlan(lookertest.Plan{ID: "42", Name: "Sales", ContentTypeID: "look::3", Filters: "Region=EMEA", Destinations: "#sales,ops@example.com"})
	token := login(t, base)
	_, before, _ := call(t, "GET", base+"scheduled_plans/42", token, "", "")
	idsBefore, _ := destinations(t, before)
	_, early, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")

	clock.Advance(time.Minute)
	s.EditPlan("42", func(p *lookertest.Plan) {
		p.ID = "43" // ignored: an edit keeps the plan's id
		p.Name, p.Filters = "Sales EMEA", "Region=EMEA&Date=7+days"
		p.Destinations = "#sales,cfo@example.com"
	})
	_, after, _ := call(t, "GET", base+"scheduled_plans/42", token, "", "")
	idsAfter, dests := destinations(t, after)
	want := map[string]any{"id": "42", "name": "Sales EMEA", "filters_string": "Region=EMEA&Date=7+days", "updated_at": "2026-11-27T15:01:00Z",
		"scheduled_plan_destination": []any{dest("42", "looker-integration", "csv", "#sales", false), dest("42", "email", "csv", "cfo@example.com", false)}}
	got := map[string]any{"id": after["id"], "name": after["name"], "filters_string": after["filters_string"], "updated_at": after["updated_at"], "scheduled_plan_destination": dests}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the edit (-want +got):\n%s", diff)
	}
	if len(idsAfter) != 2 || idsAfter[0] != idsBefore[0] || slices.Contains(idsBefore, idsAfter[1]) {
		t.Errorf("destination ids %q, then %q: want #sales's kept, cfo's new", idsBefore, idsAfter)
	}

	_, late, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	for _, tc := range []struct {
		copy                map[string]any
		name, filters, dest string
	}{
		{early, "Sales", "Region=EMEA", "#sales,ops@example.com"},
		{late, "Sales EMEA", "Region=EMEA&Date=7+days", "#sales,cfo@example.com"},
	} {
		_, got, _ := call(t, "GET", base+"scheduled_plans/"+tc.copy["id"].(string), token, "", "")
		_, dests := destinations(t, got)
		var addrs []string
		for _, d := range dests {
			addrs = append(addrs, d.(map[string]any)["address"].(string))
		}
		if got["name"] != tc.name || got["filters_string"] != tc.filters || strings.Join(addrs, ",") != tc.dest {
			t.Errorf("copy %v: name %v, filters %v, destinations %q; want %q, %q, %q",
				tc.copy["id"], got["name"], got["filters_string"], addrs, tc.name, tc.filters, tc.dest)
		}
	}

	// RenamePlan and DisablePlan are edits too: they move updated_at.
	clock.Advance(time.Minute)
	s.RenamePlan("42", "Sales (old)")
	_, obj, _ := call(t, "GET", base+"scheduled_plans/42?fields=name,updated_at", token, "", "")
	if diff := cmp.Diff(map[string]any{"name": "Sales (old)", "updated_at": "2026-11-27T15:02:00Z"}, obj); diff != "" {
		t.Errorf("after RenamePlan (-want +got):\n%s", diff)
	}
	clock.Advance(time.Minute)
	s.DisablePlan("42")
	_, obj, _ = call(t, "GET", base+"scheduled_plans/42?fields=enabled,updated_at", token, "", "")
	if diff := cmp.Diff(map[string]any{"enabled": false, "updated_at": "2026-11-27T15:03:00Z"}, obj); diff != "" {
		t.Errorf("after DisablePlan (-want +got):\n%s", diff)
	}

	defer func() {
		if recover() == nil {
			t.Errorf("EditPlan of an unknown plan did not panic")
		}
	}()
	s.EditPlan("404", func(*lookertest.Plan) {})
}

func TestSendNowIsARunOnceThatIsNoCopy(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	clock := lookertest.NewClock(time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC))
	s.SetClock(clock)
	s.SetActivityLag(time.Second, time.Second)
	s.AddPlan(lookertest.Plan{ID: "42", Name: "Sales", UserID: "5", ContentTypeID: "look::3", Destinations: "#sales"})
	token := login(t, base)

	sent := s.SendNow(lookertest.Plan{ID: "42", Name: "Sales", UserID: "5", ContentTypeID: "look::3", Filters: "Region=APAC",
		Dests: []lookertest.Destination{{Address: "#sales"}, {Address: "boss@example.com"}}})
	failed := s.SendNow(lookertest.Plan{UserID: "5", ContentTypeID: "look::3", Destinations: "#sales"},
		lookertest.Outcome{Status: "failure", Detail: "Slack API error: ratelimited", After: time.Minute})
	if sent.ID == "" || sent.ID == "42" || failed.ID == "" || failed.ID == sent.ID || !sent.RunOnce {
		t.Fatalf("SendNow made %+v and %+v: want new run-once plans", sent, failed)
	}
	_, obj, _ := call(t, "GET", base+"scheduled_plans/"+sent.ID, token, "", "")
	_, dests := destinations(t, obj)
	want := map[string]any{"run_once": true, "filters_string": "Region=APAC", "created_at": "2026-11-27T15:00:00Z", "user_id": "5", "look_id": "3",
		"scheduled_plan_destination": []any{dest(sent.ID, "looker-integration", "csv", "#sales", false), dest(sent.ID, "email", "csv", "boss@example.com", false)}}
	got := map[string]any{"run_once": obj["run_once"], "filters_string": obj["filters_string"], "created_at": obj["created_at"], "user_id": obj["user_id"],
		"look_id": obj["look_id"], "scheduled_plan_destination": dests}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET the sent plan (-want +got):\n%s", diff)
	}
	if reruns, copies := s.Reruns(), s.Copies("42"); len(reruns) != 0 || len(copies) != 0 {
		t.Errorf("reruns %v, copies of 42 %v: a send is no copy", reruns, copies)
	}

	fields := []string{"scheduled_plan.id", "scheduled_job.status", "scheduled_job.status_detail"}
	runOnce := map[string]string{"scheduled_plan.run_once": "Yes"}
	if got := query(t, base, token, fields, runOnce); len(got) != 0 {
		t.Errorf("System Activity shows the sends at once: %v", got)
	}
	clock.Advance(time.Second)
	wantRows := []any{
		map[string]any{"scheduled_plan.id": mustFloat(t, sent.ID), "scheduled_job.status": "success", "scheduled_job.status_detail": nil},
		map[string]any{"scheduled_plan.id": mustFloat(t, failed.ID), "scheduled_job.status": nil, "scheduled_job.status_detail": nil},
	}
	if diff := cmp.Diff(wantRows, query(t, base, token, fields, runOnce)); diff != "" {
		t.Errorf("after the lag (-want +got):\n%s", diff)
	}
	clock.Advance(time.Minute)
	wantRows[1] = map[string]any{"scheduled_plan.id": mustFloat(t, failed.ID), "scheduled_job.status": "failure", "scheduled_job.status_detail": "Slack API error: ratelimited"}
	if diff := cmp.Diff(wantRows, query(t, base, token, fields, runOnce)); diff != "" {
		t.Errorf("after the failed send's minute (-want +got):\n%s", diff)
	}
}
