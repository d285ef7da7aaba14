package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

func outcomes(sum rerun.Summary) map[string]string {
	out := map[string]string{}
	for _, r := range sum.Rerun {
		out[r.PlanID] = r.Outcome
		if r.OutcomeDetail != "" {
			out[r.PlanID] += ": " + r.OutcomeDetail
		}
	}
	return out
}

func attention(sum rerun.Summary) map[string]string {
	out := map[string]string{}
	for _, a := range sum.NeedsPerson {
		out[a.PlanID] = a.Reason + " (" + a.OwnerEmail + ")"
	}
	return out
}

func TestWaitReportsEachOutcome(t *testing.T) {
	t.Parallel()
	since, until := window()
	tests := []struct {
		name     string
		outcome  map[string]lookertest.Outcome
		want     map[string]string
		wantCode int
	}{
		{
			name:     "all delivered",
			outcome:  map[string]lookertest.Outcome{"1": {Status: "success"}, "2": {Status: "success"}},
			want:     map[string]string{"1": "delivered", "2": "delivered"},
			wantCode: exitOK,
		},
		{
			name: "delivered, failed again, still running",
			outcome: map[string]lookertest.Outcome{
				"1": {Status: "success"},
				"2": {Status: "failure", Detail: "Slack API error: ratelimited"},
				"3": {Status: ""},
			},
			want:     map[string]string{"1": "delivered", "2": "failed_again: Slack API error: ratelimited", "3": "running"},
			wantCode: exitPersonNeeded,
		},
		{
			name: "running at first, delivered before the wait ends",
			// It shows within the lag (up to DefaultTestLag), running.
			outcome:  map[string]lookertest.Outcome{"1": {Status: "success", After: time.Second}},
			want:     map[string]string{"1": "delivered"},
			wantCode: exitOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			for id, o := range tt.outcome {
				s.AddFailure(id, since.Add(time.Hour), "Slack API error: ratelimited")
				s.RunOnceOutcome(id, o)
			}
			env := lookerEnv(s, since, until)
			// On the stand-in's clock: the still-running case waits it
			// out in no wall-clock time.
			env["RERUN_WAIT"] = "1500ms"
			r := runWith(t, context.Background(), s, env, 0)
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.wantCode, r.stderr)
			}
			if diff := cmp.Diff(tt.want, outcomes(r.summary(t))); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			for id, n := range s.Reruns() {
				if n != 1 {
					t.Errorf("plan %s delivered %d times", id, n)
				}
			}
			// Polls ask Looker, not its cache, with one query each.
			for _, c := range s.Calls() {
				if c.Op == lookertest.OpRunInlineQuery && !strings.HasSuffix(c.URL, "?cache=false") {
					t.Errorf("poll without cache=false: %s", c.URL)
				}
			}
		})
	}
}

func TestNoWaitNoOutcome(t *testing.T) {
	t.Parallel()
	since, until := window()
	s := lookertest.NewServer(t)
	s.AddFailure("1", since.Add(time.Hour), "boom")
	s.RunOnceOutcome("1", lookertest.Outcome{Status: ""})
	r := runWith(t, context.Background(), s, lookerEnv(s, since, until), 0)
	if sum := r.summary(t); r.code != exitOK || sum.Rerun[0].Outcome != "" {
		t.Errorf("without RERUN_WAIT: exit %d, outcome %q; want 0 and none", r.code, sum.Rerun[0].Outcome)
	}
}

func TestPermanentFailuresNeedAPerson(t *testing.T) {
	t.Parallel()
	since, until := window()
	seed := func(s *lookertest.Server) {
		for id, detail := range map[string]string{
			"1": "Slack API error: channel_not_found",
			"2": "Slack API error: not_in_channel",
			"3": "The user does not have permission to see this dashboard",
			"4": "Quota exceeded for webhook hooks.example.com",
			"5": "Slack API error: ratelimited",
		} {
			s.AddPlan(lookertest.Plan{ID: id, Name: "Report " + id, OwnerEmail: "owner" + id + "@example.com"})
			s.AddFailure(id, since.Add(time.Hour), detail)
		}
	}
	tests := []struct {
		name       string
		env        map[string]string
		wantRerun  map[string]int
		wantPerson map[string]string
	}{
		{
			name:      "built-in patterns",
			wantRerun: map[string]int{"4": 1, "5": 1},
			wantPerson: map[string]string{
				"1": "permanent (owner1@example.com)", "2": "permanent (owner2@example.com)", "3": "permanent (owner3@example.com)",
			},
		},
		{
			name:      "a custom pattern adds to them",
			env:       map[string]string{"RERUN_PERMANENT_PATTERN": `(?i)quota exceeded`},
			wantRerun: map[string]int{"5": 1},
			wantPerson: map[string]string{
				"1": "permanent (owner1@example.com)", "2": "permanent (owner2@example.com)", "3": "permanent (owner3@example.com)",
				"4": "permanent (owner4@example.com)",
			},
		},
		{
			name:       "RERUN_RETRY_PERMANENT re-runs them anyway",
			env:        map[string]string{"RERUN_RETRY_PERMANENT": "true"},
			wantRerun:  map[string]int{"1": 1, "2": 1, "3": 1, "4": 1, "5": 1},
			wantPerson: map[string]string{},
		},
		{
			name:      "a dry run shows them too",
			env:       map[string]string{"RERUN_DRY_RUN": "true"},
			wantRerun: map[string]int{},
			wantPerson: map[string]string{
				"1": "permanent (owner1@example.com)", "2": "permanent (owner2@example.com)", "3": "permanent (owner3@example.com)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			seed(s)
			env := lookerEnv(s, since, until)
			for k, v := range tt.env {
				env[k] = v
			}
			r := runWith(t, context.Background(), s, env, 0)
			sum := r.summary(t)
			if diff := cmp.Diff(tt.wantRerun, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPerson, attention(sum)); diff != "" {
				t.Errorf("needs_person (-want +got):\n%s", diff)
			}
			wantCode := exitOK
			if len(tt.wantPerson) > 0 {
				wantCode = exitPersonNeeded
			}
			if r.code != wantCode {
				t.Errorf("exit %d, want %d", r.code, wantCode)
			}
			for _, a := range sum.NeedsPerson {
				if !strings.Contains(a.Detail, "a re-run cannot fix") {
					t.Errorf("plan %s: detail %q does not say why", a.PlanID, a.Detail)
				}
			}
		})
	}
}

func TestBadPermanentPattern(t *testing.T) {
	s := lookertest.NewServer(t)
	since, until := window()
	env := lookerEnv(s, since, until)
	env["RERUN_PERMANENT_PATTERN"] = "channel_(not"
	r := runMain(t, context.Background(), env)
	if r.code != exitConfig || !strings.Contains(r.stderr, "RERUN_PERMANENT_PATTERN") {
		t.Errorf("exit %d, stderr %q; want 2 naming RERUN_PERMANENT_PATTERN", r.code, r.stderr)
	}
}

// TestAttemptCapAcrossRuns runs the binary every morning hour over the same
// window while every re-run of plan 1 fails again: it is re-run until
// RERUN_MAX_ATTEMPTS re-runs failed, then left to a person.
func TestAttemptCapAcrossRuns(t *testing.T) {
	t.Parallel()
	since, until := window()
	for _, tt := range []struct {
		maxAttempts string
		wantReruns  int
	}{{"", 2}, {"1", 1}, {"3", 3}} {
		t.Run("RERUN_MAX_ATTEMPTS="+tt.maxAttempts, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			s.AddPlan(lookertest.Plan{ID: "1", OwnerEmail: "ana@example.com"})
			s.AddFailure("1", since.Add(time.Hour), "Slack API error: ratelimited")
			s.AddFailure("2", since.Add(time.Hour), "boom") // re-run once, delivered
			s.RunOnceOutcome("1", lookertest.Outcome{Status: "failure", Detail: "Slack API error: ratelimited"})
			env := lookerEnv(s, since, until)
			if tt.maxAttempts != "" {
				env["RERUN_MAX_ATTEMPTS"] = tt.maxAttempts
			}
			var codes []int
			var last rerun.Summary
			for range 5 {
				r := runWith(t, context.Background(), s, env, 0)
				codes = append(codes, r.code)
				last = r.summary(t)
			}
			if diff := cmp.Diff(map[string]int{"1": tt.wantReruns, "2": 1}, s.Reruns()); diff != "" {
				t.Errorf("deliveries after five runs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"1": "attempts_exhausted (ana@example.com)"}, attention(last)); diff != "" {
				t.Errorf("needs_person in the last run (-want +got):\n%s", diff)
			}
			if codes[len(codes)-1] != exitPersonNeeded {
				t.Errorf("exit codes %v: the last run must exit 1, a person is needed", codes)
			}
		})
	}
}
