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
	"errors"
	"fmt"
	"slices"
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
	// StartBy is when the last run_once may start (zero: no bound): the
	// plans left then, and a lost answer's plan that would be sent again,
	// are not re-run; those sent already are confirmed and waited for as
	// usual, so the caller sets it early enough for those to fit. Run then
	// returns an error wrapping ErrOutOfTime.
	StartBy time.Time
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
	// Clock is the time the run reads and waits on; nil is the real time.
	Clock Clock
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
	if o.Clock == nil {
		o.Clock = realClock{}
	}
}

// Run finds the plans whose delivery failed in the window, re-runs each that
// needs it once, and reports what it did. The summary is never nil. The error
// is not nil when the failures could not be listed (nothing was re-run), or,
// wrapping ErrOutOfTime, when opts.StartBy left plans not attempted (the
// summary is then complete); a failed re-run is reported in the summary, not
// as an error. When ctx ends, no new re-run starts, the calls in flight get
// opts.Grace to finish, and the plans left are listed as not attempted.
func Run(ctx context.Context, lk Looker, opts Options) (*Summary, error) {
	opts.defaults()
	sum := newSummary(opts)
	sa := newActivity(lk, opts)
	defs := newDefinitions(lk, opts.Concurrency)

	// 1. List the failed plans, their deliveries and the run-once copies,
	// once the time zone System Activity answers in is proven, and keep
	// the books on the copies.
	l, err := list(ctx, sa, defs, opts, sum)
	if err != nil {
		sum.Error = err.Error()
		return sum, err
	}

	// 2. Decide for each plan: re-run, skip, leave to a person, or wait for
	// its running delivery.
	r := newRunner(lk, sa, defs, opts, sum, l.claims)
	var todo []*plan
	for _, d := range decideAll(l.plans, l.books, opts.rules()) {
		if r.take(d) == actRerun {
			todo = append(todo, d.plan)
		}
	}

	// 3. Re-run, each plan once. Calls in flight, and the look for the copy
	// of an answer lost, outlive a stop by the grace period.
	callCtx, cancel := graceful(ctx, opts.Clock, opts.Grace)
	defer cancel()
	gaveUp := r.sendAll(ctx, callCtx, todo)

	// 4. Wait until System Activity shows every copy made, and with
	// RERUN_WAIT, for the deliveries.
	if !opts.DryRun {
		waitCtx := ctx
		if gaveUp != nil {
			waitCtx = canceled()
		}
		r.watch(waitCtx, callCtx)
	}
	var outErr error
	switch {
	case ctx.Err() != nil:
		sum.Error = "stopped before the end: " + context.Cause(ctx).Error()
	case gaveUp != nil:
		sum.Error = "stopped before the end: " + gaveUp.Error()
	case r.outOfTime.Load():
		outErr = fmt.Errorf("%w: %d plans not attempted", ErrOutOfTime, len(sum.NotAttempted))
		sum.Error = outErr.Error()
	}
	sum.sort()
	return sum, outErr
}

// ErrRepeatedHour is wrapped by the error of a run whose window begins or
// ends in the hour the clocks show twice when daylight saving ends, in the
// zone System Activity answers in (Options.Location): nothing was read.
var ErrRepeatedHour = errors.New("a window bound falls in the hour repeated when daylight saving ends")

// ErrOutOfTime is wrapped by the error Run returns when Options.StartBy
// passed before every plan that needed a re-run got one; the summary is
// complete, and lists those plans as not attempted.
var ErrOutOfTime = errors.New("out of time")

// canceled returns a context that has ended.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// listing is what the run decides on: the plans, in order of id, the books
// on their copies, and the claims on the copies known at the start.
type listing struct {
	plans  []*plan
	books  *books
	claims *claims
}

// list proves the time zone, then lists the plans whose delivery failed in
// the window or is running (the running ones first: a delivery that fails
// between the two queries is then in the second), their deliveries since the
// window began, and the run-once copies made since the window before it.
// Where a copy is alike to a plan on System Activity's fields, it reads the
// definitions and keeps the books (books.go). It counts the failed jobs and
// plans into sum.
func list(ctx context.Context, sa *activity, defs *definitions, opts Options, sum *Summary) (listing, error) {
	w := newSpan(opts.Since, opts.Until)
	empty := listing{books: newBooks(), claims: newClaims(nil)}
	for _, end := range []time.Time{opts.Since, opts.Until} {
		if local := end.In(opts.Location); repeated(local) {
			return empty, fmt.Errorf("%w: the window's bound %s is %s in %s, a wall time the clocks show twice (daylight saving ends): "+
				"System Activity's times in that hour cannot be placed on either side of it; move the bound out of the hour %02d:00 to %02d:00 (%s)",
				ErrRepeatedHour, end.Format(time.RFC3339), local.Format("2006-01-02 15:04:05"), opts.Location, local.Hour(), (local.Hour()+1)%24, local.Format("2006-01-02"))
		}
	}
	var ids []string
	if opts.LookID != "" {
		var err error
		if ids, err = sa.lookFailures(ctx, opts.LookID); err != nil {
			return empty, err
		}
	}
	// Nothing is read by time before the zone is proven.
	if any, err := sa.proveZone(ctx, opts.Since); err != nil {
		return empty, err
	} else if !any {
		opts.Log.Info().Msg("System Activity lists no scheduled plan: nothing can have failed")
		return empty, nil
	}
	var failed []job
	if opts.LookID == "" {
		running, err := sa.running(ctx, opts.Since, opts.Until)
		if err != nil {
			return empty, err
		}
		if failed, err = sa.failures(ctx, opts.Since, opts.Until); err != nil {
			return empty, err
		}
		seen := map[string]bool{}
		for _, j := range slices.Concat(failed, running) {
			if !seen[j.PlanID] {
				seen[j.PlanID] = true
				ids = append(ids, j.PlanID)
			}
		}
	}
	var (
		hist, copies []job
	)
	g, gctx := errgroup.WithContext(ctx)
	if len(ids) > 0 {
		g.Go(func() (err error) { hist, err = sa.history(gctx, ids, opts.Since); return err })
	}
	g.Go(func() (err error) { copies, err = sa.copies(gctx, w.from); return err })
	if err := g.Wait(); err != nil {
		return empty, err
	}
	b := newBooks()
	l := newClaims(copies)
	plans, ids, err := attribute(ctx, sa, defs, opts, w, ids, slices.Concat(failed, hist), copies, b, l)
	if err != nil {
		return empty, err
	}
	decided := sorted(plans, ids)
	for _, p := range decided {
		if p.Failures > 0 {
			sum.FailedPlans++
			sum.FailedJobs += p.Failures
		}
	}
	opts.Log.Info().Str("source", sum.Source).Int("failed_jobs", sum.FailedJobs).Int("failed_plans", sum.FailedPlans).
		Int("running", len(decided)-sum.FailedPlans).Int("copies", len(copies)).Msg("listed failed deliveries")
	return listing{plans: decided, books: b, claims: l}, nil
}
