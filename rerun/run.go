// Package rerun decides which failed Looker deliveries to re-run and re-runs
// each exactly once, with System Activity as the ledger of what was already
// done. It keeps no state of its own.
//
// It knows the rules, not HTTP: whether a failed call left Looker unchanged
// is the looker package's answer (looker.NotActed). It never reads the
// environment, exits, or logs anywhere but the logger it is given.
//
// A run reads as the README's "What gets re-run": list the failures
// (activity.go), decide for each plan (decide.go), send the re-runs
// (send.go), and optionally wait for their deliveries (await.go).
package rerun

import (
	"context"
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
	ScheduledPlan(ctx context.Context, planID string, fields ...string) (looker.ScheduledPlan, error)
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
	// Concurrency is how many plans are re-run at once, and how many System
	// Activity queries of one kind run at once (at least 1).
	Concurrency int
	// Pacer spaces the run_once calls; nil is no cap. Tell it of the 429s
	// the transport sees (Pacer.Throttled) so they slow it down.
	Pacer *Pacer
	// PageSize is the row limit asked of each System Activity query
	// (Looker's default cap is 5,000).
	PageSize int
	// Grace is how long run_once calls in flight may go on after ctx ends.
	Grace time.Duration
	// MaxSends bounds how often one plan's run_once is sent in this run
	// when Looker's answer is lost and System Activity shows no copy (at
	// least 1).
	MaxSends int
	// MaxFailedReruns is how many failed re-runs of one failure are enough:
	// a failure with that many is reported as needing a person, not re-run
	// again. 0 is no cap.
	MaxFailedReruns int
	// Permanent tells the failures a re-run cannot fix; they are reported as
	// needing a person, unless RetryPermanent. nil finds none.
	Permanent      *Classifier
	RetryPermanent bool
	// Wait is how long to wait for the re-runs' deliveries to finish,
	// polling System Activity; 0 does not wait.
	Wait time.Duration
	// Confirm is how long after a run_once answer System Activity is
	// searched for its copy: after a lost answer before sending again, and
	// before the run ends for every copy it made. It covers the request
	// timeout and System Activity's lag.
	Confirm time.Duration
	// PollMin is the first interval between the polls of System Activity,
	// for a lost answer's copy and for the copies and deliveries the run
	// waits for; it doubles up to PollMax.
	PollMin, PollMax time.Duration
	// Location is the time zone System Activity answers in (nil: UTC). The
	// run checks it before reading anything by time.
	Location *time.Location
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
	if o.MaxSends < 1 {
		o.MaxSends = 3
	}
	if o.PollMin <= 0 {
		o.PollMin = time.Second
	}
	if o.PollMax < o.PollMin {
		o.PollMax = max(o.PollMin, time.Minute)
	}
	if o.Confirm <= 0 {
		o.Confirm = 2 * time.Minute
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Run finds the plans whose delivery failed in the window, re-runs each that
// needs it once, and reports what it did. The summary is never nil. The error
// is not nil when the failures could not be listed (nothing was re-run); a
// failed re-run is reported in the summary, not as an error. When ctx ends,
// no new re-run starts, the calls in flight get opts.Grace to finish, and the
// plans left are listed as not attempted.
func Run(ctx context.Context, lk Looker, opts Options) (*Summary, error) {
	opts.defaults()
	sum := newSummary(opts)
	sa := newActivity(lk, opts)

	// 1. List the failed plans, their deliveries and the run-once copies,
	// once the time zone System Activity answers in is proven.
	plans, copies, err := list(ctx, sa, opts, sum)
	if err != nil {
		sum.Error = err.Error()
		return sum, err
	}

	// 2. Decide for each plan: re-run, skip, leave to a person, or wait for
	// its running delivery.
	l := newLedger(copies)
	s := newSender(lk, sa, opts, sum, l)
	rl := s.rules()
	rl.look = opts.LookID != ""
	var (
		todo    []*plan
		running []decision
	)
	for _, d := range decideAll(plans, copies, rl, l) {
		p := d.plan
		switch {
		case d.ignore:
		case d.wait && opts.Wait > 0 && !opts.DryRun:
			running = append(running, d)
		case d.wait:
			opts.Log.Warn().Str("plan_id", p.ID).Str("name", p.Name).Time("started", p.Latest.Created).
				Msg("a delivery that started in the window is still running: if it fails, no run re-runs it unless RERUN_WAIT waits for it")
			sum.InProgress = append(sum.InProgress, Progress{PlanID: p.ID, Name: p.Name, Started: p.Latest.Created, Detail: d.detail})
		case d.reason == "":
			todo = append(todo, p)
		case d.person:
			s.attention(Attention{PlanID: p.ID, Name: p.Name, Owner: p.OwnerEmail, Reason: d.reason, Detail: d.detail})
		default:
			sk := Skip{PlanID: p.ID, Name: p.Name, Reason: d.reason, Detail: d.detail, NewPlanID: d.copy.PlanID}
			if d.copy.PlanID != "" && d.copy.Status == "" && opts.Wait > 0 && !opts.DryRun {
				sk.Outcome = OutcomeRunning // an earlier run's copy: waited for as this run's own
			}
			s.skip(sk)
		}
	}

	// 3. Re-run, each plan once. Calls in flight, and the look for the copy
	// of an answer lost, outlive a stop by the grace period.
	callCtx, cancel := graceful(ctx, opts.Grace)
	defer cancel()
	gaveUp := s.sendAll(ctx, callCtx, todo)

	// 4. Wait until System Activity shows every copy made, and with
	// RERUN_WAIT, for the deliveries.
	if !opts.DryRun {
		waitCtx := ctx
		if gaveUp != nil {
			waitCtx = canceled()
		}
		s.watch(waitCtx, callCtx, running)
	}
	switch {
	case ctx.Err() != nil:
		sum.Error = "stopped before the end: " + context.Cause(ctx).Error()
	case gaveUp != nil:
		sum.Error = "stopped before the end: " + gaveUp.Error()
	}
	sum.sort()
	return sum, nil
}

// canceled returns a context that has ended.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// list proves the time zone, then lists the failed plans (and those whose
// delivery is running), their deliveries since the window began, and the
// run-once copies made since the earliest failure; it counts the failed
// jobs and plans into sum.
func list(ctx context.Context, sa *activity, opts Options, sum *Summary) ([]*plan, []job, error) {
	var (
		ids    []string
		failed []job
		err    error
	)
	if opts.LookID != "" {
		if ids, sum.FailedJobs, err = sa.lookFailures(ctx, opts.LookID); err != nil {
			return nil, nil, err
		}
	}
	// Nothing is read by time before the zone is proven.
	if any, err := sa.proveZone(ctx); err != nil {
		return nil, nil, err
	} else if !any {
		opts.Log.Info().Msg("System Activity lists no scheduled plan: nothing can have failed")
		return nil, nil, nil
	}
	if opts.LookID == "" {
		var running []job
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { failed, err = sa.failures(gctx, opts.Since, opts.Until); return err })
		g.Go(func() (err error) { running, err = sa.running(gctx, opts.Since, opts.Until); return err })
		if err := g.Wait(); err != nil {
			return nil, nil, err
		}
		// Count jobs, not rows: split pages may meet on a boundary row.
		seenPlan, seenJob := map[string]bool{}, map[string]bool{}
		for _, j := range failed {
			if !seenJob[j.PlanID+"/"+j.JobID] {
				seenJob[j.PlanID+"/"+j.JobID] = true
				sum.FailedJobs++
			}
			if !seenPlan[j.PlanID] {
				seenPlan[j.PlanID] = true
				ids = append(ids, j.PlanID)
			}
		}
		sum.FailedPlans = len(ids)
		// Plans whose delivery is running may yet fail: their history is
		// read too.
		for _, j := range running {
			if !seenPlan[j.PlanID] {
				seenPlan[j.PlanID] = true
				ids = append(ids, j.PlanID)
			}
		}
	}
	if opts.LookID != "" {
		sum.FailedPlans = len(ids)
	}
	opts.Log.Info().Str("source", sum.Source).Int("failed_jobs", sum.FailedJobs).Int("failed_plans", sum.FailedPlans).
		Int("running", len(ids)-sum.FailedPlans).Msg("listed failed deliveries")
	if len(ids) == 0 {
		return nil, nil, nil
	}
	hist, err := sa.history(ctx, ids, opts.Since)
	if err != nil {
		return nil, nil, err
	}
	plans := gather(ids, opts.Since, opts.Until, failed, hist)
	var earliest time.Time
	for _, p := range plans {
		if p.Failures > 0 && (earliest.IsZero() || p.LastFailure.Before(earliest)) {
			earliest = p.LastFailure
		}
	}
	if earliest.IsZero() {
		return plans, nil, nil
	}
	copies, err := sa.copies(ctx, earliest)
	if err != nil {
		return nil, nil, err
	}
	return plans, copies, nil
}
