package rerun

import (
	"context"
	"slices"
	"time"
)

// This file decides again for a plan whose delivery, running when the run
// began, failed while the run waited for it: the rules apply as to any
// failure, with the copies made since.

// finishDelivery decides again for a plan whose delivery, running when the
// run began, has now finished: delivered, nothing to do; failed, the rules
// apply as to any failure, and a re-run is made and followed.
func (r *runner) finishDelivery(ctx, callCtx context.Context, p *plan, j job) *watched {
	log := r.log.With().Str("plan_id", p.ID).Str("name", p.Name).Logger()
	started := j.Created.Format(time.RFC3339)
	if j.Status == statusSuccess {
		log.Info().Str("started", started).Msg("the delivery waited for succeeded")
		r.take(decide(p, actSkip, ReasonLaterSuccess, "delivered at "+started+" (the run waited for it)"))
		return nil
	}
	log.Warn().Str("started", started).Str("detail", j.Detail).Msg("the delivery waited for failed")
	q := *p
	q.addFailure(j)
	q.Latest = j
	d, ok := decideFirst(&q, r.opts.rules())
	if !ok {
		var err error
		if d, err = r.decideAgain(callCtx, &q); err != nil {
			r.fail(log, &q, err, "its delivery failed while the run waited, and System Activity could not be read to see whether someone re-ran it: not re-run")
			return nil
		}
	}
	if r.take(d) != actRerun {
		return nil
	}
	if i := r.send(ctx, callCtx, &q, "its delivery started at "+started+" failed while the run waited for it"); i >= 0 {
		w := &watched{copyID: r.sum.Rerun[i].NewPlanID, skip: -1, rerun: i}
		r.setOutcomes([]*watched{w}, OutcomeRunning, "")
		return w
	}
	return nil
}

// decideAgain applies the copies' rules to a plan whose delivery just
// failed, with the copies made since: a person may have re-sent it.
func (r *runner) decideAgain(ctx context.Context, p *plan) (decision, error) {
	copies, err := r.sa.copies(ctx, p.LastFailure)
	if err != nil {
		return decision{}, err
	}
	ids := []string{p.ID}
	var alike []job
	for _, c := range copies {
		if c.RunOnce && c.Content == p.Key.content && c.PlanID != p.ID && cmpMark(c.madeMark(), p.lastFailure) >= 0 {
			alike = append(alike, c)
			ids = append(ids, c.PlanID)
		}
	}
	b := newBooks()
	if len(alike) > 0 {
		if err := r.defs.load(ctx, ids); err != nil {
			return decision{}, err
		}
	}
	var same []job
	for _, c := range alike {
		switch v, why := r.defs.judge(p, c); v {
		case sameReport:
			same = append(same, c)
		case unsure:
			if c.covers() {
				b.doubt(p.ID, ReasonUnsureCopy, why)
			}
		}
	}
	slices.SortFunc(same, byMade)
	rl := r.opts.rules()
	b.keep([]*plan{p}, map[string]bool{p.ID: true}, same, rl, r.claims)
	return decideCopies(p, b, rl), nil
}
