package rerun_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// minutePerRunOnce is a Looker whose run_once takes a minute of its clock
// to answer (Looker acts as the call arrives), so a deadline falls between
// two of them.
type minutePerRunOnce struct {
	rerun.Looker
	clock *lookertest.Clock
}

func (l minutePerRunOnce) RunOnce(ctx context.Context, planID string) (looker.ScheduledPlan, error) {
	defer l.clock.Advance(time.Minute)
	return l.Looker.RunOnce(ctx, planID)
}

// TestNoReRunStartsAfterStartBy: five plans, one run_once a minute, and a
// deadline two and a half minutes in. The three sent before it are re-run
// once and confirmed; the other two are not attempted, and the run says it
// ran out of time. A lost answer in flight at the deadline is looked for as
// usual but never sent again: its plan is re-run (its copy found) or failed,
// never listed as not attempted.
func TestNoReRunStartsAfterStartBy(t *testing.T) {
	t.Parallel()
	m := newMorning()
	for _, tt := range []struct {
		name  string
		fault *lookertest.Fault // on plan 3, sent last before the deadline
		// wantReruns and wantFailed are the plans re-run and failed.
		wantReruns map[string]int
		wantFailed []string
	}{
		{"every answer arrives", nil, map[string]int{"1": 1, "2": 1, "3": 1}, nil},
		{"plan 3's answer lost after Looker acted: its copy is found",
			&lookertest.Fault{Status: 502, AfterAction: true}, map[string]int{"1": 1, "2": 1, "3": 1}, nil},
		{"plan 3's answer lost before Looker acted: not sent again",
			&lookertest.Fault{Status: 502}, map[string]int{"1": 1, "2": 1}, []string{"3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			for _, id := range []string{"1", "2", "3", "4", "5"} {
				s.AddFailure(id, m.at(1), "Slack API error: ratelimited")
			}
			if tt.fault != nil {
				f := *tt.fault
				f.Op, f.PlanID = lookertest.OpRunOnce, "3"
				s.Inject(f)
			}
			opts := onClock(s, m.opts())
			opts.Concurrency = 1
			opts.StartBy = epoch.Add(150 * time.Second)
			sum, err := rerun.Run(context.Background(), minutePerRunOnce{newClient(t, s), s.Clock()}, opts)
			if !errors.Is(err, rerun.ErrOutOfTime) {
				t.Fatalf("Run error %v, want one wrapping ErrOutOfTime", err)
			}
			if diff := cmp.Diff(tt.wantReruns, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"4", "5"}, sum.NotAttempted); diff != "" {
				t.Errorf("not attempted (-want +got):\n%s", diff)
			}
			var failed []string
			for _, f := range sum.Failed {
				failed = append(failed, f.PlanID)
				if !strings.Contains(f.Error, "not sent again: out of time") {
					t.Errorf("failed %+v, want it to say it was not sent again for the deadline", f)
				}
			}
			if diff := cmp.Diff(tt.wantFailed, failed); diff != "" {
				t.Errorf("failed (-want +got):\n%s", diff)
			}
			for _, r := range sum.Rerun {
				if r.Outcome != "" {
					t.Errorf("re-run %+v: its copy was not confirmed", r)
				}
			}
			if sum.Error != "out of time: 2 plans not attempted" || err.Error() != sum.Error || sum.OK() {
				t.Errorf("summary error %q, Run error %v, OK %v", sum.Error, err, sum.OK())
			}
		})
	}

	t.Run("no deadline reached: no error", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.AddFailure("1", m.at(1), "boom")
		opts := onClock(s, m.opts())
		opts.StartBy = epoch.Add(time.Hour)
		sum, err := rerun.Run(context.Background(), newClient(t, s), opts)
		if err != nil || !sum.OK() || len(s.Reruns()) != 1 {
			t.Errorf("Run error %v, OK %v, deliveries %v", err, sum.OK(), s.Reruns())
		}
	})
}
