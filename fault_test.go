package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// runWith runs the binary in process like runConfig, on s's clock, with
// the per-request timeout shortened to timeout (LOOKERSDK_TIMEOUT counts
// whole seconds): it stands for a client's timeout, so it passes on the wall
// clock.
func runWith(t *testing.T, ctx context.Context, s *lookertest.Server, env map[string]string, timeout time.Duration) result {
	t.Helper()
	cfg := testConfig(t, s, env)
	if timeout > 0 {
		cfg.timeout = timeout
	}
	return runCfg(ctx, cfg)
}

// TestFaults drives the whole binary through Looker misbehaving and asserts,
// for each plan, how many times its report was delivered.
func TestFaults(t *testing.T) {
	t.Parallel()
	since, until := window()
	failAt := since.Add(time.Hour)
	tests := []struct {
		name    string
		plans   []string
		faults  []lookertest.Fault
		timeout time.Duration
		// wantDeliveries per plan; wantFailed lists the plans reported failed.
		wantDeliveries map[string]int
		wantFailed     []string
		wantCode       int
		wantLog        string // a line the operator can read
	}{
		{
			name:           "429 with Retry-After is waited out",
			plans:          []string{"1", "2"},
			faults:         []lookertest.Fault{{Op: "run_once", PlanID: "1", Status: 429, RetryAfter: "1"}},
			wantDeliveries: map[string]int{"1": 1, "2": 1},
			wantCode:       exitOK,
			wantLog:        "Looker answered 429",
		},
		{
			name:           "503 twice, then served",
			plans:          []string{"1"},
			faults:         []lookertest.Fault{{Op: "run_once", Status: 503, Times: 2}},
			wantDeliveries: map[string]int{"1": 1},
			wantCode:       exitOK,
			wantLog:        "retrying request",
		},
		{
			name:           "500 before the copy was made: checked, then sent again",
			plans:          []string{"1", "2"},
			faults:         []lookertest.Fault{{Op: "run_once", PlanID: "1", Status: 500}},
			wantDeliveries: map[string]int{"1": 1, "2": 1},
			wantCode:       exitOK,
			wantLog:        "looking for its copy in System Activity",
		},
		{
			name:           "500 after the copy was made: found, not sent again",
			plans:          []string{"1", "2"},
			faults:         []lookertest.Fault{{Op: "run_once", PlanID: "1", Status: 500, AfterAction: true}},
			wantDeliveries: map[string]int{"1": 1, "2": 1},
			wantCode:       exitOK,
			wantLog:        "its copy found in System Activity after a lost answer",
		},
		{
			name:           "connection reset before Looker acted",
			plans:          []string{"1"},
			faults:         []lookertest.Fault{{Op: "run_once", Reset: true}},
			wantDeliveries: map[string]int{"1": 1},
			wantCode:       exitOK,
		},
		{
			name:           "connection reset after Looker acted",
			plans:          []string{"1"},
			faults:         []lookertest.Fault{{Op: "run_once", Reset: true, AfterAction: true}},
			wantDeliveries: map[string]int{"1": 1},
			wantCode:       exitOK,
			wantLog:        "its copy found in System Activity after a lost answer",
		},
		{
			name:           "answer slower than the timeout, after acting",
			plans:          []string{"1"},
			faults:         []lookertest.Fault{{Op: "run_once", AfterAction: true, Delay: 5 * time.Second}},
			timeout:        500 * time.Millisecond,
			wantDeliveries: map[string]int{"1": 1},
			wantCode:       exitOK,
			wantLog:        "its copy found in System Activity after a lost answer",
		},
		{
			name:           "request held past the timeout, never acted on",
			plans:          []string{"1"},
			faults:         []lookertest.Fault{{Op: "run_once", Delay: 5 * time.Second}},
			timeout:        500 * time.Millisecond,
			wantDeliveries: map[string]int{"1": 1},
			wantCode:       exitOK,
		},
		{
			name:  "500 every time, no copy: given up and reported",
			plans: []string{"1", "2"},
			faults: []lookertest.Fault{
				{Op: "run_once", PlanID: "1", Status: 500, Times: -1},
			},
			wantDeliveries: map[string]int{"2": 1},
			wantFailed:     []string{"1"},
			wantCode:       exitPersonNeeded,
			wantLog:        "gave up after 3 sends of run_once",
		},
		{
			name:  "outcome unknown and System Activity down: not sent again",
			plans: []string{"1"},
			faults: []lookertest.Fault{
				{Op: "run_once", Status: 502, AfterAction: true},
				// The listing's six queries succeed (the time zone's proof,
				// now and before the window; running deliveries, failures,
				// history, copies); the look for the copy after the 502
				// fails.
				{Op: lookertest.OpRunInlineQuery, Times: 6},
				{Op: lookertest.OpRunInlineQuery, Status: 500, Times: -1},
			},
			wantDeliveries: map[string]int{"1": 1},
			wantFailed:     []string{"1"},
			wantCode:       exitPersonNeeded,
			wantLog:        "not sent again, to avoid a second delivery",
		},
		{
			name:  "token expiring midway",
			plans: []string{"1", "2", "3"},
			faults: []lookertest.Fault{
				{Op: lookertest.OpRunInlineQuery, ExpireTokens: true},
				{Op: "run_once", PlanID: "2", ExpireTokens: true},
			},
			wantDeliveries: map[string]int{"1": 1, "2": 1, "3": 1},
			wantCode:       exitOK,
		},
		{
			name:           "a deleted plan",
			plans:          []string{"1", "2"},
			faults:         []lookertest.Fault{{Op: "run_once", PlanID: "1", Status: 404}},
			wantDeliveries: map[string]int{"2": 1},
			wantFailed:     []string{"1"},
			wantCode:       exitPersonNeeded,
		},
		{
			name:           "Looker down at login",
			plans:          []string{"1"},
			faults:         []lookertest.Fault{{Op: lookertest.OpLogin, Status: 503, Times: -1}},
			wantDeliveries: map[string]int{},
			wantCode:       exitCannotStart,
			wantLog:        "could not log in to",
		},
		{
			name:  "HTML instead of JSON",
			plans: []string{"1"},
			faults: []lookertest.Fault{{Op: lookertest.OpRunInlineQuery, Status: 200,
				Body: "<html><body>Sign in with SSO</body></html>"}},
			wantDeliveries: map[string]int{},
			wantCode:       exitCannotStart,
			wantLog:        "want a JSON response, got text/html",
		},
		{
			name:  "a proxy's HTML error page at login",
			plans: []string{"1"},
			faults: []lookertest.Fault{{Op: lookertest.OpLogin, Status: 502, Times: -1,
				Body: "<html><h1>502 Bad Gateway</h1></html>"}},
			wantDeliveries: map[string]int{},
			wantCode:       exitCannotStart,
			// A login answer is never quoted: it may echo the form.
			wantLog: "502: Bad Gateway (37 bytes, not shown)",
		},
		{
			name:  "a gateway's JSON 503 after Looker acted: confirmed, not repeated",
			plans: []string{"1", "2"},
			faults: []lookertest.Fault{{Op: "run_once", PlanID: "1", Status: 503, AfterAction: true,
				ContentType: "application/json", Body: lookertest.GatewayJSON503}},
			wantDeliveries: map[string]int{"1": 1, "2": 1},
			wantCode:       exitOK,
			wantLog:        "looking for its copy in System Activity",
		},
		{
			name:  "a rate limiter's HTML 429 is a refusal: waited out and repeated",
			plans: []string{"1"},
			faults: []lookertest.Fault{{Op: "run_once", PlanID: "1", Status: 429, Times: 2,
				Body: "<html><h1>429 Too Many Requests</h1></html>"}},
			wantDeliveries: map[string]int{"1": 1},
			wantCode:       exitOK,
			wantLog:        "retrying request",
		},
		{
			name:  "a JSON object instead of rows",
			plans: []string{"1"},
			faults: []lookertest.Fault{{Op: lookertest.OpRunInlineQuery, Status: 200, ContentType: "application/json",
				Body: `{"data": []}`}},
			wantDeliveries: map[string]int{},
			wantCode:       exitCannotStart,
			wantLog:        "want a JSON array of rows",
		},
		{
			name:  "rows of the wrong shape",
			plans: []string{"1"},
			faults: []lookertest.Fault{{Op: lookertest.OpRunInlineQuery, Status: 200, ContentType: "application/json",
				Body: `[{"scheduled_plan.id": {"value": 1}}]`}},
			wantDeliveries: map[string]int{},
			wantCode:       exitCannotStart,
			wantLog:        "scheduled_plan.id",
		},
		{
			name:  "truncated JSON",
			plans: []string{"1"},
			faults: []lookertest.Fault{{Op: lookertest.OpRunInlineQuery, Status: 200, ContentType: "application/json",
				Body: `[{"scheduled_plan.id": 1`}},
			wantDeliveries: map[string]int{},
			wantCode:       exitCannotStart,
			wantLog:        "decode response",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			for _, id := range tt.plans {
				s.AddFailure(id, failAt, "Slack API error: ratelimited")
			}
			for _, f := range tt.faults {
				s.Inject(f)
			}
			r := runWith(t, context.Background(), s, lookerEnv(s, since, until), tt.timeout)
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			if diff := cmp.Diff(tt.wantDeliveries, s.Reruns()); diff != "" {
				t.Errorf("deliveries per plan (-want +got):\n%s", diff)
			}
			sum := r.summary(t)
			var failed []string
			for _, f := range sum.Failed {
				failed = append(failed, f.PlanID)
				if f.Error == "" {
					t.Errorf("plan %s failed without an error", f.PlanID)
				}
			}
			if diff := cmp.Diff(tt.wantFailed, failed); diff != "" {
				t.Errorf("failed plans (-want +got):\n%s", diff)
			}
			if tt.wantCode == exitOK && len(sum.Rerun) != len(tt.plans) {
				t.Errorf("summary lists %d re-runs, want %d", len(sum.Rerun), len(tt.plans))
			}
			if tt.wantLog != "" && !strings.Contains(r.stderr+r.stdout, tt.wantLog) {
				t.Errorf("output does not say %q:\n%s", tt.wantLog, r.stderr)
			}
			// The summary's new plan ids are the copies Looker really made.
			for _, rr := range sum.Rerun {
				if copies := s.Copies(rr.PlanID); len(copies) != 1 || copies[0] != rr.NewPlanID {
					t.Errorf("plan %s: summary says copy %q, Looker made %v", rr.PlanID, rr.NewPlanID, copies)
				}
			}
		})
	}
}

func TestManyFailuresAtOnce(t *testing.T) {
	t.Parallel()
	since, until := window()
	s := lookertest.NewServer(t)
	const n = 1500
	for i := range n {
		s.AddFailure(strconv.Itoa(10000+i), since.Add(time.Duration(i)*time.Second), "Slack API error: ratelimited")
	}
	// Some of them fail twice, and Looker pushes back now and then.
	for i := 0; i < n; i += 7 {
		s.AddFailure(strconv.Itoa(10000+i), since.Add(5*time.Hour), "again")
	}
	s.Inject(lookertest.Fault{Op: "run_once", Status: 429, RetryAfter: "1", Times: 20})
	s.Inject(lookertest.Fault{Op: "run_once", Status: 500, AfterAction: true, Times: 10})
	env := lookerEnv(s, since, until)
	env["RERUN_CONCURRENCY"] = "8"
	r := runWith(t, context.Background(), s, env, 0)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, lastLines(r.stderr, 20))
	}
	got := s.Reruns()
	if len(got) != n {
		t.Errorf("%d plans delivered, want %d", len(got), n)
	}
	for id, k := range got {
		if k != 1 {
			t.Errorf("plan %s delivered %d times", id, k)
		}
	}
	if sum := r.summary(t); len(sum.Rerun) != n || sum.FailedPlans != n {
		t.Errorf("summary: %d re-runs of %d failed plans, want %d", len(sum.Rerun), sum.FailedPlans, n)
	}
}

func TestStopLetsCallsInFlightFinish(t *testing.T) {
	t.Parallel()
	since, until := window()
	s := lookertest.NewServer(t)
	for _, id := range []string{"1", "2", "3", "4"} {
		s.AddFailure(id, since.Add(time.Hour), "boom")
	}
	// Plan 1's run_once is slow; the run is stopped while it is in flight.
	s.Inject(lookertest.Fault{Op: "run_once", PlanID: "1", Delay: 300 * time.Millisecond, AfterAction: true})
	env := lookerEnv(s, since, until)
	env["RERUN_CONCURRENCY"] = "1"
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(s.Copies("1")) == 0 { // plan 1's run_once is in flight
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	// The wall clock: the grace period lets plan 1's slow answer arrive;
	// on a fake clock it would end at once.
	r := runCfg(ctx, wallConfig(t, time.Now(), env))
	if r.code != exitStopped {
		t.Errorf("exit %d, want 4 after a stop\n%s", r.code, r.stderr)
	}
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	sum := r.summary(t)
	if len(sum.Rerun) != 1 || sum.Rerun[0].PlanID != "1" {
		t.Errorf("rerun = %+v, want plan 1: its call was in flight and must be reported", sum.Rerun)
	}
	if diff := cmp.Diff([]string{"2", "3", "4"}, sum.NotAttempted); diff != "" {
		t.Errorf("not_attempted (-want +got):\n%s", diff)
	}
	if !strings.Contains(sum.Error, "stopped") {
		t.Errorf("summary error = %q, want it to say the run was stopped", sum.Error)
	}
	if s.LiveTokens() != 0 {
		t.Error("no logout after a stop")
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestLookerGoesDownMidway: after the listing, every run_once meets a 503
// (after the transport's retries). The run stops starting new re-runs after
// a few, rather than grinding through every plan into the task's timeout,
// and accounts for every plan.
func TestLookerGoesDownMidway(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		faults []lookertest.Fault
	}{
		{"Looker answers 503 to every run_once", []lookertest.Fault{{Op: "run_once", Status: 503, Times: -1}}},
		// A 429 is a refusal, whoever answers it: never a look in System
		// Activity per plan, and it counts toward Looker being out of reach.
		{"a rate limiter answers its HTML 429 to every run_once", []lookertest.Fault{
			{Op: "run_once", Status: 429, Body: "<html><h1>429 Too Many Requests</h1></html>", Times: -1}}},
		{"a proxy answers its HTML 503 to everything", []lookertest.Fault{
			{Op: "run_once", Status: 503, Body: lookertest.ProxyPage, Times: -1},
			// The listing's six queries pass; then System Activity is down too.
			{Op: lookertest.OpRunInlineQuery, Times: 6},
			{Op: lookertest.OpRunInlineQuery, Status: 503, Body: lookertest.ProxyPage, Times: -1},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			since, until := window()
			s := lookertest.NewServer(t)
			const n = 40
			for i := range n {
				s.AddFailure(strconv.Itoa(100+i), since.Add(time.Hour), "boom")
			}
			for _, f := range tt.faults {
				s.Inject(f)
			}
			env := lookerEnv(s, since, until)
			env["RERUN_CONCURRENCY"] = "2"
			r := runWith(t, context.Background(), s, env, 0)
			if r.code != exitPersonNeeded {
				t.Fatalf("exit %d, want 1\n%s", r.code, lastLines(r.stderr, 10))
			}
			sum := r.summary(t)
			if len(s.Reruns()) != 0 {
				t.Errorf("deliveries %v with Looker down", s.Reruns())
			}
			if got := len(sum.Failed) + len(sum.NotAttempted); got != n {
				t.Errorf("%d failed + %d not attempted, want all %d plans accounted for", len(sum.Failed), len(sum.NotAttempted), n)
			}
			if len(sum.Failed) > 2+3 {
				t.Errorf("%d plans tried against a Looker that was down, want it to stop after a few", len(sum.Failed))
			}
			if !strings.Contains(sum.Error, "could not reach Looker") {
				t.Errorf("summary error %q, want it to say Looker could not be reached", sum.Error)
			}
			if tt.faults[0].Status == 429 && strings.Contains(r.stderr, "looking for its copy") {
				t.Errorf("a 429 sent the run looking for a copy in System Activity:\n%s", lastLines(r.stderr, 10))
			}
		})
	}
}

// TestLostAnswerAfterAFailedRerun: yesterday's re-run of plan 1 failed, so it
// is re-run again; that call's answer is lost before Looker acted. The old
// failed copy must not pass for this call's copy: the plan is sent again and
// delivered once, under its new copy.
func TestLostAnswerAfterAFailedRerun(t *testing.T) {
	t.Parallel()
	since, until := window()
	s := lookertest.NewServer(t)
	s.AddPlan(lookertest.Plan{ID: "1", Name: "Sales", ContentTypeID: "look::1", Destinations: "#sales"})
	s.AddFailure("1", since.Add(time.Hour), "Slack API error: ratelimited")
	s.AddPlan(lookertest.Plan{ID: "801", Name: "Sales", ContentTypeID: "look::1", Destinations: "#sales", RunOnce: true, Created: since.Add(2 * time.Hour)})
	s.AddJob(lookertest.Job{PlanID: "801", Status: "failure", Detail: "Slack API error: ratelimited", Created: since.Add(2 * time.Hour)})
	s.Inject(lookertest.Fault{Op: "run_once", Status: 502})
	r := runWith(t, context.Background(), s, lookerEnv(s, since, until), 0)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	sum := r.summary(t)
	if len(sum.Rerun) != 1 || sum.Rerun[0].NewPlanID != s.Copies("1")[0] || sum.Rerun[0].NewPlanID == "801" {
		t.Errorf("rerun = %+v, want the copy made now (%v), not the old failed one", sum.Rerun, s.Copies("1"))
	}
}
