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

// TestAnAirflowRetryAfterARecipientWasAddedSendsNothing plays, through the
// binary, an Airflow retry of a window (the pod was evicted after the
// re-runs, say) after the plan's owner added a recipient: the retry must not
// deliver the report to the old recipients a second time; the edit after
// the copy hands the plan to a person instead.
func TestAnAirflowRetryAfterARecipientWasAddedSendsNothing(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	since, until := window()
	s.AddPlan(lookertest.Plan{ID: "1", Name: "Daily revenue", UserID: "5", ContentTypeID: "dashboard::7",
		Dests: []lookertest.Destination{{Address: "#finance"}}})
	s.AddFailure("1", since.Add(time.Hour), "Slack API error: ratelimited")
	env := lookerEnv(s, since, until)
	// Both runs on the stand-in's clock: the retry starts where the first
	// run left it.
	first := runConfig(t, context.Background(), s, env)
	s.EditPlan("1", func(p *lookertest.Plan) {
		p.Dests = append(p.Dests, lookertest.Destination{Address: "cfo@example.com"})
	})
	retry := runConfig(t, context.Background(), s, env)
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s\nexit codes %d, %d; the retry's summary: %s", diff, first.code, retry.code, lastLines(strings.TrimSpace(retry.stdout), 1))
	}
	sum := retry.summary(t)
	if first.code != exitOK || retry.code != exitPersonNeeded || len(sum.NeedsPerson) != 1 || sum.NeedsPerson[0].Reason != rerun.ReasonUnsureCopy {
		t.Errorf("exit codes %d, %d; the retry's needs_person %+v: want 0, then 1 with plan 1 %s", first.code, retry.code, sum.NeedsPerson, rerun.ReasonUnsureCopy)
	}
}
