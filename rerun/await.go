package rerun

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// This file follows the run's work in System Activity until it is settled.
// Every copy this run made must show there (within RERUN_CONFIRM of its
// answer), so that a retry or a cleared task that follows sees what this run
// did. With RERUN_WAIT the run also waits for the deliveries: its re-runs,
// the copies of earlier runs still running, and the plans' own deliveries
// that were running when it began (re-run, once, if they fail).

// watched is a delivery the run waits for the outcome of.
type watched struct {
	// copyID is a run-once copy to follow (a re-run); jobID a plan's own
	// delivery (in progress). One of them is set.
	copyID, jobID string
	plan          *plan
	// skip is the index in sum.Skipped of an earlier copy's already_rerun
	// entry, rerun that in sum.Rerun of this run's re-run; -1 when none.
	// (Both lists are only appended to until the run ends.)
	skip, rerun int
	done        bool
}

// watch polls System Activity, one query per kind per poll, the interval
// doubling from PollMin to PollMax, until every copy in r.made is
// visible (or its RERUN_CONFIRM is over) and, with opts.Wait, every
// delivery waited for has finished (or the wait is over). It records each
// outcome in the summary. ctx ends the waiting for outcomes; callCtx, which
// outlives it by the grace period, the waiting for visibility.
func (r *runner) watch(ctx, callCtx context.Context) {
	r.mu.Lock()
	r.watching = true
	running := r.awaited
	r.mu.Unlock()
	var follow []*watched
	waitUntil := r.opts.Clock.Now()
	if r.opts.Wait > 0 {
		waitUntil = waitUntil.Add(r.opts.Wait)
		follow = r.toFollow(running)
	}
	if len(r.made) == 0 && len(follow) == 0 {
		return
	}
	r.log.Info().Int("copies", len(r.made)).Int("deliveries", len(follow)).Stringer("wait", r.opts.Wait).Stringer("confirm", r.opts.Confirm).
		Msg("waiting for System Activity to show the copies made and the deliveries waited for")
	// A first look at once: with little lag, that is all it takes. A
	// look shows what System Activity held when it began: the next is due
	// until one begins at the end of what it waits for.
	looked := r.opts.Clock.Now()
	follow = r.poll(ctx, callCtx, follow)
	interval := r.opts.PollMin
	for {
		if ctx.Err() != nil {
			waitUntil = time.Time{}
		}
		next, ok := r.nextPoll(follow, looked, waitUntil)
		if !ok {
			break
		}
		if !sleepCtx(callCtx, r.opts.Clock, min(interval, max(next.Sub(r.opts.Clock.Now()), 0))) {
			break
		}
		interval = min(interval*2, r.opts.PollMax)
		looked = r.opts.Clock.Now()
		follow = r.poll(ctx, callCtx, follow)
	}
	r.settle(follow)
}

// toFollow lists what RERUN_WAIT waits for besides this run's copies: the
// plans' running deliveries and the earlier copies still running.
func (r *runner) toFollow(running []decision) []*watched {
	var out []*watched
	for _, d := range running {
		out = append(out, &watched{jobID: d.plan.Latest.JobID, plan: d.plan, skip: -1, rerun: -1})
	}
	r.mu.Lock()
	for i, sk := range r.sum.Skipped {
		if sk.Outcome == OutcomeRunning {
			out = append(out, &watched{copyID: sk.NewPlanID, skip: i, rerun: -1})
		}
	}
	for i, rr := range r.sum.Rerun {
		if rr.NewPlanID != "" {
			out = append(out, &watched{copyID: rr.NewPlanID, skip: -1, rerun: i})
		}
	}
	r.mu.Unlock()
	r.setOutcomes(out, OutcomeRunning, "")
	return out
}

// nextPoll returns when the next poll is due at the latest: the nearest end
// of a copy's RERUN_CONFIRM not yet seen, or of the wait. ok is false when
// nothing is left to wait for.
func (r *runner) nextPoll(follow []*watched, now, waitUntil time.Time) (time.Time, bool) {
	var next time.Time
	r.mu.Lock()
	for _, c := range r.made {
		if end := c.answered.Add(r.opts.Confirm); !c.visible && end.After(now) && (next.IsZero() || end.Before(next)) {
			next = end
		}
	}
	r.mu.Unlock()
	for _, w := range follow {
		if !w.done && waitUntil.After(now) {
			if next.IsZero() || next.After(waitUntil) {
				next = waitUntil
			}
			break
		}
	}
	return next, !next.IsZero()
}

// poll reads the copies (and the plans' deliveries, when some are followed)
// once and records what it shows. A delivery that failed gets a re-run,
// which is then followed too.
func (r *runner) poll(ctx, callCtx context.Context, follow []*watched) []*watched {
	var want []string
	r.mu.Lock()
	for _, c := range r.made {
		want = append(want, c.id)
	}
	r.mu.Unlock()
	for _, w := range follow {
		if !w.done && w.copyID != "" {
			want = append(want, w.copyID)
		}
	}
	slices.Sort(want)
	copies, err := r.sa.copiesByID(callCtx, slices.Compact(want), r.opts.Since)
	if err != nil {
		r.log.Warn().Err(err).Msg("could not poll System Activity; trying again")
		return follow
	}
	byID := make(map[string]job, len(copies))
	for _, c := range copies {
		byID[c.PlanID] = c
	}
	// A copy shows when its job does: that is what a run that follows
	// reads to decide.
	seen := r.opts.Clock.Now()
	var lags []time.Duration
	r.mu.Lock()
	for i := range r.made {
		if c, ok := byID[r.made[i].id]; ok && c.hasJob() && !r.made[i].visible {
			r.made[i].visible = true
			lags = append(lags, seen.Sub(r.made[i].answered))
			r.log.Debug().Str("plan_id", r.made[i].planID).Str("new_plan_id", r.made[i].id).Msg("copy shows in System Activity")
		}
	}
	r.mu.Unlock()
	for _, d := range lags {
		r.sawLag(d)
	}

	var ids []string
	for _, w := range follow {
		if !w.done && w.jobID != "" {
			ids = append(ids, w.plan.ID)
		}
	}
	var jobs map[string]job
	if len(ids) > 0 {
		hist, err := r.sa.history(callCtx, ids, r.opts.Since)
		if err != nil {
			r.log.Warn().Err(err).Msg("could not poll System Activity; trying again")
		}
		jobs = make(map[string]job, len(hist))
		for _, j := range hist {
			jobs[j.JobID] = j
		}
	}
	for _, w := range follow {
		switch {
		case w.done:
		case w.copyID != "":
			if c, ok := byID[w.copyID]; ok && c.hasJob() && c.Status != "" {
				r.finishCopy(w, c)
			}
		default:
			if j, ok := jobs[w.jobID]; ok && j.Status != "" {
				w.done = true
				if nw := r.finishDelivery(ctx, callCtx, w.plan, j); nw != nil {
					follow = append(follow, nw)
				}
			}
		}
	}
	return follow
}

// finishCopy records the outcome of a followed copy.
func (r *runner) finishCopy(w *watched, c job) {
	w.done = true
	outcome, detail := OutcomeDelivered, ""
	if c.Status != statusSuccess {
		outcome, detail = OutcomeFailedAgain, orUnknown(c.Detail)
	}
	r.log.Info().Str("new_plan_id", c.PlanID).Str("outcome", outcome).Str("detail", c.Detail).Msg("re-run finished")
	r.setOutcomes([]*watched{w}, outcome, detail)
}

// settle records what never finished: copies never seen in System Activity
// (unconfirmed), deliveries still running at the end of the wait.
func (r *runner) settle(follow []*watched) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.made {
		if c.visible {
			continue
		}
		r.log.Error().Str("plan_id", c.planID).Str("new_plan_id", c.id).Stringer("confirm", r.opts.Confirm).
			Msg("the copy made did not show in System Activity: a run that follows cannot see it")
		rr := &r.sum.Rerun[c.rerun]
		rr.Outcome = OutcomeUnconfirmed
		rr.OutcomeDetail = fmt.Sprintf("copy %s did not show in System Activity within %s of run_once's answer; check it in Looker before re-sending by hand", c.id, r.opts.Confirm)
	}
	for _, w := range follow {
		if w.done {
			continue
		}
		if w.jobID != "" {
			r.log.Warn().Str("plan_id", w.plan.ID).Time("started", w.plan.Latest.Created).Msg("the delivery waited for is still running at the end of the wait")
			r.sum.InProgress = append(r.sum.InProgress, InProgress{PlanID: w.plan.ID, Name: w.plan.Name, OwnerEmail: w.plan.OwnerEmail, Content: w.plan.Key.content, Started: w.plan.Latest.Created,
				Outcome: OutcomeRunning, Detail: "still running at the end of the wait; if it fails, only the run whose window holds " +
					w.plan.Latest.Created.Format(time.RFC3339) + " re-runs it: check it in Looker"})
			continue
		}
		r.log.Warn().Str("new_plan_id", w.copyID).Msg("re-run still running at the end of the wait")
	}
}

// setOutcomes sets the outcome of followed copies in the summary.
func (r *runner) setOutcomes(ws []*watched, outcome, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range ws {
		if w.copyID == "" {
			continue
		}
		switch {
		case w.skip >= 0:
			r.sum.Skipped[w.skip].Outcome, r.sum.Skipped[w.skip].OutcomeDetail = outcome, detail
		case w.rerun >= 0 && r.sum.Rerun[w.rerun].Outcome != OutcomeUnconfirmed:
			r.sum.Rerun[w.rerun].Outcome, r.sum.Rerun[w.rerun].OutcomeDetail = outcome, detail
		}
	}
}
