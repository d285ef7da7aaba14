package rerun

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/looker-rerun/looker-rerun/looker"
)

// This file reads the ledger: System Activity's scheduled_plan explore, which
// joins every scheduled plan (run-once copies included) to its jobs. It holds
// the queries of a run, one per purpose; pages.go runs each to its last row.

// System Activity fields of the scheduled_plan explore that the rules read.
const (
	fPlanID       = "scheduled_plan.id"
	fPlanName     = "scheduled_plan.name"
	fPlanUserID   = "scheduled_plan.user_id"
	fPlanRunOnce  = "scheduled_plan.run_once"
	fPlanEnabled  = "scheduled_plan.enabled"
	fPlanContent  = "scheduled_plan.content_type_id"
	fPlanDests    = "scheduled_plan.destination_addresses"
	fPlanCreated  = "scheduled_plan.created_time"
	fJobID        = "scheduled_job.id"
	fJobStatus    = "scheduled_job.status"
	fJobDetail    = "scheduled_job.status_detail"
	fJobCreated   = "scheduled_job.created_time"
	fOwnerEmail   = "user.email"
	statusSuccess = "success"
	statusFailure = "failure"
)

var (
	planFields = []string{fPlanID, fPlanName, fPlanUserID, fPlanRunOnce, fPlanEnabled, fPlanContent, fPlanDests, fOwnerEmail}
	jobFields  = []string{fJobID, fJobStatus, fJobDetail, fJobCreated}
)

// job is one row of the scheduled_plan explore: a plan and, when the plan has
// run, one of its jobs.
type job struct {
	PlanID      string
	Name        string
	OwnerID     string // the owner's user id
	OwnerEmail  string
	Content     string
	Dests       string
	PlanCreated time.Time
	RunOnce     bool
	Disabled    bool

	JobID   string
	Status  string // success, failure, or "" while running
	Detail  string
	Created time.Time

	// Ambiguous is the wall time of a cell that falls in the hour repeated
	// when daylight saving ends ("" when none does): the row cannot be
	// ordered against times near it.
	Ambiguous string
}

// hasJob reports whether the row carries a job (the explore joins plans to
// jobs, so a plan that has not run yet comes without one).
func (j job) hasJob() bool { return j.JobID != "" || !j.Created.IsZero() }

// lookerFilterTime is how a time is written in a Looker filter expression, in
// the time zone the query runs in.
const lookerFilterTime = "2006/01/02 15:04:05"

// idsPerQuery bounds the plan ids in one filter, to keep each query small.
const idsPerQuery = 500

// horizon is how far past the local clock "up to now" reaches, so a Looker
// clock running ahead of ours cannot hide a job.
const horizon = 24 * time.Hour

// activity runs the System Activity queries of a run. The queries of one
// kind (the batches of a history, the halves of a split page) run
// concurrently, at most concurrency requests at a time.
type activity struct {
	lk       Looker
	pageSize int // row limit asked of each query
	clock    Clock
	log      zerolog.Logger
	// loc is the time zone System Activity answers in: filters are written
	// and times read in it (proveZone checks it).
	loc *time.Location
	// slots holds a token per query in flight.
	slots chan struct{}
}

func newActivity(lk Looker, opts Options) *activity {
	return &activity{lk: lk, pageSize: opts.PageSize, clock: opts.Clock, log: opts.Log, loc: opts.Location,
		slots: make(chan struct{}, opts.Concurrency)}
}

// failures lists the failed jobs of scheduled (not run-once) plans that
// started in [since, until).
func (a *activity) failures(ctx context.Context, since, until time.Time) ([]job, error) {
	return a.jobsWithStatus(ctx, statusFailure, "list failed deliveries", since, until)
}

// running lists the jobs of scheduled (not run-once) plans that started in
// [since, until) and have no status yet: deliveries still running, which
// may yet fail.
func (a *activity) running(ctx context.Context, since, until time.Time) ([]job, error) {
	return a.jobsWithStatus(ctx, "NULL", "list running deliveries", since, until)
}

// jobsWithStatus lists the jobs of scheduled plans that started in [since,
// until) whose status matches the filter expression status.
func (a *activity) jobsWithStatus(ctx context.Context, status, what string, since, until time.Time) ([]job, error) {
	q := a.query(slices.Concat(planFields, jobFields), map[string]string{
		fPlanRunOnce: "No",
		fJobStatus:   status,
	})
	jobs, err := a.queryAll(ctx, q, fJobCreated, since, until)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return jobs, nil
}

// ErrLookCut is wrapped by the error of a run whose saved Look (Options.LookID)
// answered as many rows as the run asked for: the list may be cut, and a
// Look cannot be split by time as a query is, so nothing was re-run.
var ErrLookCut = errors.New("the saved Look's list of failures may be cut")

// lookFailures runs the saved Look and returns the plan ids its rows name, in
// order of first appearance. Which of them failed in the window, and how
// often, System Activity tells.
func (a *activity) lookFailures(ctx context.Context, lookID string) ([]string, error) {
	rows, err := a.lk.RunLook(ctx, lookID, a.pageSize)
	if err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	if len(rows) >= a.pageSize {
		// A Look cannot be split by time like a query: never act on a list
		// that may be cut.
		return nil, fmt.Errorf("%w: look %s returned %d rows, Looker's limit; narrow the Look's filters, or list the failures from System Activity instead", ErrLookCut, lookID, len(rows))
	}
	var ids []string
	seen := map[string]bool{}
	for i, row := range rows {
		id, ok, err := rowID(row, fPlanID)
		if err != nil {
			return nil, fmt.Errorf("look %s row %d: %w", lookID, i+1, err)
		}
		if !ok {
			if _, present := row[fPlanID]; present {
				continue // a null id: a job whose plan was deleted
			}
			return nil, fmt.Errorf("look %s: its rows have no %s column (columns: %s); add the field Scheduled Plan > ID to the Look",
				lookID, fPlanID, strings.Join(slices.Sorted(maps.Keys(row)), ", "))
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// history lists every job of the given plans that started since since, up to
// now: later successes and the failures to re-run. The plans are asked for
// idsPerQuery at a time, those queries concurrently.
func (a *activity) history(ctx context.Context, planIDs []string, since time.Time) ([]job, error) {
	jobs, err := a.byPlanID(ctx, planIDs, slices.Concat(planFields, jobFields), fJobCreated, since, idsPerQuery)
	if err != nil {
		return nil, fmt.Errorf("list the deliveries of the failed plans: %w", err)
	}
	return jobs, nil
}

// copiesByID lists the given run-once copies made since from, with their
// jobs, as far as System Activity shows them yet. A copy runs once, so a
// query for n copies answers n rows at most: batches of half a page never
// fill one, however close together the copies were made.
func (a *activity) copiesByID(ctx context.Context, ids []string, from time.Time) ([]job, error) {
	jobs, err := a.byPlanID(ctx, ids, slices.Concat(planFields, []string{fPlanCreated}, jobFields), fPlanCreated, from, max(1, min(idsPerQuery, a.pageSize/2)))
	if err != nil {
		return nil, fmt.Errorf("look up run-once copies: %w", err)
	}
	return jobs, nil
}

// byPlanID runs a query for the given plans, batch ids at a time, those
// queries concurrently, with timeField from since up to now.
func (a *activity) byPlanID(ctx context.Context, planIDs, fields []string, timeField string, since time.Time, batch int) ([]job, error) {
	batches := slices.Collect(slices.Chunk(planIDs, batch))
	results := make([][]job, len(batches))
	until := a.clock.Now().Add(horizon)
	g, gctx := errgroup.WithContext(ctx)
	for i, ids := range batches {
		g.Go(func() error {
			q := a.query(fields, map[string]string{fPlanID: strings.Join(ids, ",")})
			var err error
			results[i], err = a.queryAll(gctx, q, timeField, since, until)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(results...), nil
}

// copies lists the run-once plans created since from, with their jobs: the
// re-runs already made, by this tool, by an earlier run of it, or by a person.
func (a *activity) copies(ctx context.Context, from time.Time) ([]job, error) {
	q := a.query(slices.Concat(planFields, []string{fPlanCreated}, jobFields), map[string]string{
		fPlanRunOnce: "Yes",
	})
	jobs, err := a.queryAll(ctx, q, fPlanCreated, from, a.clock.Now().Add(horizon))
	if err != nil {
		return nil, fmt.Errorf("list run-once copies: %w", err)
	}
	return jobs, nil
}

// plansOf lists the scheduled (not run-once) plans of the given contents
// (content_type_id): the plans a run-once copy of one of them may have been
// made from. One row per plan: no job field is selected.
func (a *activity) plansOf(ctx context.Context, contents []string) ([]job, error) {
	jobs, err := a.byContent(ctx, contents, planFields, map[string]string{fPlanRunOnce: "No"}, a.queryPage)
	if err != nil {
		return nil, fmt.Errorf("list the plans of the contents copied: %w", err)
	}
	return jobs, nil
}

// copiesOf lists the run-once copies of the given contents made in [from,
// to), with their jobs.
func (a *activity) copiesOf(ctx context.Context, contents []string, from, to time.Time) ([]job, error) {
	fields := slices.Concat(planFields, []string{fPlanCreated}, jobFields)
	jobs, err := a.byContent(ctx, contents, fields, map[string]string{fPlanRunOnce: "Yes"}, func(ctx context.Context, q looker.Query) ([]job, error) {
		return a.queryAll(ctx, q, fPlanCreated, from, to)
	})
	if err != nil {
		return nil, fmt.Errorf("list earlier run-once copies: %w", err)
	}
	return jobs, nil
}

// byContent runs a query for the given contents, idsPerQuery at a time,
// those queries concurrently.
func (a *activity) byContent(ctx context.Context, contents, fields []string, filters map[string]string,
	run func(context.Context, looker.Query) ([]job, error)) ([]job, error) {
	batches := slices.Collect(slices.Chunk(contents, idsPerQuery))
	results := make([][]job, len(batches))
	g, gctx := errgroup.WithContext(ctx)
	for i, batch := range batches {
		g.Go(func() error {
			q := a.query(fields, cloneWith(filters, fPlanContent, strings.Join(batch, ",")))
			var err error
			results[i], err = run(gctx, q)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(results...), nil
}
