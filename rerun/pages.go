package rerun

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/looker-rerun/looker-rerun/looker"
)

// This file runs one System Activity query to its last row: a page at a
// time within the run's concurrency, a time range split in halves while a
// page comes back full (Looker cuts results silently at the row limit).

// queryPage runs q once, without a time range to split: a result that fills
// the page is an error, never a silent cut.
func (a *activity) queryPage(ctx context.Context, q looker.Query) ([]job, error) {
	jobs, rows, err := a.page(ctx, q)
	if err != nil {
		return nil, err
	}
	if rows >= a.pageSize {
		return nil, fmt.Errorf("%d rows, Looker's row limit: cannot list them all", rows)
	}
	return jobs, nil
}

// page runs q and decodes its rows into jobs as they stream in (a full page
// of 5,000 never sits in memory as JSON), leaving out, with a warning, the
// rows without a plan id: a job whose plan is gone has nothing to re-run. It
// returns the rows Looker answered, to tell a page that may be cut.
func (a *activity) page(ctx context.Context, q looker.Query) (jobs []job, rows int, err error) {
	skipped := 0
	if err := a.acquire(ctx); err != nil {
		return nil, 0, err
	}
	err = a.lk.RunInlineQuery(ctx, q, func(row looker.Row) error {
		rows++
		j, err := decodeJob(row, q.Fields, a.loc)
		switch {
		case errors.Is(err, errNoPlanID):
			skipped++
			return nil
		case err != nil:
			return fmt.Errorf("system activity row %d: %w", rows, err)
		}
		jobs = append(jobs, j)
		return nil
	})
	<-a.slots
	if err != nil {
		return nil, 0, err
	}
	if skipped > 0 {
		a.log.Warn().Int("rows", skipped).Str("field", fPlanID).Msg("skipped System Activity rows without a plan id")
	}
	return jobs, rows, nil
}

// query is an inline query on the scheduled_plan explore, in UTC, sorted on
// its first field, asking for a page of rows.
func (a *activity) query(fields []string, filters map[string]string) looker.Query {
	return looker.Query{
		Model:         "system__activity",
		View:          "scheduled_plan",
		Fields:        fields,
		Filters:       filters,
		Sorts:         []string{fields[0]},
		Limit:         fmt.Sprint(a.pageSize),
		QueryTimezone: a.loc.String(),
	}
}

// queryAll runs q with timeField limited to [from, to) and returns every row:
// when a result fills the page (Looker would have cut it silently), the range
// is split in two and each half asked again. A single second holding a full
// page is an error, never a silent cut.
func (a *activity) queryAll(ctx context.Context, q looker.Query, timeField string, from, to time.Time) ([]job, error) {
	from, to = from.Truncate(time.Second), ceilSecond(to)
	// A bound the clocks show twice may be read as either: widen it past
	// the repeated hour. (The window's own bounds never are: list refuses
	// them.)
	if repeated(from.In(a.loc)) {
		from = from.Add(-time.Hour)
	}
	if repeated(to.In(a.loc)) {
		to = to.Add(time.Hour)
	}
	return a.split(ctx, q, timeField, from, to)
}

// split runs q over [from, to) of timeField, in halves while a page fills.
func (a *activity) split(ctx context.Context, q looker.Query, timeField string, from, to time.Time) ([]job, error) {
	q.Filters = cloneWith(q.Filters, timeField, from.In(a.loc).Format(lookerFilterTime)+" to "+to.In(a.loc).Format(lookerFilterTime))
	jobs, rows, err := a.page(ctx, q)
	if err != nil {
		return nil, err
	}
	if rows >= a.pageSize {
		span := to.Sub(from)
		if span <= time.Second {
			return nil, fmt.Errorf("more than %d rows of %s in the second from %s: cannot list them all", a.pageSize, timeField, from.Format(time.RFC3339))
		}
		mid := from.Add(span / 2).Truncate(time.Second)
		a.log.Debug().Str("field", timeField).Time("from", from).Time("mid", mid).Time("to", to).Int("rows", rows).Msg("full page: splitting the time range")
		var left, right []job
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { left, err = a.split(gctx, q, timeField, from, mid); return err })
		g.Go(func() (err error) { right, err = a.split(gctx, q, timeField, mid, to); return err })
		if err := g.Wait(); err != nil {
			return nil, err
		}
		return append(left, right...), nil
	}
	return jobs, nil
}

// acquire takes a slot for a query in flight; release it with <-a.slots.
func (a *activity) acquire(ctx context.Context) error {
	select {
	case a.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
