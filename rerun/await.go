package rerun

import (
	"context"
	"time"
)

// await polls System Activity until the delivery of every re-run made in
// this run has finished, or opts.Wait is over, and records each outcome in
// sum. One query per poll covers every copy; the interval doubles from PollMin to
// PollMax, and the last poll lands on the deadline.
func await(ctx context.Context, sa *activity, opts Options, sum *Summary) {
	pending := map[string]int{} // copy plan id -> index in sum.Rerun
	for i, rr := range sum.Rerun {
		if rr.NewPlanID != "" {
			pending[rr.NewPlanID] = i
			sum.Rerun[i].Outcome = OutcomeRunning
		}
	}
	if len(pending) == 0 {
		return
	}
	deadline := opts.Now().Add(opts.Wait)
	interval := opts.PollMin
	opts.Log.Info().Int("re-runs", len(pending)).Dur("wait", opts.Wait).Msg("waiting for the re-runs to be delivered")
	for len(pending) > 0 {
		left := deadline.Sub(opts.Now())
		if left <= 0 {
			break
		}
		if !sleepCtx(ctx, min(interval, left)) {
			return
		}
		interval = min(interval*2, opts.PollMax)
		copies, err := sa.copies(ctx, opts.Since)
		if err != nil {
			opts.Log.Warn().Err(err).Msg("could not poll System Activity; trying again")
			continue
		}
		for _, c := range copies {
			i, ok := pending[c.PlanID]
			if !ok || !c.hasJob() || c.Status == "" {
				continue
			}
			rr := &sum.Rerun[i]
			if c.Status == statusSuccess {
				rr.Outcome = OutcomeDelivered
			} else {
				rr.Outcome, rr.OutcomeDetail = OutcomeFailedAgain, orUnknown(c.Detail)
			}
			opts.Log.Info().Str("plan_id", rr.PlanID).Str("new_plan_id", c.PlanID).Str("outcome", rr.Outcome).Str("detail", c.Detail).Msg("re-run finished")
			delete(pending, c.PlanID)
		}
	}
	for id, i := range pending {
		opts.Log.Warn().Str("plan_id", sum.Rerun[i].PlanID).Str("new_plan_id", id).Msg("re-run still running at the end of the wait")
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
