package rerun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/looker-rerun/looker-rerun/looker"
)

// This file sends the re-runs: one run_once per plan, and after a lost answer
// a look in System Activity, for as long as RERUN_CONFIRM, before anything is
// sent again.

// maxUnreachable is how many plans in a row may fail because Looker could not
// be reached (after the transport's retries) before the run stops starting
// new re-runs: with Looker down, trying the other thousand plans would only
// run into the task's timeout.
const maxUnreachable = 3

// runner carries out a run's decisions: it sends the re-runs, follows them
// and the deliveries awaited in System Activity, and records every outcome
// in the summary.
type runner struct {
	lk     Looker
	sa     *activity
	defs   *definitions
	opts   Options
	log    zerolog.Logger
	claims *claims

	// unreachable counts the plans in a row that Looker could not be asked
	// to re-run at all; giveUp stops starting more.
	unreachable atomic.Int32
	giveUp      context.CancelCauseFunc
	// outOfTime is set once a re-run was not started for Options.StartBy.
	outOfTime atomic.Bool

	mu  sync.Mutex
	sum *Summary
	// awaited are the running deliveries the run follows (take).
	awaited []decision
	// watching is set once the run follows its work (watch): what take
	// decides then is not followed unless watch is told.
	watching bool
	// made lists the copies this run's calls made, to see each of them in
	// System Activity before the run ends.
	made []madeCopy
	// maxLag is the longest a copy this run made took to show in System
	// Activity after run_once answered.
	maxLag time.Duration
}

// madeCopy is a copy made by this run: by a run_once that answered, or
// confirmed in System Activity after a lost answer.
type madeCopy struct {
	id, planID string
	answered   time.Time // when run_once answered (or gave up)
	visible    bool      // System Activity has shown it
	rerun      int       // its entry in sum.Rerun
}

func newRunner(lk Looker, sa *activity, defs *definitions, opts Options, sum *Summary, l *claims) *runner {
	return &runner{lk: lk, sa: sa, defs: defs, opts: opts, log: opts.Log, claims: l, sum: sum}
}

// sendAll re-runs the plans with bounded concurrency. Look-alike plans (one
// copyKey) are re-run one after another by one worker, so that a copy in
// System Activity is never taken as proof for one of them while another's
// call that made it is still in flight. It returns why it stopped early
// when Looker became unreachable.
func (r *runner) sendAll(ctx, callCtx context.Context, plans []*plan) error {
	// Starting stops too when Looker turns out to be unreachable.
	ctx, r.giveUp = context.WithCancelCause(ctx)
	defer r.giveUp(nil)

	var groups [][]*plan
	at := map[copyKey]int{}
	for _, p := range plans {
		i, ok := at[p.Key]
		if !ok {
			i = len(groups)
			at[p.Key] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], p)
	}
	var g errgroup.Group
	g.SetLimit(r.opts.Concurrency)
	for _, group := range groups {
		if ctx.Err() != nil {
			for _, p := range group {
				r.notAttempted(p, "the run was stopped")
			}
			continue
		}
		g.Go(func() error {
			for _, p := range group {
				r.send(ctx, callCtx, p, "")
			}
			return nil
		})
	}
	_ = g.Wait()
	if cause := context.Cause(ctx); ctx.Err() != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// send re-runs one plan. ctx gates starting; callCtx carries the calls.
// note, when set, says why the re-run was made. It returns the index in
// sum.Rerun of the re-run when it made (or found) a copy, else -1.
func (r *runner) send(ctx, callCtx context.Context, p *plan, note string) int {
	log := r.log.With().Str("plan_id", p.ID).Str("name", p.Name).Logger()
	rr := Resent{PlanID: p.ID, Name: p.Name, OwnerEmail: p.OwnerEmail, Content: p.Key.content, Failures: p.Failures, LastFailure: p.LastFailure, Note: note}
	if r.opts.DryRun {
		log.Info().Time("last_failure", p.LastFailure).Int("failures", p.Failures).Msg("would re-run (dry run)")
		r.done(rr)
		return -1
	}
	var lost error // the last answer lost, when a run_once was sent
	for sends := 1; ; sends++ {
		why := r.mayStart(ctx)
		var (
			np  looker.ScheduledPlan
			err error
		)
		if why == "" {
			// The call waits its turn in the pace (a 429 pauses it) on
			// callCtx, which outlives a stop; it asks again, once its
			// turn comes, whether it may still start.
			np, err = r.lk.RunOnce(looker.WithStartCheck(callCtx, func() error { return r.startCheck(ctx) }), p.ID)
			if errors.Is(err, looker.ErrNotSent) {
				// Held back by the check, or by the pace past the grace.
				why = cmp.Or(r.mayStart(ctx), "the run was stopped")
			}
		}
		if why != "" {
			if lost != nil {
				// Sent before: not acted on, as far as System Activity
				// shows, but sent.
				r.fail(log, p, lost, fmt.Sprintf("System Activity showed no copy within %s; not sent again: %s", r.opts.Confirm, why))
				return -1
			}
			r.notAttempted(p, why)
			return -1
		}
		answered := r.opts.Clock.Now()
		if err == nil || looker.NotActed(err) {
			// Answered or refused by Looker itself, or never reached it:
			// whether it is reachable is known now. An unknown outcome is
			// judged by whether System Activity can be read.
			r.noteReachability(looker.Unreachable(err), err)
		}
		if err == nil {
			if !r.claims.claim(np.ID, p.ID) {
				log.Warn().Str("new_plan_id", np.ID).Msg("run_once answered with a copy already counted for a look-alike plan")
			}
			log.Info().Str("new_plan_id", np.ID).Int("send", sends).Msg("re-run")
			rr.NewPlanID = np.ID
			return r.record(rr, madeCopy{id: np.ID, planID: p.ID, answered: answered})
		}
		if looker.NotActed(err) {
			r.fail(log, p, err, "")
			return -1
		}
		// Looker may have made the copy before the answer was lost, and
		// System Activity shows a copy only a while after: look for it
		// for RERUN_CONFIRM before sending again, so the report goes out
		// once at most.
		log.Warn().Err(err).Int("send", sends).Stringer("confirm", r.opts.Confirm).Msg("run_once outcome unknown: looking for its copy in System Activity")
		c, found, cerr := r.confirm(callCtx, p, answered)
		switch {
		case cerr != nil:
			// Looker answers neither run_once nor queries: it is down.
			r.noteReachability(true, cerr)
			r.fail(log, p, err, fmt.Sprintf("outcome unknown and System Activity could not be checked (%v): not sent again, to avoid a second delivery; check the plan's run-once copies", cerr))
			return -1
		case found:
			r.noteReachability(false, nil)
			if c.hasJob() {
				r.sawLag(r.opts.Clock.Now().Sub(answered))
			}
			log.Info().Str("new_plan_id", c.PlanID).Stringer("after", r.opts.Clock.Now().Sub(answered).Round(time.Millisecond)).Msg("re-run (its copy found in System Activity after a lost answer)")
			rr.NewPlanID = c.PlanID
			rr.Note = strings.TrimPrefix(rr.Note+"; ", "; ") + "answer lost (" + err.Error() + "); copy " + c.PlanID + " found in System Activity"
			return r.record(rr, madeCopy{id: c.PlanID, planID: p.ID, answered: answered, visible: c.hasJob()})
		}
		r.noteReachability(false, nil) // System Activity answered
		lost = err
		if sends >= r.opts.MaxSends {
			r.fail(log, p, err, fmt.Sprintf("gave up after %d sends of run_once; System Activity showed no copy within %s of any of them", sends, r.opts.Confirm))
			return -1
		}
		log.Warn().Int("send", sends).Stringer("confirm", r.opts.Confirm).Msg("no copy in System Activity: sending again")
	}
}

// confirm looks in System Activity for a copy of p that proves its call was
// acted on: one the run had not seen when it began, that no plan has
// claimed, and that delivers what p delivers (not a person's send with other
// filters made meanwhile). It looks at once and then polls with backoff
// until opts.Confirm after the answer. An error means System Activity (or a
// definition) could not be read: then nobody knows, and nothing may be sent
// again.
func (r *runner) confirm(ctx context.Context, p *plan, answered time.Time) (job, bool, error) {
	deadline := answered.Add(r.opts.Confirm)
	interval := r.opts.PollMin
	// The copy is of the plan as it is now, which someone may have edited
	// since the run listed it: read it again.
	r.defs.forget(p.ID)
	for {
		// A look shows what System Activity held when it began.
		looked := r.opts.Clock.Now()
		copies, err := r.sa.copies(ctx, p.LastFailure)
		if err != nil {
			return job{}, false, err
		}
		fresh := r.claims.fresh(p, copies)
		ids := []string{p.ID}
		for _, c := range fresh {
			ids = append(ids, c.PlanID)
		}
		if err := r.defs.load(ctx, ids); err != nil {
			return job{}, false, err
		}
		for _, c := range fresh {
			if v, _ := r.defs.judge(p, c); v == sameReport && r.claims.claim(c.PlanID, p.ID) {
				return c, true, nil
			}
		}
		if !looked.Before(deadline) {
			return job{}, false, nil
		}
		left := max(deadline.Sub(r.opts.Clock.Now()), 0)
		if !sleepCtx(ctx, r.opts.Clock, min(interval, left)) {
			return job{}, false, fmt.Errorf("stopped while looking: %w", context.Cause(ctx))
		}
		interval = min(interval*2, r.opts.PollMax)
	}
}

// sawLag records how long a copy took to show in System Activity.
func (r *runner) sawLag(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d > r.maxLag {
		r.maxLag = d
		r.sum.MaxActivityLag = d.Round(time.Millisecond).Seconds()
	}
}

// noteReachability counts the plans in a row that failed because Looker was
// out of reach, and stops the run from starting more after maxUnreachable of
// them.
func (r *runner) noteReachability(down bool, err error) {
	if !down {
		r.unreachable.Store(0)
		return
	}
	if n := r.unreachable.Add(1); n >= maxUnreachable {
		r.giveUp(fmt.Errorf("could not reach Looker for %d re-runs in a row (last: %w); the other plans were left alone", n, err))
	}
}

// startCheck is mayStart as looker.WithStartCheck asks it.
func (r *runner) startCheck(ctx context.Context) error {
	if why := r.mayStart(ctx); why != "" {
		return errors.New(why)
	}
	return nil
}

// mayStart says why no run_once may start now ("" when one may): the run
// was stopped, or Options.StartBy has passed.
func (r *runner) mayStart(ctx context.Context) string {
	switch {
	case ctx.Err() != nil:
		return "the run was stopped"
	case !r.opts.StartBy.IsZero() && !r.opts.Clock.Now().Before(r.opts.StartBy):
		r.outOfTime.Store(true)
		return "out of time: no re-run starts after " + r.opts.StartBy.UTC().Format(time.RFC3339)
	}
	return ""
}
