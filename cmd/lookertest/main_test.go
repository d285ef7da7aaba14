package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func TestRerunsBesideTheFake(t *testing.T) {
	t.Parallel()
	s := lookertest.New()
	s.AddPlan(lookertest.Plan{ID: "42"})
	hts := httptest.NewServer(withReruns(s))
	t.Cleanup(hts.Close)

	do := func(method, u, token, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "token "+token)
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp, string(raw)
	}

	// Looker's API passes through to the fake.
	form := url.Values{"client_id": {lookertest.ClientID}, "client_secret": {lookertest.ClientSecret}}.Encode()
	resp, body := do(http.MethodPost, hts.URL+"/api/4.0/login", "", form)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &login); resp.StatusCode != 200 || err != nil {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(http.MethodPost, hts.URL+"/api/4.0/scheduled_plans/42/run_once", login.AccessToken, ""); resp.StatusCode != 200 {
		t.Fatalf("run_once: %d %s", resp.StatusCode, body)
	}

	// The side door answers what the fake counted.
	resp, body = do(http.MethodGet, hts.URL+"/lookertest/reruns", "", "")
	var reruns map[string]int
	if err := json.Unmarshal([]byte(body), &reruns); resp.StatusCode != 200 || err != nil {
		t.Fatalf("reruns: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("reruns Content-Type %q, want application/json", ct)
	}
	if diff := cmp.Diff(map[string]int{"42": 1}, reruns); diff != "" {
		t.Errorf("reruns (-want +got):\n%s", diff)
	}

	// Only GET: anything else on that path is the fake's to refuse, and the
	// fake alone has no side door.
	if resp, _ := do(http.MethodPost, hts.URL+"/lookertest/reruns", "", ""); resp.StatusCode != 404 {
		t.Errorf("POST /lookertest/reruns: %d, want 404", resp.StatusCode)
	}
	bare := httptest.NewServer(s)
	t.Cleanup(bare.Close)
	if resp, _ := do(http.MethodGet, bare.URL+"/lookertest/reruns", "", ""); resp.StatusCode != 404 {
		t.Errorf("the fake alone answered GET /lookertest/reruns: %d, want 404", resp.StatusCode)
	}
	if got := len(s.Unexpected()); got != 2 {
		t.Errorf("%d requests refused, want 2: %v", got, s.Unexpected())
	}
}
