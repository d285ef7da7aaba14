package lookertest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// fake starts a stand-in that is not tied to t, so requests it refuses can
// be inspected instead of failing the test.
func fake(t *testing.T) (*lookertest.Server, string) {
	t.Helper()
	s := lookertest.New()
	hts := httptest.NewServer(s)
	t.Cleanup(hts.Close)
	t.Cleanup(s.Close) // first: drops late actions, so none outlives the test
	return s, hts.URL + "/api/4.0/"
}

// query runs an inline query on System Activity and returns its rows.
func query(t *testing.T, base, token string, fields []string, filters map[string]string) []any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": "system__activity", "view": "scheduled_plan", "query_timezone": "UTC",
		"fields": fields, "filters": filters, "sorts": []string{fields[0]},
	})
	status, _, rows := call(t, "POST", base+"queries/run/json?cache=false", token, "application/json", string(body))
	if status != 200 {
		t.Fatalf("query: %d", status)
	}
	return rows
}

func call(t *testing.T, method, u, token, contentType, body string) (int, map[string]any, []any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var obj map[string]any
	var arr []any
	if json.Unmarshal(raw, &obj) != nil {
		_ = json.Unmarshal(raw, &arr)
	}
	return resp.StatusCode, obj, arr
}

func login(t *testing.T, base string) string {
	t.Helper()
	form := url.Values{"client_id": {lookertest.ClientID}, "client_secret": {lookertest.ClientSecret}}.Encode()
	status, obj, _ := call(t, "POST", base+"login", "", "application/x-www-form-urlencoded", form)
	if status != 200 || obj["access_token"] == "" || obj["token_type"] != "Bearer" {
		t.Fatalf("login: %d %v", status, obj)
	}
	return obj["access_token"].(string)
}

func TestAnswersAsLookerDoes(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "42", Name: "Daily revenue", UserID: "7", ContentTypeID: "dashboard::9"})

	// Bad credentials: 404 with Looker's error body, not 401.
	status, obj, _ := call(t, "POST", base+"login", "", "application/x-www-form-urlencoded", "client_id=x&client_secret=y")
	if status != 404 || obj["message"] != "Not found" || obj["documentation_url"] == nil {
		t.Errorf("bad login: %d %v", status, obj)
	}
	// No token: 401.
	if status, obj, _ := call(t, "POST", base+"scheduled_plans/42/run_once", "", "", ""); status != 401 || obj["message"] == nil {
		t.Errorf("no token: %d %v", status, obj)
	}
	token := login(t, base)

	// run_once copies the plan into a new run-once plan and answers with it.
	status, obj, _ = call(t, "POST", base+"scheduled_plans/42/run_once", token, "", "")
	want := map[string]any{"name": "Daily revenue", "user_id": "7", "run_once": true, "dashboard_id": "9"}
	got := map[string]any{"name": obj["name"], "user_id": obj["user_id"], "run_once": obj["run_once"], "dashboard_id": obj["dashboard_id"]}
	if status != 200 || obj["id"] == "42" || obj["id"] == nil || cmp.Diff(want, got) != "" {
		t.Errorf("run_once: %d %v", status, obj)
	}
	if diff := cmp.Diff(map[string]int{"42": 1}, s.Reruns()); diff != "" {
		t.Errorf("reruns (-want +got):\n%s", diff)
	}
	// A deleted plan: 404.
	s.DeletePlan("42")
	if status, _, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", ""); status != 404 {
		t.Errorf("run_once of a deleted plan: %d", status)
	}
	// Logout: 204, and the token is dead.
	if status, _, _ := call(t, "DELETE", base+"logout", token, "", ""); status != 204 {
		t.Errorf("logout: %d", status)
	}
	if status, _, _ := call(t, "POST", base+"scheduled_plans/42/run_once", token, "", ""); status != 401 {
		t.Errorf("after logout: %d, want 401", status)
	}
	if len(s.Unexpected()) != 0 {
		t.Errorf("refused: %v", s.Unexpected())
	}
}

func TestRefusesWhatTheSpecDoesNotDeclare(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	token := login(t, base)
	for _, u := range []string{
		base + "queries/run/json?cache=1",            // booleans are true or false
		base + "queries/run/json?force=true",         // not a declared parameter
		base + "queries/run/csv?cache=false",         // only json is served
		base + "scheduled_plans/1/run_once?now=true", // run_once declares no query parameters
		strings.Replace(base, "4.0", "3.1", 1) + "login",
	} {
		before := len(s.Unexpected())
		if status, _, _ := call(t, "POST", u, token, "application/json", `{}`); status != 404 {
			t.Errorf("%s: %d, want 404", u, status)
		}
		if len(s.Unexpected()) != before+1 {
			t.Errorf("%s: not recorded as unexpected", u)
		}
	}
}

func TestQueriesFilterAndCutLikeLooker(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	t0 := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	for i, at := range []time.Duration{-time.Second, 0, time.Hour, 10*time.Hour - time.Second, 10 * time.Hour} {
		s.AddFailure(string(rune('1'+i)), t0.Add(at), "boom")
	}
	s.AddSuccess("3", t0.Add(2*time.Hour))
	token := login(t, base)
	query := func(limit string) []any {
		body, _ := json.Marshal(map[string]any{
			"model": "system__activity", "view": "scheduled_plan", "limit": limit, "query_timezone": "UTC",
			"fields":  []string{"scheduled_plan.id", "scheduled_job.created_time"},
			"filters": map[string]string{"scheduled_job.status": "failure", "scheduled_plan.run_once": "No", "scheduled_job.created_time": "2026/11/27 15:00:00 to 2026/11/28 01:00:00"},
			"sorts":   []string{"scheduled_plan.id"},
		})
		status, _, rows := call(t, "POST", base+"queries/run/json?cache=false", token, "application/json", string(body))
		if status != 200 {
			t.Fatalf("query: %d", status)
		}
		return rows
	}
	want := []any{
		map[string]any{"scheduled_plan.id": 2.0, "scheduled_job.created_time": "2026-11-27 15:00:00"},
		map[string]any{"scheduled_plan.id": 3.0, "scheduled_job.created_time": "2026-11-27 16:00:00"},
		map[string]any{"scheduled_plan.id": 4.0, "scheduled_job.created_time": "2026-11-28 00:59:59"},
	}
	if diff := cmp.Diff(want, query("500")); diff != "" {
		t.Errorf("window [A, B) (-want +got):\n%s", diff)
	}
	s.SetRowLimit(2)
	if got := query("500"); len(got) != 2 {
		t.Errorf("%d rows past a row limit of 2: Looker cuts silently", len(got))
	}
	if got := query("1"); len(got) != 1 {
		t.Errorf("%d rows for limit 1", len(got))
	}
}
