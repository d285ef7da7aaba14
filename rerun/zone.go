package rerun

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/looker-rerun/looker-rerun/looker"
)

// This file proves the time zone System Activity answers in before anything
// is read by time. With user-specific time zones off, Looker runs every query
// in the admin's Query Time Zone whatever query_timezone says, and a
// self-hosted System Activity may store server-local times: a window read in
// the wrong zone is shifted by hours, and every failure in it is missed
// without a word.

// probePlans is how many of the newest plans are tried, in case some were
// deleted since System Activity listed them.
const probePlans = 10

// zoneSlack is how far the two clocks of one plan may differ and still read
// as the same instant: System Activity shows whole seconds.
const zoneSlack = time.Minute

// ErrZone is wrapped by the error of a run that found System Activity
// answering in another time zone than Options.Location: nothing was read by
// time, nothing re-run. The error names the offset seen.
var ErrZone = errors.New("system activity answers in another time zone")

// proveZone proves the time zone System Activity answers in at two
// moments: now (the newest plans) and before the window began (the newest
// plans created before it). A zone that agrees with UTC in winter and not
// in summer (Europe/London read as UTC) passes the first and fails the
// second when the window reaches back across a change of the clocks. No
// plan at all: nothing can have failed, and the zone does not matter.
func (a *activity) proveZone(ctx context.Context, before time.Time) (plans bool, err error) {
	var newest, older bool
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { newest, err = a.proveAt(gctx, nil); return err })
	g.Go(func() (err error) {
		older, err = a.proveAt(gctx, map[string]string{fPlanCreated: "before " + before.In(a.loc).Format(lookerFilterTime)})
		return err
	})
	if err := g.Wait(); err != nil {
		return false, err
	}
	return newest || older, nil
}

// proveAt compares, for one of the newest plans the filters leave, its
// created_at from the API (an absolute time) with its
// scheduled_plan.created_time from System Activity, read in a.loc. Equal:
// the zone is right. Not equal: an error naming the offset seen and the
// settings to change. It reports whether there was a plan to check.
func (a *activity) proveAt(ctx context.Context, filters map[string]string) (plans bool, err error) {
	q := a.query([]string{fPlanID, fPlanCreated}, filters)
	q.Sorts, q.Limit = []string{fPlanCreated + " desc"}, fmt.Sprint(probePlans)
	var rows []job
	if err := a.acquire(ctx); err != nil {
		return false, err
	}
	err = a.lk.RunInlineQuery(ctx, q, func(row looker.Row) error {
		j, err := decodeJob(row, q.Fields, a.loc)
		// A time in the repeated hour cannot prove an offset: the next plan may.
		if err == nil && !j.PlanCreated.IsZero() && j.Ambiguous == "" {
			rows = append(rows, j)
		}
		if errors.Is(err, errNoPlanID) {
			err = nil
		}
		return err
	})
	<-a.slots
	if err != nil {
		return false, fmt.Errorf("check the time zone of System Activity: %w", err)
	}
	if len(rows) == 0 {
		return false, nil
	}
	var lastErr error
	for _, r := range rows {
		p, err := a.lk.ScheduledPlan(ctx, r.PlanID, "id", "created_at")
		var lerr *looker.Error
		switch {
		case errors.As(err, &lerr) && (lerr.StatusCode == http.StatusNotFound || lerr.StatusCode == http.StatusForbidden):
			lastErr = err
			continue // deleted since, or another user's that this one may not see: try the next
		case err != nil:
			return true, fmt.Errorf("check the time zone of System Activity: %w", err)
		case p.CreatedAt.IsZero():
			lastErr = fmt.Errorf("plan %s has no created_at", r.PlanID)
			continue
		}
		seen := r.PlanCreated.Sub(p.CreatedAt)
		if seen.Abs() < zoneSlack {
			a.log.Debug().Str("plan_id", r.PlanID).Time("created_at", p.CreatedAt).Str("zone", a.loc.String()).Msg("System Activity's time zone checked")
			return true, nil
		}
		// Shown at wall time w in zone Z: the offset Z has then is the
		// difference of the wall clocks.
		shown := r.PlanCreated.In(a.loc)
		wall := time.Date(shown.Year(), shown.Month(), shown.Day(), shown.Hour(), shown.Minute(), shown.Second(), 0, time.UTC)
		offset := wall.Sub(p.CreatedAt).Round(15 * time.Minute)
		return true, fmt.Errorf("%w: plan %s was created at %s, but System Activity, read as %s, shows %s (UTC%s); "+
			"Looker runs queries in its Query Time Zone when user-specific time zones are off: turn on Admin > Settings > "+
			"User Specific Time Zones, or set the Query Time Zone to UTC, or tell the run the IANA zone Looker answers in "+
			"(nothing was re-run: a window read in the wrong zone misses failures)",
			ErrZone, r.PlanID, p.CreatedAt.UTC().Format(time.RFC3339), a.loc, wall.Format("2006-01-02 15:04:05"), formatOffset(offset))
	}
	return true, fmt.Errorf("check the time zone of System Activity: none of the %d newest plans could be read (the API user needs to see them: the Admin role, or plans of its own): %w", len(rows), lastErr)
}

// formatOffset writes an offset as +09:00.
func formatOffset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%02d:%02d", sign, int(d.Hours()), int(d.Minutes())%60)
}
