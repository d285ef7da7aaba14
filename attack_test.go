package main

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// TestARefusedRunOnceIsNotRetriedOnceItMayNotStart: run_once is answered
// 429, which the transport repeats after the backoff; by then the run was
// stopped (or its start-by time passed): the call is not repeated, and the
// error says nothing was sent, so the plan is listed not attempted.
func TestARefusedRunOnceIsNotRetriedOnceItMayNotStart(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, Status: http.StatusTooManyRequests, RetryAfter: "0"})
	lk, _ := testClient(t, s, 0)
	checks := 0
	stopped := errors.New("the run was stopped")
	ctx := looker.WithStartCheck(context.Background(), func() error {
		if checks++; checks > 1 { // the stop comes after the first call left
			return stopped
		}
		return nil
	})
	_, err := lk.RunOnce(ctx, "42")
	if !errors.Is(err, looker.ErrNotSent) || !errors.Is(err, stopped) || !looker.NotActed(err) {
		t.Errorf("RunOnce = %v, want an error wrapping ErrNotSent and the check's", err)
	}
	if diff := cmp.Diff(map[string]int{}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

// TestARunOnceAnswered401IsNotSentAgainOnceItMayNotStart: the token expired,
// so run_once is answered 401 and the client logs in again before sending it
// again; by then the run was stopped: the call is not sent again.
func TestARunOnceAnswered401IsNotSentAgainOnceItMayNotStart(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		stopped bool
		want    map[string]int
	}{
		{"still running: sent again after the new login", false, map[string]int{"42": 1}},
		{"stopped during the new login: not sent again", true, map[string]int{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			s.AddPlan(lookertest.Plan{ID: "42"})
			s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, ExpireTokens: true})
			lk, _ := testClient(t, s, 0)
			checks := 0
			stopped := errors.New("the run was stopped")
			ctx := looker.WithStartCheck(context.Background(), func() error {
				if checks++; checks > 1 && tt.stopped {
					return stopped
				}
				return nil
			})
			_, err := lk.RunOnce(ctx, "42")
			if tt.stopped && (!errors.Is(err, looker.ErrNotSent) || !errors.Is(err, stopped)) {
				t.Errorf("RunOnce = %v, want an error wrapping ErrNotSent and the check's", err)
			}
			if !tt.stopped && err != nil {
				t.Errorf("RunOnce = %v, want the copy", err)
			}
			if diff := cmp.Diff(tt.want, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
		})
	}
}
