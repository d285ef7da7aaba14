package rerun

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/looker-rerun/looker-rerun/looker"
)

// lookerFilterTime is how a time is written in a Looker filter expression; the
// query's time zone is UTC.
const lookerFilterTime = "2006/01/02 15:04:05"

// idsPerQuery bounds the plan ids in one filter, to keep each query small.
const idsPerQuery = 500

// horizon is how far past the local clock "up to now" reaches, so a Looker
// clock running ahead of ours cannot hide a job.
const horizon = 24 * time.Hour

var (
	planFields = []string{fPlanID, fPlanName, fPlanUserID, fPlanRunOnce, fPlanContent, fPlanDests, fOwnerEmail}
	jobFields  = []string{fJobID, fJobStatus, fJobDetail, fJobCreated}
)

func systemActivity(fields []string, filters map[string]string, pageSize int) looker.Query {
	return looker.Query{
		Model:         "system__activity",
		View:          "scheduled_plan",
		Fields:        fields,
		Filters:       filters,
		Sorts:         []string{fields[0]},
		Limit:         fmt.Sprint(pageSize),
		QueryTimezone: "UTC",
	}
}

// queryAll runs q with timeField limited to [from, to) and returns every row:
// when a result fills the page (Looker would have cut it silently), the range
// is split in two and each half asked again. A single second holding a full
// page is an error, never a silent cut.
func (r *runner) queryAll(ctx context.Context, q looker.Query, timeField string, from, to time.Time) ([]job, error) {
	from, to = from.Truncate(time.Second), ceilSecond(to)
	q.Filters = cloneWith(q.Filters, timeField, from.Format(lookerFilterTime)+" to "+to.Format(lookerFilterTime))
	// Rows are decoded into jobs as they stream in: a full page of 5,000
	// never sits in memory as JSON.
	var (
		jobs          []job
		rows, skipped int
	)
	err := r.lk.RunInlineQuery(ctx, q, func(row looker.Row) error {
		rows++
		j, err := decodeJob(row)
		switch {
		case errors.Is(err, errNoPlanID):
			skipped++ // nothing to re-run without a plan
			return nil
		case err != nil:
			return fmt.Errorf("system activity row %d: %w", rows, err)
		}
		jobs = append(jobs, j)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rows >= r.opts.PageSize {
		span := to.Sub(from)
		if span <= time.Second {
			return nil, fmt.Errorf("more than %d rows of %s in the second from %s: cannot list them all", r.opts.PageSize, timeField, from.Format(time.RFC3339))
		}
		mid := from.Add(span / 2).Truncate(time.Second)
		r.log.Debug().Str("field", timeField).Time("from", from).Time("mid", mid).Time("to", to).Int("rows", rows).Msg("full page: splitting the time range")
		left, err := r.queryAll(ctx, q, timeField, from, mid)
		if err != nil {
			return nil, err
		}
		right, err := r.queryAll(ctx, q, timeField, mid, to)
		if err != nil {
			return nil, err
		}
		return append(left, right...), nil
	}
	if skipped > 0 {
		r.log.Warn().Int("rows", skipped).Str("field", fPlanID).Msg("skipped System Activity rows without a plan id")
	}
	return jobs, nil
}

func ceilSecond(t time.Time) time.Time {
	if tt := t.Truncate(time.Second); !tt.Equal(t) {
		return tt.Add(time.Second)
	}
	return t
}

func cloneWith(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for mk, mv := range m {
		out[mk] = mv
	}
	out[k] = v
	return out
}

// failures lists the failed jobs of scheduled (not run-once) plans that
// started in the window.
func (r *runner) failures(ctx context.Context) ([]job, error) {
	q := systemActivity(slices.Concat(planFields, jobFields), map[string]string{
		fPlanRunOnce: "No",
		fJobStatus:   statusFailure,
	}, r.opts.PageSize)
	jobs, err := r.queryAll(ctx, q, fJobCreated, r.opts.Since, r.opts.Until)
	if err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	return jobs, nil
}

// lookFailures runs the saved Look and returns the plan ids its rows name, in
// order of first appearance, and the number of rows.
func (r *runner) lookFailures(ctx context.Context) ([]string, int, error) {
	rows, err := r.lk.RunLook(ctx, r.opts.LookID, r.opts.PageSize)
	if err != nil {
		return nil, 0, fmt.Errorf("list failed deliveries: %w", err)
	}
	if len(rows) >= r.opts.PageSize {
		// A Look cannot be split by time like a query: never act on a list
		// that may be cut.
		return nil, 0, fmt.Errorf("look %s returned %d rows, Looker's limit: the list may be cut; narrow the Look's filters or leave RERUN_LOOK_ID unset to query System Activity", r.opts.LookID, len(rows))
	}
	var ids []string
	seen := map[string]bool{}
	for i, row := range rows {
		id, ok, err := rowID(row, fPlanID)
		if err != nil {
			return nil, 0, fmt.Errorf("look %s row %d: %w", r.opts.LookID, i+1, err)
		}
		if !ok {
			if _, present := row[fPlanID]; present {
				continue // a null id: a job whose plan was deleted
			}
			return nil, 0, fmt.Errorf("look %s: its rows have no %s column (columns: %s); add the field Scheduled Plan > ID to the Look",
				r.opts.LookID, fPlanID, strings.Join(columns(row), ", "))
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, len(rows), nil
}

func columns(row looker.Row) []string {
	var cols []string
	for k := range row {
		cols = append(cols, k)
	}
	slices.Sort(cols)
	return cols
}

// history lists every job of the given plans that started since the window
// began, up to now: later successes and the failures to re-run.
func (r *runner) history(ctx context.Context, planIDs []string) ([]job, error) {
	var all []job
	for batch := range slices.Chunk(planIDs, idsPerQuery) {
		q := systemActivity(slices.Concat(planFields, jobFields), map[string]string{
			fPlanID: strings.Join(batch, ","),
		}, r.opts.PageSize)
		jobs, err := r.queryAll(ctx, q, fJobCreated, r.opts.Since, r.opts.Now().Add(horizon))
		if err != nil {
			return nil, fmt.Errorf("list the deliveries of the failed plans: %w", err)
		}
		all = append(all, jobs...)
	}
	return all, nil
}

// copies lists the run-once plans created since from, with their jobs: the
// re-runs already made, by this tool, by an earlier run of it, or by a person.
func (r *runner) copies(ctx context.Context, from time.Time) ([]job, error) {
	q := systemActivity(slices.Concat(planFields, []string{fPlanCreated}, jobFields), map[string]string{
		fPlanRunOnce: "Yes",
	}, r.opts.PageSize)
	jobs, err := r.queryAll(ctx, q, fPlanCreated, from, r.opts.Now().Add(horizon))
	if err != nil {
		return nil, fmt.Errorf("list run-once copies: %w", err)
	}
	return jobs, nil
}
