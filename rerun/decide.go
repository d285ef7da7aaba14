package rerun

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// Reasons a failed plan is not re-run.
const (
	ReasonLaterSuccess  = "later_success"         // the plan's latest delivery, up to now, succeeded
	ReasonAlreadyRerun  = "already_rerun"         // a run-once copy made after the failure succeeded or is running
	ReasonRunInProgress = "later_run_in_progress" // the plan is being delivered again right now
	ReasonRunOnce       = "one_off"               // the plan is itself a one-off (run-once) send
	ReasonNotInWindow   = "no_failure_in_window"  // the saved Look names it, System Activity has no failure of it in the window
)

// plan is what the rules know of one failed scheduled plan.
type plan struct {
	ID          string
	Name        string
	OwnerEmail  string
	Key         copyKey
	RunOnce     bool
	Failures    int       // failed jobs that started in the window
	LastFailure time.Time // start of the latest of them
	LastDetail  string
	Latest      job // latest job up to now
}

// decision is what to do with one plan.
type decision struct {
	plan   *plan
	reason string // "" to re-run
	detail string
}

// gather folds the jobs of the candidate plans into one plan each.
func gather(ids []string, jobs []job, since, until time.Time) []*plan {
	plans := make(map[string]*plan, len(ids))
	for _, id := range ids {
		plans[id] = &plan{ID: id}
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		p := plans[j.PlanID]
		if p == nil {
			continue
		}
		if p.Name == "" {
			p.Name, p.OwnerEmail, p.Key, p.RunOnce = j.Name, j.OwnerEmail, j.key(), j.RunOnce
		}
		if !j.hasJob() || (j.JobID != "" && seen[j.JobID]) {
			continue
		}
		seen[j.JobID] = true
		if j.Status == statusFailure && !j.Created.Before(since) && j.Created.Before(until) {
			p.Failures++
			if !j.Created.Before(p.LastFailure) {
				p.LastFailure, p.LastDetail = j.Created, j.Detail
			}
		}
		if later(j, p.Latest) {
			p.Latest = j
		}
	}
	out := make([]*plan, 0, len(ids))
	for _, id := range ids {
		out = append(out, plans[id])
	}
	slices.SortFunc(out, func(a, b *plan) int { return compareIDs(a.ID, b.ID) })
	return out
}

// later reports whether job a started after b (by id when at the same second).
func later(a, b job) bool {
	if !b.hasJob() {
		return true
	}
	if c := a.Created.Compare(b.Created); c != 0 {
		return c > 0
	}
	return compareIDs(a.JobID, b.JobID) > 0
}

// compareIDs orders numeric ids as numbers, anything else as text.
func compareIDs(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}

// decide applies the rules to one plan, given the run-once copies made since
// the earliest failure.
func decide(p *plan, copies []job) decision {
	switch {
	case p.RunOnce:
		return decision{p, ReasonRunOnce, "a one-off send is not re-sent"}
	case p.Failures == 0:
		return decision{p, ReasonNotInWindow, "no failed delivery of it started in the window"}
	case p.Latest.Status == statusSuccess && p.Latest.Created.After(p.LastFailure):
		return decision{p, ReasonLaterSuccess, "delivered at " + p.Latest.Created.Format(time.RFC3339)}
	case p.Latest.Status == "" && p.Latest.Created.After(p.LastFailure):
		return decision{p, ReasonRunInProgress, "a delivery started at " + p.Latest.Created.Format(time.RFC3339) + " is still running"}
	}
	if c, ok := coveringCopy(p, copies); ok {
		state := "succeeded"
		if c.Status != statusSuccess {
			state = "is still running"
		}
		return decision{p, ReasonAlreadyRerun, "run-once copy " + c.PlanID + " made at " + c.PlanCreated.Format(time.RFC3339) + " " + state}
	}
	return decision{plan: p}
}

// coveringCopy finds a run-once copy of p made at or after its latest failure
// that succeeded or has not finished: a delivery of this failure already
// made or on its way.
func coveringCopy(p *plan, copies []job) (job, bool) {
	for _, c := range copies {
		if c.key() != p.Key || c.PlanID == p.ID {
			continue
		}
		made := c.PlanCreated
		if made.IsZero() {
			made = c.Created
		}
		if made.Before(p.LastFailure) {
			continue
		}
		if !c.hasJob() || c.Status == statusSuccess || c.Status == "" {
			return c, true
		}
	}
	return job{}, false
}
