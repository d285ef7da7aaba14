package lookertest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// runOnce posts run_once for plan 42 with a client that gives up after
// timeout (none when 0), and returns the answer, or nil and the error.
func runOnce(t *testing.T, base, token string, timeout time.Duration) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"scheduled_plans/42/run_once", nil)
	req.Header.Set("Authorization", "token "+token)
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw), nil
}

// waitFor polls cond for up to ten seconds: long enough for a loaded
// machine, and only a failing test waits that long.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

func TestLateActionCopiesAfterTheClientGaveUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault lookertest.Fault
	}{
		{"answer held back", lookertest.Fault{Op: "run_once", LateAction: 100 * time.Millisecond, Delay: time.Minute}},
		{"connection reset", lookertest.Fault{Op: "run_once", LateAction: 100 * time.Millisecond, Reset: true}},
		{"answer replaced", lookertest.Fault{Op: "run_once", LateAction: 100 * time.Millisecond, Status: 504}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, base := fake(t)
			s.AddPlan(lookertest.Plan{ID: "42"})
			s.Inject(tc.fault)
			token := login(t, base)

			resp, _, err := runOnce(t, base, token, 30*time.Millisecond)
			if err == nil && resp.StatusCode == 200 {
				t.Fatalf("run_once answered 200")
			}
			// Looker must not act before the action is due. Whether the
			// client gave up before then is up to the machine's load.
			got := s.Reruns()
			late := s.LateActions()
			if len(late) != 1 {
				t.Fatalf("late actions: %+v, want one", late)
			}
			if len(got) != 0 && time.Now().Before(late[0].Due) {
				t.Errorf("reruns %v before the late action was due", got)
			}
			// Done is set once the copy is made: wait on it, not on the copy.
			waitFor(t, "the late action", func() bool { return s.LateActions()[0].Done })
			late = s.LateActions()
			if late[0].Dropped || late[0].Status != 200 || late[0].Op != lookertest.OpRunOnce {
				t.Errorf("late actions: %+v", late)
			}
			time.Sleep(20 * time.Millisecond)
			if diff := cmp.Diff(map[string]int{"42": 1}, s.Reruns()); diff != "" {
				t.Errorf("reruns (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLateActionAnswersOnceDoneIfTheClientWaits(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, LateAction: 50 * time.Millisecond})
	token := login(t, base)
	start := time.Now()
	resp, body, err := runOnce(t, base, token, 0)
	if err != nil || resp.StatusCode != 200 || !strings.Contains(body, `"run_once":true`) {
		t.Fatalf("run_once: %v %v %s", resp, err, body)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("answered after %v, before Looker acted", took)
	}
	if diff := cmp.Diff(map[string]int{"42": 1}, s.Reruns()); diff != "" {
		t.Errorf("reruns (-want +got):\n%s", diff)
	}
}

func TestLateActionAfterCloseIsDropped(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.Inject(lookertest.Fault{Op: "run_once", LateAction: time.Minute, Times: -1})
	token := login(t, base)
	if _, _, err := runOnce(t, base, token, 30*time.Millisecond); err == nil {
		t.Fatal("run_once answered before Looker acted")
	}
	s.Close() // drops the pending action at once, without waiting a minute
	if _, _, err := runOnce(t, base, token, 30*time.Millisecond); err == nil {
		t.Fatal("run_once answered after Close")
	}
	want := []lookertest.LateAction{
		{Op: lookertest.OpRunOnce, URL: "/api/4.0/scheduled_plans/42/run_once", Dropped: true},
		{Op: lookertest.OpRunOnce, URL: "/api/4.0/scheduled_plans/42/run_once", Dropped: true},
	}
	if diff := cmp.Diff(want, s.LateActions(), cmpopts.IgnoreFields(lookertest.LateAction{}, "Due")); diff != "" {
		t.Errorf("late actions (-want +got):\n%s", diff)
	}
	if got := s.Reruns(); len(got) != 0 {
		t.Errorf("reruns: %v, want none", got)
	}
}

func TestLateActionNeedsALiveToken(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.Inject(lookertest.Fault{Op: "run_once", LateAction: 10 * time.Millisecond, ExpireTokens: true})
	token := login(t, base)
	if resp, _, err := runOnce(t, base, token, 0); err != nil || resp.StatusCode != 401 {
		t.Fatalf("run_once with a revoked token: %v %v, want 401", resp, err)
	}
	time.Sleep(30 * time.Millisecond)
	if got, late := s.Reruns(), s.LateActions(); len(got) != 0 || len(late) != 0 {
		t.Errorf("reruns %v, late actions %v: want none", got, late)
	}
}

func TestAProxysHTML503AfterLookerActed(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, AfterAction: true, Status: 503, Body: lookertest.ProxyPage})
	token := login(t, base)
	resp, body, err := runOnce(t, base, token, 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("answer %d %q, want 503 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if body != lookertest.ProxyPage || !strings.Contains(body, "<title>503 Service Temporarily Unavailable</title>") {
		t.Errorf("body %q, want ProxyPage", body)
	}
	if diff := cmp.Diff(map[string]int{"42": 1}, s.Reruns()); diff != "" {
		t.Errorf("reruns (-want +got):\n%s", diff)
	}
}

func TestAGatewaysJSON503IsNotLookersError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		fault    lookertest.Fault
		wantBody func(t *testing.T, body string)
	}{
		{
			name:  "a gateway's, after Looker acted",
			fault: lookertest.Fault{Op: lookertest.OpRunOnce, Status: 503, ContentType: "application/json", Body: lookertest.GatewayJSON503, AfterAction: true},
			wantBody: func(t *testing.T, body string) {
				if body != lookertest.GatewayJSON503 || strings.Contains(body, "documentation_url") {
					t.Errorf("body %q, want GatewayJSON503 exactly", body)
				}
			},
		},
		{
			name:  "Looker's own, after it acted",
			fault: lookertest.Fault{Op: lookertest.OpRunOnce, Status: 503, AfterAction: true},
			wantBody: func(t *testing.T, body string) {
				var e map[string]any
				if err := json.Unmarshal([]byte(body), &e); err != nil || e["message"] == nil || e["documentation_url"] == nil {
					t.Errorf("body %q, want Looker's error with message and documentation_url", body)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, base := fake(t)
			s.AddPlan(lookertest.Plan{ID: "42"})
			s.Inject(tc.fault)
			token := login(t, base)
			resp, body, err := runOnce(t, base, token, 0)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 503 || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("answer %d %q, want 503 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			tc.wantBody(t, strings.TrimSpace(body))
			if diff := cmp.Diff(map[string]int{"42": 1}, s.Reruns()); diff != "" {
				t.Errorf("reruns (-want +got):\n%s", diff)
			}
		})
	}
}

func TestALoginPageThatEchoesTheForm(t *testing.T) {
	t.Parallel()
	for _, status := range []int{200, 403} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			s, base := fake(t)
			s.Inject(lookertest.Fault{Op: lookertest.OpLogin, Status: status, EchoForm: true})
			form := url.Values{"client_id": {lookertest.ClientID}, "client_secret": {lookertest.ClientSecret}}.Encode()
			resp, err := http.Post(base+"login", "application/x-www-form-urlencoded", strings.NewReader(form))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("answer %d %q, want %d text/html", resp.StatusCode, resp.Header.Get("Content-Type"), status)
			}
			for _, want := range []string{
				`<input type="hidden" name="client_secret" value="` + lookertest.ClientSecret + `">`,
				`<input type="hidden" name="client_id" value="` + lookertest.ClientID + `">`,
			} {
				if !strings.Contains(string(raw), want) {
					t.Errorf("page %q lacks %q", raw, want)
				}
			}
			if n := s.LiveTokens(); n != 0 {
				t.Errorf("%d live tokens: the page stood in for Looker's login", n)
			}
		})
	}
}

func TestAnEchoFormFaultNeedsAStatusAndNoBody(t *testing.T) {
	t.Parallel()
	for _, f := range []lookertest.Fault{
		{Op: lookertest.OpLogin, EchoForm: true},
		{Op: lookertest.OpLogin, EchoForm: true, Status: 200, Body: "<html></html>"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Inject(%+v) did not panic", f)
				}
			}()
			lookertest.New().Inject(f)
		}()
	}
}
