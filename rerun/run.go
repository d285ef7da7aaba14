// Package rerun decides which failed Looker deliveries to re-run and re-runs
// each exactly once, with System Activity as the ledger of what was already
// done.
package rerun

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/looker-rerun/looker-rerun/looker"
)

// Looker is the part of *looker.Client that Run uses.
type Looker interface {
	RunLook(ctx context.Context, lookID string, limit int) ([]looker.Row, error)
	RunInlineQuery(ctx context.Context, q looker.Query, fn func(looker.Row) error) error
	RunOnce(ctx context.Context, planID string) (looker.ScheduledPlan, error)
}

// Options are the settings of one run.
type Options struct {
	// Since and Until bound the window [Since, Until) in which the failed
	// deliveries started.
	Since, Until time.Time
	// LookID, when set, takes the failed plans from this saved Look instead
	// of querying System Activity.
	LookID string
	// DryRun decides and reports everything and re-runs nothing.
	DryRun bool
	// Concurrency is how many plans are re-run at once (at least 1).
	Concurrency int
	// Pacer spaces the run_once calls; nil is no cap. Share it with the
	// transport's response hook so 429s slow it down (see Pacer.Throttled).
	Pacer *Pacer
	// PageSize is the row limit asked of each System Activity query
	// (Looker's default cap is 5,000).
	PageSize int
	// Grace is how long run_once calls in flight may go on after ctx ends.
	Grace time.Duration
	// SendAttempts bounds how often one plan's run_once is sent when
	// Looker's answer is lost and System Activity shows no copy (at least 1).
	SendAttempts int
	// MaxAttempts is how many failed re-runs of one failure are enough: a
	// failure with that many is reported as needing a person, not re-run
	// again. 0 is no cap.
	MaxAttempts int
	// Permanent tells the failures a re-run cannot fix; they are reported as
	// needing a person, unless RetryPermanent. nil finds none.
	Permanent      *Classifier
	RetryPermanent bool
	// Wait is how long to wait for the re-runs' deliveries to finish,
	// polling System Activity; 0 does not wait.
	Wait time.Duration
	// PollMin and PollMax bound the interval between polls, which doubles
	// from PollMin.
	PollMin, PollMax time.Duration
	// Now reads the clock; time.Now when nil.
	Now func() time.Time
	// Log receives the run's events.
	Log zerolog.Logger
}

func (o *Options) defaults() {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.PageSize < 1 {
		o.PageSize = 5000
	}
	if o.SendAttempts < 1 {
		o.SendAttempts = 3
	}
	if o.PollMin <= 0 {
		o.PollMin = 2 * time.Second
	}
	if o.PollMax < o.PollMin {
		o.PollMax = max(o.PollMin, time.Minute)
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

type runner struct {
	lk   Looker
	opts Options
	log  zerolog.Logger

	// unreachable counts the plans in a row that Looker could not be asked
	// to re-run at all; giveUp stops starting more.
	unreachable atomic.Int32
	giveUp      context.CancelCauseFunc

	// known holds the run-once copies that existed before this run re-ran
	// anything: after a lost answer, only a copy not among them is one
	// that this run's call made. Written before the workers start.
	known map[string]bool

	mu  sync.Mutex
	sum *Summary
}

// Run finds the plans whose delivery failed in the window, re-runs each that
// needs it once, and reports what it did. The summary is never nil. The error
// is not nil when the failures could not be listed (nothing was re-run); a
// failed re-run is reported in the summary, not as an error. When ctx ends,
// no new re-run starts, the calls in flight get opts.Grace to finish, and the
// plans left are listed as not attempted.
func Run(ctx context.Context, lk Looker, opts Options) (*Summary, error) {
	opts.defaults()
	r := &runner{lk: lk, opts: opts, log: opts.Log, sum: newSummary(opts)}
	plans, copies, err := r.collect(ctx)
	if err != nil {
		r.sum.Error = err.Error()
		return r.sum, err
	}
	rl := rules{maxAttempts: opts.MaxAttempts, permanent: opts.Permanent, retryPermanent: opts.RetryPermanent}
	var todo []*plan
	for _, p := range plans {
		d := decide(p, copies, rl)
		switch {
		case d.reason == "":
			todo = append(todo, p)
		case d.person:
			r.log.Warn().Str("plan_id", p.ID).Str("name", p.Name).Str("owner", p.OwnerEmail).Str("reason", d.reason).Str("detail", d.detail).Msg("needs a person")
			r.sum.NeedsPerson = append(r.sum.NeedsPerson, Attention{PlanID: p.ID, Name: p.Name, Owner: p.OwnerEmail, Reason: d.reason, Detail: d.detail})
		default:
			r.log.Info().Str("plan_id", p.ID).Str("name", p.Name).Str("reason", d.reason).Str("detail", d.detail).Msg("skipped")
			r.sum.Skipped = append(r.sum.Skipped, Skip{PlanID: p.ID, Name: p.Name, Reason: d.reason, Detail: d.detail})
		}
	}
	gaveUp := r.rerunAll(ctx, todo)
	if opts.Wait > 0 && !opts.DryRun && ctx.Err() == nil {
		r.await(ctx)
	}
	switch {
	case ctx.Err() != nil:
		r.sum.Error = "stopped before the end: " + context.Cause(ctx).Error()
	case gaveUp != nil:
		r.sum.Error = "stopped before the end: " + gaveUp.Error()
	}
	r.sort()
	return r.sum, nil
}

// collect lists the failed plans, their deliveries and the run-once copies.
func (r *runner) collect(ctx context.Context) ([]*plan, []job, error) {
	var (
		ids    []string
		failed []job
		err    error
	)
	if r.opts.LookID != "" {
		if ids, r.sum.FailedJobs, err = r.lookFailures(ctx); err != nil {
			return nil, nil, err
		}
	} else {
		if failed, err = r.failures(ctx); err != nil {
			return nil, nil, err
		}
		// Count jobs, not rows: split pages may meet on a boundary row.
		seenPlan, seenJob := map[string]bool{}, map[string]bool{}
		for _, j := range failed {
			if !seenJob[j.PlanID+"/"+j.JobID] {
				seenJob[j.PlanID+"/"+j.JobID] = true
				r.sum.FailedJobs++
			}
			if !seenPlan[j.PlanID] {
				seenPlan[j.PlanID] = true
				ids = append(ids, j.PlanID)
			}
		}
	}
	r.sum.FailedPlans = len(ids)
	r.log.Info().Str("source", r.sum.Source).Int("failed_jobs", r.sum.FailedJobs).Int("failed_plans", len(ids)).Msg("listed failed deliveries")
	if len(ids) == 0 {
		return nil, nil, nil
	}
	hist, err := r.history(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	plans := gather(ids, r.opts.Since, r.opts.Until, failed, hist)
	earliest := time.Time{}
	for _, p := range plans {
		if p.Failures > 0 && (earliest.IsZero() || p.LastFailure.Before(earliest)) {
			earliest = p.LastFailure
		}
	}
	if earliest.IsZero() {
		return plans, nil, nil
	}
	copies, err := r.copies(ctx, earliest)
	if err != nil {
		return nil, nil, err
	}
	r.known = make(map[string]bool, len(copies))
	for _, c := range copies {
		r.known[c.PlanID] = true
	}
	return plans, copies, nil
}

// maxUnreachable is how many plans in a row may fail because Looker could not
// be reached (after the transport's retries) before the run stops starting
// new re-runs: with Looker down, trying the other thousand plans would only
// run into the task's timeout.
const maxUnreachable = 3

// rerunAll re-runs the plans with bounded concurrency, one call at a time
// per plan. It returns why it stopped early when Looker became unreachable.
func (r *runner) rerunAll(ctx context.Context, plans []*plan) error {
	// Calls in flight outlive ctx by the grace period, so a stop does not cut
	// a run_once whose outcome would then be unknown.
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(r.opts.Grace, cancel) })
	defer stop()
	// Starting stops too when Looker turns out to be unreachable.
	ctx, r.giveUp = context.WithCancelCause(ctx)
	defer r.giveUp(nil)

	var g errgroup.Group
	g.SetLimit(r.opts.Concurrency)
	for _, p := range plans {
		if ctx.Err() != nil {
			r.notAttempted(p)
			continue
		}
		g.Go(func() error {
			r.rerun(ctx, callCtx, p)
			return nil
		})
	}
	_ = g.Wait()
	if cause := context.Cause(ctx); ctx.Err() != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

func (r *runner) notAttempted(p *plan) {
	r.log.Warn().Str("plan_id", p.ID).Str("name", p.Name).Msg("not attempted: the run was stopped")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.NotAttempted = append(r.sum.NotAttempted, p.ID)
}

// rerun re-runs one plan. ctx gates starting; callCtx carries the calls.
func (r *runner) rerun(ctx, callCtx context.Context, p *plan) {
	log := r.log.With().Str("plan_id", p.ID).Str("name", p.Name).Logger()
	if r.opts.DryRun {
		log.Info().Time("last_failure", p.LastFailure).Int("failures", p.Failures).Msg("would re-run (dry run)")
		r.done(Rerun{PlanID: p.ID, Name: p.Name, Failures: p.Failures, LastFailure: p.LastFailure})
		return
	}
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			r.notAttempted(p)
			return
		}
		if err := r.opts.Pacer.Wait(ctx); err != nil {
			r.notAttempted(p)
			return
		}
		np, err := r.lk.RunOnce(callCtx, p.ID)
		r.noteReachability(err)
		if err == nil {
			log.Info().Str("new_plan_id", np.ID).Int("attempt", attempt).Msg("re-run")
			r.done(Rerun{PlanID: p.ID, Name: p.Name, NewPlanID: np.ID, Failures: p.Failures, LastFailure: p.LastFailure})
			return
		}
		if NotActed(err) {
			r.fail(log, p, err, "")
			return
		}
		// Looker may have made the copy before the answer was lost: look for
		// it before sending again, so the report goes out once at most.
		log.Warn().Err(err).Int("attempt", attempt).Msg("run_once outcome unknown: checking System Activity for its copy")
		c, found, cerr := r.findCopy(callCtx, p)
		switch {
		case cerr != nil:
			r.fail(log, p, err, fmt.Sprintf("outcome unknown and System Activity could not be checked (%v): not sent again, to avoid a second delivery; check the plan's run-once copies", cerr))
			return
		case found:
			log.Info().Str("new_plan_id", c.PlanID).Msg("re-run (confirmed in System Activity after a lost answer)")
			r.done(Rerun{PlanID: p.ID, Name: p.Name, NewPlanID: c.PlanID, Failures: p.Failures, LastFailure: p.LastFailure,
				Note: "answer lost (" + err.Error() + "); copy found in System Activity"})
			return
		case attempt >= r.opts.SendAttempts:
			r.fail(log, p, err, fmt.Sprintf("gave up after %d attempts; System Activity shows no copy", attempt))
			return
		}
	}
}

// noteReachability counts the run_once calls in a row that failed because
// Looker was out of reach (no connection, or 429/503 after every retry), and
// stops the run from starting more after maxUnreachable of them.
func (r *runner) noteReachability(err error) {
	var lerr *looker.Error
	down := err != nil && NotActed(err) &&
		(!errors.As(err, &lerr) || lerr.StatusCode == http.StatusServiceUnavailable || lerr.StatusCode == http.StatusTooManyRequests)
	if !down {
		r.unreachable.Store(0)
		return
	}
	if n := r.unreachable.Add(1); n >= maxUnreachable {
		r.giveUp(fmt.Errorf("could not reach Looker for %d re-runs in a row (last: %w); the other plans were left alone", n, err))
	}
}

// findCopy looks for a run-once copy of p made since its latest failure that
// did not exist when the run started, in any state: after a lost answer even
// a failed copy means Looker acted. (An older failed copy, the reason for
// this re-run, is not one.)
func (r *runner) findCopy(ctx context.Context, p *plan) (job, bool, error) {
	copies, err := r.copies(ctx, p.LastFailure)
	if err != nil {
		return job{}, false, err
	}
	for _, c := range copies {
		if isCopyOf(c, p) && !r.known[c.PlanID] {
			return c, true, nil
		}
	}
	return job{}, false, nil
}

func (r *runner) done(rr Rerun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Rerun = append(r.sum.Rerun, rr)
}

func (r *runner) fail(log zerolog.Logger, p *plan, err error, note string) {
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
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Failed = append(r.sum.Failed, f)
}

func (r *runner) sort() {
	slices.SortFunc(r.sum.Rerun, func(a, b Rerun) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(r.sum.Skipped, func(a, b Skip) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(r.sum.Failed, func(a, b Failure) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(r.sum.NotAttempted, compareIDs)
	slices.SortFunc(r.sum.NeedsPerson, func(a, b Attention) int { return compareIDs(a.PlanID, b.PlanID) })
}
