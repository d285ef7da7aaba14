package rerun

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/looker-rerun/looker-rerun/looker"
)

// This file sends the re-runs: one run_once per plan, and after a lost answer
// a look in System Activity before anything is sent again.

// maxUnreachable is how many plans in a row may fail because Looker could not
// be reached (after the transport's retries) before the run stops starting
// new re-runs: with Looker down, trying the other thousand plans would only
// run into the task's timeout.
const maxUnreachable = 3

// sender re-runs plans and records each result in the summary.
type sender struct {
	lk   Looker
	sa   *activity
	opts Options
	log  zerolog.Logger

	// known holds the run-once copies that existed before this run re-ran
	// anything: after a lost answer, only a copy not among them is one
	// that this run's call made.
	known map[string]bool

	// unreachable counts the plans in a row that Looker could not be asked
	// to re-run at all; giveUp stops starting more.
	unreachable atomic.Int32
	giveUp      context.CancelCauseFunc

	mu  sync.Mutex
	sum *Summary
}

func newSender(lk Looker, sa *activity, opts Options, sum *Summary, copies []job) *sender {
	known := make(map[string]bool, len(copies))
	for _, c := range copies {
		known[c.PlanID] = true
	}
	return &sender{lk: lk, sa: sa, opts: opts, log: opts.Log, known: known, sum: sum}
}

// sendAll re-runs the plans with bounded concurrency, one call at a time
// per plan. It returns why it stopped early when Looker became unreachable.
func (s *sender) sendAll(ctx context.Context, plans []*plan) error {
	// Calls in flight outlive ctx by the grace period, so a stop does not cut
	// a run_once whose outcome would then be unknown.
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(s.opts.Grace, cancel) })
	defer stop()
	// Starting stops too when Looker turns out to be unreachable.
	ctx, s.giveUp = context.WithCancelCause(ctx)
	defer s.giveUp(nil)

	var g errgroup.Group
	g.SetLimit(s.opts.Concurrency)
	for _, p := range plans {
		if ctx.Err() != nil {
			s.notAttempted(p)
			continue
		}
		g.Go(func() error {
			s.send(ctx, callCtx, p)
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
func (s *sender) send(ctx, callCtx context.Context, p *plan) {
	log := s.log.With().Str("plan_id", p.ID).Str("name", p.Name).Logger()
	if s.opts.DryRun {
		log.Info().Time("last_failure", p.LastFailure).Int("failures", p.Failures).Msg("would re-run (dry run)")
		s.done(Rerun{PlanID: p.ID, Name: p.Name, Failures: p.Failures, LastFailure: p.LastFailure})
		return
	}
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			s.notAttempted(p)
			return
		}
		if err := s.opts.Pacer.Wait(ctx); err != nil {
			s.notAttempted(p)
			return
		}
		np, err := s.lk.RunOnce(callCtx, p.ID)
		s.noteReachability(err)
		if err == nil {
			log.Info().Str("new_plan_id", np.ID).Int("attempt", attempt).Msg("re-run")
			s.done(Rerun{PlanID: p.ID, Name: p.Name, NewPlanID: np.ID, Failures: p.Failures, LastFailure: p.LastFailure})
			return
		}
		if looker.NotActed(err) {
			s.fail(log, p, err, "")
			return
		}
		// Looker may have made the copy before the answer was lost: look for
		// it before sending again, so the report goes out once at most.
		log.Warn().Err(err).Int("attempt", attempt).Msg("run_once outcome unknown: checking System Activity for its copy")
		c, found, cerr := s.findCopy(callCtx, p)
		switch {
		case cerr != nil:
			s.fail(log, p, err, fmt.Sprintf("outcome unknown and System Activity could not be checked (%v): not sent again, to avoid a second delivery; check the plan's run-once copies", cerr))
			return
		case found:
			log.Info().Str("new_plan_id", c.PlanID).Msg("re-run (confirmed in System Activity after a lost answer)")
			s.done(Rerun{PlanID: p.ID, Name: p.Name, NewPlanID: c.PlanID, Failures: p.Failures, LastFailure: p.LastFailure,
				Note: "answer lost (" + err.Error() + "); copy found in System Activity"})
			return
		case attempt >= s.opts.MaxSends:
			s.fail(log, p, err, fmt.Sprintf("gave up after %d attempts; System Activity shows no copy", attempt))
			return
		}
	}
}

// noteReachability counts the run_once calls in a row that failed because
// Looker was out of reach, and stops the run from starting more after
// maxUnreachable of them.
func (s *sender) noteReachability(err error) {
	if !looker.Unreachable(err) {
		s.unreachable.Store(0)
		return
	}
	if n := s.unreachable.Add(1); n >= maxUnreachable {
		s.giveUp(fmt.Errorf("could not reach Looker for %d re-runs in a row (last: %w); the other plans were left alone", n, err))
	}
}

// findCopy looks for a run-once copy of p made since its latest failure that
// did not exist when the run started, in any state: after a lost answer even
// a failed copy means Looker acted. (An older failed copy, the reason for
// this re-run, is not one.)
func (s *sender) findCopy(ctx context.Context, p *plan) (job, bool, error) {
	copies, err := s.sa.copies(ctx, p.LastFailure)
	if err != nil {
		return job{}, false, err
	}
	for _, c := range copies {
		if isCopyOf(c, p) && !s.known[c.PlanID] {
			return c, true, nil
		}
	}
	return job{}, false, nil
}

func (s *sender) done(rr Rerun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.Rerun = append(s.sum.Rerun, rr)
}

func (s *sender) notAttempted(p *plan) {
	s.log.Warn().Str("plan_id", p.ID).Str("name", p.Name).Msg("not attempted: the run was stopped")
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
