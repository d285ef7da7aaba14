package rerun

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// sender re-runs plans and records each result in the summary.
type sender struct {
	lk     Looker
	sa     *activity
	defs   *definitions
	opts   Options
	log    zerolog.Logger
	ledger *ledger

	// unreachable counts the plans in a row that Looker could not be asked
	// to re-run at all; giveUp stops starting more.
	unreachable atomic.Int32
	giveUp      context.CancelCauseFunc
	// outOfTime is set once a re-run was not started for Options.StartBy.
	outOfTime atomic.Bool

	mu  sync.Mutex
	sum *Summary
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

func newSender(lk Looker, sa *activity, defs *definitions, opts Options, sum *Summary, l *ledger) *sender {
	return &sender{lk: lk, sa: sa, defs: defs, opts: opts, log: opts.Log, ledger: l, sum: sum}
}

// sendAll re-runs the plans with bounded concurrency. Look-alike plans (one
// copyKey) are re-run one after another by one worker, so that a copy in
// System Activity is never taken as proof for one of them while another's
// call that made it is still in flight. It returns why it stopped early
// when Looker became unreachable.
func (s *sender) sendAll(ctx, callCtx context.Context, plans []*plan) error {
	// Starting stops too when Looker turns out to be unreachable.
	ctx, s.giveUp = context.WithCancelCause(ctx)
	defer s.giveUp(nil)

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
	g.SetLimit(s.opts.Concurrency)
	for _, group := range groups {
		if ctx.Err() != nil {
			for _, p := range group {
				s.notAttempted(p, "the run was stopped")
			}
			continue
		}
		g.Go(func() error {
			for _, p := range group {
				s.send(ctx, callCtx, p, "")
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
func (s *sender) send(ctx, callCtx context.Context, p *plan, note string) int {
	log := s.log.With().Str("plan_id", p.ID).Str("name", p.Name).Logger()
	rr := Rerun{PlanID: p.ID, Name: p.Name, Failures: p.Failures, LastFailure: p.LastFailure, Note: note}
	if s.opts.DryRun {
		log.Info().Time("last_failure", p.LastFailure).Int("failures", p.Failures).Msg("would re-run (dry run)")
		s.done(rr)
		return -1
	}
	var lost error // the last answer lost, when a run_once was sent
	for attempt := 1; ; attempt++ {
		why := s.mayStart(ctx)
		var (
			np  looker.ScheduledPlan
			err error
		)
		if why == "" {
			np, err = s.lk.RunOnce(callCtx, p.ID)
			if errors.Is(err, looker.ErrNotSent) {
				why = "the run was stopped" // the pace held it back past the grace
			}
		}
		if why != "" {
			if lost != nil {
				// Sent before: not acted on, as far as System Activity
				// shows, but sent.
				s.fail(log, p, lost, fmt.Sprintf("System Activity showed no copy within %s; not sent again: %s", s.opts.Confirm, why))
				return -1
			}
			s.notAttempted(p, why)
			return -1
		}
		answered := s.opts.Clock.Now()
		if err == nil || looker.NotActed(err) {
			// Answered or refused by Looker itself, or never reached it:
			// whether it is reachable is known now. An unknown outcome is
			// judged by whether System Activity can be read.
			s.noteReachability(looker.Unreachable(err), err)
		}
		if err == nil {
			if !s.ledger.claim(np.ID, p.ID) {
				log.Warn().Str("new_plan_id", np.ID).Msg("run_once answered with a copy already counted for a look-alike plan")
			}
			log.Info().Str("new_plan_id", np.ID).Int("attempt", attempt).Msg("re-run")
			rr.NewPlanID = np.ID
			return s.record(rr, madeCopy{id: np.ID, planID: p.ID, answered: answered})
		}
		if looker.NotActed(err) {
			s.fail(log, p, err, "")
			return -1
		}
		// Looker may have made the copy before the answer was lost, and
		// System Activity shows a copy only a while after: look for it
		// for RERUN_CONFIRM before sending again, so the report goes out
		// once at most.
		log.Warn().Err(err).Int("attempt", attempt).Stringer("confirm", s.opts.Confirm).Msg("run_once outcome unknown: looking for its copy in System Activity")
		c, found, cerr := s.confirm(callCtx, p, answered)
		switch {
		case cerr != nil:
			// Looker answers neither run_once nor queries: it is down.
			s.noteReachability(true, cerr)
			s.fail(log, p, err, fmt.Sprintf("outcome unknown and System Activity could not be checked (%v): not sent again, to avoid a second delivery; check the plan's run-once copies", cerr))
			return -1
		case found:
			s.noteReachability(false, nil)
			if c.hasJob() {
				s.sawLag(s.opts.Clock.Now().Sub(answered))
			}
			log.Info().Str("new_plan_id", c.PlanID).Stringer("after", s.opts.Clock.Now().Sub(answered).Round(time.Millisecond)).Msg("re-run (its copy found in System Activity after a lost answer)")
			rr.NewPlanID = c.PlanID
			rr.Note = strings.TrimPrefix(rr.Note+"; ", "; ") + "answer lost (" + err.Error() + "); copy " + c.PlanID + " found in System Activity"
			return s.record(rr, madeCopy{id: c.PlanID, planID: p.ID, answered: answered, visible: c.hasJob()})
		}
		s.noteReachability(false, nil) // System Activity answered
		lost = err
		if attempt >= s.opts.MaxSends {
			s.fail(log, p, err, fmt.Sprintf("gave up after %d attempts; System Activity showed no copy within %s of any of them", attempt, s.opts.Confirm))
			return -1
		}
		log.Warn().Int("attempt", attempt).Stringer("confirm", s.opts.Confirm).Msg("no copy in System Activity: sending again")
	}
}

// confirm looks in System Activity for a copy of p that proves its call was
// acted on: one the run had not seen when it began, that no plan has
// claimed, and that delivers what p delivers (not a person's send with other
// filters made meanwhile). It looks at once and then polls with backoff
// until opts.Confirm after the answer. An error means System Activity (or a
// definition) could not be read: then nobody knows, and nothing may be sent
// again.
func (s *sender) confirm(ctx context.Context, p *plan, answered time.Time) (job, bool, error) {
	deadline := answered.Add(s.opts.Confirm)
	interval := s.opts.PollMin
	// The copy is of the plan as it is now, which someone may have edited
	// since the run listed it: read it again.
	s.defs.forget(p.ID)
	for {
		// A look shows what System Activity held when it began.
		looked := s.opts.Clock.Now()
		copies, err := s.sa.copies(ctx, p.LastFailure)
		if err != nil {
			return job{}, false, err
		}
		fresh := s.ledger.fresh(p, copies)
		ids := []string{p.ID}
		for _, c := range fresh {
			ids = append(ids, c.PlanID)
		}
		if err := s.defs.load(ctx, ids); err != nil {
			return job{}, false, err
		}
		for _, c := range fresh {
			if v, _ := s.defs.judge(p, c); v == sameReport && s.ledger.claim(c.PlanID, p.ID) {
				return c, true, nil
			}
		}
		if !looked.Before(deadline) {
			return job{}, false, nil
		}
		left := max(deadline.Sub(s.opts.Clock.Now()), 0)
		if !sleepCtx(ctx, s.opts.Clock, min(interval, left)) {
			return job{}, false, fmt.Errorf("stopped while looking: %w", context.Cause(ctx))
		}
		interval = min(interval*2, s.opts.PollMax)
	}
}

// sawLag records how long a copy took to show in System Activity.
func (s *sender) sawLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > s.maxLag {
		s.maxLag = d
		s.sum.MaxActivityLag = d.Round(time.Millisecond).Seconds()
	}
}

// noteReachability counts the plans in a row that failed because Looker was
// out of reach, and stops the run from starting more after maxUnreachable of
// them.
func (s *sender) noteReachability(down bool, err error) {
	if !down {
		s.unreachable.Store(0)
		return
	}
	if n := s.unreachable.Add(1); n >= maxUnreachable {
		s.giveUp(fmt.Errorf("could not reach Looker for %d re-runs in a row (last: %w); the other plans were left alone", n, err))
	}
}

// record adds a re-run and the copy it made, and returns the re-run's index
// in sum.Rerun.
func (s *sender) record(rr Rerun, c madeCopy) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.Rerun = append(s.sum.Rerun, rr)
	c.rerun = len(s.sum.Rerun) - 1
	s.made = append(s.made, c)
	return c.rerun
}

func (s *sender) skip(sk Skip) {
	s.log.Info().Str("plan_id", sk.PlanID).Str("name", sk.Name).Str("reason", sk.Reason).Str("detail", sk.Detail).Msg("skipped")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.Skipped = append(s.sum.Skipped, sk)
}

func (s *sender) attention(a Attention) {
	s.log.Warn().Str("plan_id", a.PlanID).Str("name", a.Name).Str("owner", a.Owner).Str("reason", a.Reason).Str("detail", a.Detail).Msg("needs a person")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.NeedsPerson = append(s.sum.NeedsPerson, a)
}

// inProgress reports a delivery of p, started at started, still running
// when the run does not wait for it. One that started after the window is
// the next window's to examine; one that started in it is no later run's:
// a person is needed to see how it ends.
func (s *sender) inProgress(p *plan, started time.Time, detail string) {
	ip := Progress{PlanID: p.ID, Name: p.Name, Started: started, Detail: detail}
	log := s.log.Warn()
	if started.Before(s.opts.Until) {
		ip.Outcome = OutcomeRunning
		ip.Detail += ", started in the window, and RERUN_WAIT is 0: if it fails, no later run re-runs it; check it in Looker (RERUN_WAIT waits for such deliveries)"
		log = s.log.Error()
	} else {
		ip.Detail += ", started after the window: if it fails, the run of the window that holds its start re-runs the plan"
	}
	log.Str("plan_id", p.ID).Str("name", p.Name).Time("started", started).Msg("a delivery is still running and the run does not wait for it")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.InProgress = append(s.sum.InProgress, ip)
}

func (s *sender) done(rr Rerun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.Rerun = append(s.sum.Rerun, rr)
}

// mayStart says why no run_once may start now ("" when one may): the run
// was stopped, or Options.StartBy has passed.
func (s *sender) mayStart(ctx context.Context) string {
	switch {
	case ctx.Err() != nil:
		return "the run was stopped"
	case !s.opts.StartBy.IsZero() && !s.opts.Clock.Now().Before(s.opts.StartBy):
		s.outOfTime.Store(true)
		return "out of time: no re-run starts after " + s.opts.StartBy.UTC().Format(time.RFC3339)
	}
	return ""
}

func (s *sender) notAttempted(p *plan, why string) {
	s.log.Warn().Str("plan_id", p.ID).Str("name", p.Name).Str("why", why).Msg("not attempted")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.NotAttempted = append(s.sum.NotAttempted, p.ID)
}

func (s *sender) fail(log zerolog.Logger, p *plan, err error, note string) {
	f := Failure{PlanID: p.ID, Name: p.Name, Error: err.Error()}
	var lerr *looker.Error
	if errors.As(err, &lerr) {
		f.Status = lerr.StatusCode
		if lerr.StatusCode == http.StatusNotFound {
			f.Error = "the plan no longer exists (deleted since it failed?): " + f.Error
		}
	}
	if note != "" {
		f.Error += ": " + note
	}
	log.Error().Err(err).Int("status", f.Status).Str("note", note).Msg("re-run failed")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.Failed = append(s.sum.Failed, f)
}
