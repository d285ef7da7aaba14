package rerun

import (
	"cmp"
	"fmt"
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

// Reasons a failed plan needs a person instead of a re-run.
const (
	ReasonPermanent         = "permanent"          // its failure is one a re-run cannot fix
	ReasonAttemptsExhausted = "attempts_exhausted" // RERUN_MAX_ATTEMPTS re-runs of this failure failed already
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
	person bool // the reason needs a person: report, do not re-run
}

// rules are the settings decide applies beyond the fixed rules.
type rules struct {
	maxFailedReruns int // 0: no cap
	permanent       *Classifier
	retryPermanent  bool
}

// gather folds the jobs of the candidate plans into one plan each.
func gather(ids []string, since, until time.Time, jobLists ...[]job) []*plan {
	plans := make(map[string]*plan, len(ids))
	for _, id := range ids {
		plans[id] = &plan{ID: id}
	}
	seen := map[string]bool{}
	add := func(j *job) {
		p := plans[j.PlanID]
		if p == nil {
			return
		}
		if p.Name == "" {
			p.Name, p.OwnerEmail, p.Key, p.RunOnce = j.Name, j.OwnerEmail, j.key(), j.RunOnce
		}
		if !j.hasJob() || (j.JobID != "" && seen[j.JobID]) {
			return
		}
		seen[j.JobID] = true
		if j.Status == statusFailure && !j.Created.Before(since) && j.Created.Before(until) {
			p.Failures++
			if !j.Created.Before(p.LastFailure) {
				p.LastFailure, p.LastDetail = j.Created, j.Detail
			}
		}
		if later(*j, p.Latest) {
			p.Latest = *j
		}
	}
	for _, jobs := range jobLists {
		for i := range jobs {
			add(&jobs[i])
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
func decide(p *plan, copies []job, rl rules) decision {
	switch {
	case p.RunOnce:
		return decision{plan: p, reason: ReasonRunOnce, detail: "a one-off send is not re-sent"}
	case p.Failures == 0:
		return decision{plan: p, reason: ReasonNotInWindow, detail: "no failed delivery of it started in the window"}
	case p.Latest.Status == statusSuccess && p.Latest.Created.After(p.LastFailure):
		return decision{plan: p, reason: ReasonLaterSuccess, detail: "delivered at " + p.Latest.Created.Format(time.RFC3339)}
	case p.Latest.Status == "" && p.Latest.Created.After(p.LastFailure):
		return decision{plan: p, reason: ReasonRunInProgress, detail: "a delivery started at " + p.Latest.Created.Format(time.RFC3339) + " is still running"}
	}
	if c, ok := coveringCopy(p, copies); ok {
		state := "succeeded"
		if c.Status != statusSuccess {
			state = "is still running"
		}
		return decision{plan: p, reason: ReasonAlreadyRerun, detail: "run-once copy " + c.PlanID + " made at " + c.PlanCreated.Format(time.RFC3339) + " " + state}
	}
	failed := failedCopies(p, copies)
	if rl.maxFailedReruns > 0 && len(failed) >= rl.maxFailedReruns {
		last := failed[len(failed)-1]
		return decision{plan: p, person: true, reason: ReasonAttemptsExhausted,
			detail: fmt.Sprintf("%d re-runs of the failure at %s failed; the last: %s",
				len(failed), p.LastFailure.Format(time.RFC3339), orUnknown(last.Detail))}
	}
	if !rl.retryPermanent {
		details := []string{p.LastDetail}
		for _, c := range failed {
			details = append(details, c.Detail)
		}
		for _, d := range details {
			if m := rl.permanent.Permanent(d); m != "" {
				return decision{plan: p, person: true, reason: ReasonPermanent,
					detail: fmt.Sprintf("a re-run cannot fix %q: %s", m, d)}
			}
		}
	}
	return decision{plan: p}
}

func orUnknown(s string) string {
	if s == "" {
		return "(no status detail)"
	}
	return s
}

// failedCopies lists the run-once copies of p made at or after its latest
// failure whose delivery failed: the failed re-runs of this failure, oldest
// first.
func failedCopies(p *plan, copies []job) []job {
	var out []job
	for _, c := range copies {
		if isCopyOf(c, p) && c.Status == statusFailure {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b job) int { return a.Created.Compare(b.Created) })
	return out
}

// isCopyOf reports whether c looks like a run-once copy of p made at or
// after p's latest failure.
func isCopyOf(c job, p *plan) bool {
	if c.key() != p.Key || c.PlanID == p.ID {
		return false
	}
	made := c.PlanCreated
	if made.IsZero() {
		made = c.Created
	}
	return !made.Before(p.LastFailure)
}

// coveringCopy finds a run-once copy of p made at or after its latest failure
// that succeeded or has not finished: a delivery of this failure already
// made or on its way.
func coveringCopy(p *plan, copies []job) (job, bool) {
	for _, c := range copies {
		if isCopyOf(c, p) && (!c.hasJob() || c.Status == statusSuccess || c.Status == "") {
			return c, true
		}
	}
	return job{}, false
}
