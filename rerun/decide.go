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
	ReasonRunInProgress = "later_run_in_progress" // a delivery that started after the window, and belongs to the next one, is running
	ReasonRunOnce       = "one_off"               // the plan is itself a one-off (run-once) send
	ReasonDisabled      = "disabled"              // the plan is disabled: someone turned it off
	ReasonNotInWindow   = "no_failure_in_window"  // the saved Look names it, System Activity has no failure of it in the window
)

// Reasons a failed plan needs a person instead of a re-run.
const (
	ReasonPermanent         = "permanent"          // its failure is one a re-run cannot fix
	ReasonAttemptsExhausted = "attempts_exhausted" // RERUN_MAX_ATTEMPTS re-runs of this failure failed already
)

// plan is what the rules know of one scheduled plan that failed, or whose
// delivery was running, in the window.
type plan struct {
	ID          string
	Name        string
	OwnerEmail  string
	Key         copyKey
	RunOnce     bool
	Disabled    bool
	Failures    int       // failed jobs that started in the window
	LastFailure time.Time // start of the latest of them
	LastDetail  string
	Latest      job // latest job up to now
}

// decision is what to do with one plan.
type decision struct {
	plan   *plan
	reason string // "" to re-run, unless wait or ignore
	detail string
	person bool // the reason needs a person: report, do not re-run
	// wait: a delivery of the plan that started in the window is running;
	// its outcome decides (RERUN_WAIT), or it is reported as in progress.
	wait bool
	// ignore: nothing failed and nothing runs; not worth a line.
	ignore bool
	// copy is the run-once copy that already covers the failure
	// (already_rerun).
	copy job
}

// rules are the settings decide applies beyond the fixed rules.
type rules struct {
	maxFailedReruns int // 0: no cap
	permanent       *Classifier
	retryPermanent  bool
	until           time.Time // the window's end
	// look: the plans come from a saved Look, which names them whether or
	// not they failed in the window.
	look bool
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
			p.Name, p.OwnerEmail, p.Key, p.RunOnce, p.Disabled = j.Name, j.OwnerEmail, j.key(), j.RunOnce, j.Disabled
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

// decideFirst applies the rules that need no run-once copies: one-offs,
// disabled plans, deliveries still running, later successes. ok is false
// when the plan goes on to the copies' rules (decideCopies).
func decideFirst(p *plan, rl rules) (d decision, ok bool) {
	running := p.Latest.hasJob() && p.Latest.Status == ""
	switch {
	case p.Failures == 0 && !rl.look && (p.Disabled || p.RunOnce || !running):
		// Listed for a delivery that was running; it has finished, or
		// would not be re-run anyway.
		return decision{plan: p, ignore: true}, true
	case p.RunOnce:
		return decision{plan: p, reason: ReasonRunOnce, detail: "a one-off send is not re-sent"}, true
	case p.Disabled:
		return decision{plan: p, reason: ReasonDisabled, detail: "the plan is disabled in Looker: someone turned it off since it failed"}, true
	case running && p.Failures > 0 && p.Latest.Created.After(p.LastFailure) && !p.Latest.Created.Before(rl.until):
		return decision{plan: p, reason: ReasonRunInProgress, detail: "a delivery started at " + p.Latest.Created.Format(time.RFC3339) +
			", after the window, is running: it belongs to the next window"}, true
	case running && (p.Failures == 0 || p.Latest.Created.After(p.LastFailure)) && p.Latest.Created.Before(rl.until):
		return decision{plan: p, wait: true, detail: "a delivery started at " + p.Latest.Created.Format(time.RFC3339) + " is still running"}, true
	case p.Failures == 0:
		return decision{plan: p, reason: ReasonNotInWindow, detail: "no failed delivery of it started in the window"}, true
	case p.Latest.Status == statusSuccess && p.Latest.Created.After(p.LastFailure):
		return decision{plan: p, reason: ReasonLaterSuccess, detail: "delivered at " + p.Latest.Created.Format(time.RFC3339)}, true
	}
	return decision{}, false
}

// decideCopies applies the rules that read the run-once copies, as shared
// out among look-alike plans (shareOut).
func decideCopies(p *plan, sh shares, rl rules) decision {
	if c, ok := sh.covering[p.ID]; ok {
		state := "succeeded"
		if c.Status != statusSuccess {
			state = "is still running"
		}
		return decision{plan: p, reason: ReasonAlreadyRerun, copy: c,
			detail: "run-once copy " + c.PlanID + " made at " + c.made().Format(time.RFC3339) + " " + state}
	}
	failed := sh.failed[p.ID]
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

// decideAll decides for every plan, sharing the copies out among the plans
// that reach the copies' rules.
func decideAll(plans []*plan, copies []job, rl rules, l *ledger) []decision {
	out := make([]decision, len(plans))
	var rest []*plan
	at := map[string]int{}
	for i, p := range plans {
		if d, ok := decideFirst(p, rl); ok {
			out[i] = d
			continue
		}
		rest = append(rest, p)
		at[p.ID] = i
	}
	sh := shareOut(rest, copies, l)
	for _, p := range rest {
		out[at[p.ID]] = decideCopies(p, sh, rl)
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "(no status detail)"
	}
	return s
}
