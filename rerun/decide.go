package rerun

import (
	"fmt"
	"slices"
	"time"
)

// Reasons a failed plan is not re-run.
const (
	ReasonLaterSuccess = "later_success"        // the plan's latest delivery, up to now, succeeded
	ReasonAlreadyRerun = "already_rerun"        // a run-once copy that delivers the same report, made after the failure, succeeded or is running
	ReasonRunOnce      = "one_off"              // the plan is itself a one-off (run-once) send
	ReasonDisabled     = "disabled"             // the plan is disabled: someone turned it off
	ReasonNotInWindow  = "no_failure_in_window" // the saved Look names it, System Activity has no failure of it in the window
)

// Reasons a failed plan needs a person instead of a re-run.
const (
	ReasonPermanent         = "permanent"          // its failure is one a re-run cannot fix
	ReasonAttemptsExhausted = "attempts_exhausted" // RERUN_MAX_ATTEMPTS re-runs of this failure failed already
	// ReasonUnsureCopy: a run-once copy alike on System Activity's fields
	// cannot be told apart from a re-run of it: the plan was edited after
	// the copy was made, or a definition cannot be read.
	ReasonUnsureCopy = "unsure_copy"
	// ReasonAmbiguousTime: a time the rules must compare falls in the hour
	// repeated when daylight saving ends, in the zone Looker answers in.
	ReasonAmbiguousTime = "ambiguous_time"
)

// plan is what the rules know of one scheduled plan that failed, or whose
// delivery was running, in the window.
type plan struct {
	ID         string
	Name       string
	OwnerEmail string
	Key        copyKey
	RunOnce    bool
	Disabled   bool
	// Failures counts the failed deliveries that started in the window: its
	// own jobs, and its run-once copies that failed (a copy is a delivery of
	// its plan).
	Failures    int
	LastFailure time.Time // start of the latest of them
	LastDetail  string
	Latest      job // latest own job up to now

	// lastFailure is the latest failure in the window, as a mark.
	lastFailure mark
	// lastOwnFailure and lastOwnSuccess are its latest own failed and
	// successful jobs that the run read (since the window began; a week
	// further back for a plan whose content has copies).
	lastOwnFailure, lastOwnSuccess mark
	lastOwnDetail                  string // of its latest own failure
	// lastCopySuccess is the latest of its copies read that succeeded,
	// for a plan no look-alike shares its copies with.
	lastCopySuccess mark
}

// open reports whether the plan's latest own failure has no own success
// after it.
func (p *plan) open() bool {
	return !p.lastOwnFailure.IsZero() && (p.lastOwnSuccess.IsZero() || cmpMark(p.lastOwnSuccess, p.lastOwnFailure) < 0)
}

// action is what a decision does with a plan.
type action int

const (
	// actIgnore: nothing failed and nothing runs; not worth a line.
	actIgnore action = iota
	// actRerun re-runs the plan once.
	actRerun
	// actSkip reports the plan under skipped with a reason.
	actSkip
	// actPerson reports the plan under needs_person with a reason.
	actPerson
	// actAwait follows a delivery of the plan that is running, when the
	// run waits for deliveries, and decides again when it ends; otherwise
	// it reports it in progress.
	actAwait
)

// decision is what to do with one plan, and why. Build it with decide; the
// runner reads it in one place (runner.take).
type decision struct {
	plan   *plan
	act    action
	reason string // for actSkip and actPerson
	detail string
	// copy is the run-once copy that already covers the failure
	// (already_rerun).
	copy job
}

// decide is the one constructor of a decision: act on p, for reason (a
// Reason constant, for actSkip and actPerson), saying detail.
func decide(p *plan, act action, reason, detail string) decision {
	return decision{plan: p, act: act, reason: reason, detail: detail}
}

// rules are the settings decide applies beyond the fixed rules.
type rules struct {
	maxFailedReruns int // 0: no cap
	permanent       *Classifier
	retryPermanent  bool
	// look: the plans come from a saved Look, which names them whether or
	// not they failed in the window.
	look bool
}

func (o Options) rules() rules {
	return rules{maxFailedReruns: o.MaxFailedReruns, permanent: o.Permanent, retryPermanent: o.RetryPermanent, look: o.LookID != ""}
}

// gather folds the own jobs of the candidate plans (and of the plans alike
// to copies) into one plan each. Failures count only when they started in
// the window.
func gather(ids []string, since, until time.Time, jobLists ...[]job) map[string]*plan {
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
		switch j.Status {
		case statusFailure:
			if cmpMark(j.mark(), p.lastOwnFailure) > 0 {
				p.lastOwnFailure, p.lastOwnDetail = j.mark(), j.Detail
			}
			if !j.Created.Before(since) && j.Created.Before(until) {
				p.addFailure(*j)
			}
		case statusSuccess:
			if cmpMark(j.mark(), p.lastOwnSuccess) > 0 {
				p.lastOwnSuccess = j.mark()
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
	return plans
}

// addFailure counts a failed delivery of p in the window: its own job or a
// copy's.
func (p *plan) addFailure(j job) {
	p.Failures++
	if cmpMark(j.mark(), p.lastFailure) >= 0 {
		p.LastFailure, p.lastFailure, p.LastDetail = j.Created, j.mark(), j.Detail
	}
}

// sorted returns the plans in ids' order of plan id.
func sorted(plans map[string]*plan, ids []string) []*plan {
	out := make([]*plan, 0, len(ids))
	for _, id := range ids {
		out = append(out, plans[id])
	}
	slices.SortFunc(out, func(a, b *plan) int { return compareIDs(a.ID, b.ID) })
	return out
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
		return decide(p, actIgnore, "", ""), true
	case p.RunOnce:
		return decide(p, actSkip, ReasonRunOnce, "a one-off send is not re-sent"), true
	case p.Disabled:
		return decide(p, actSkip, ReasonDisabled, "the plan is disabled in Looker: someone turned it off since it failed"), true
	case running && (p.Failures == 0 || cmpMark(p.Latest.mark(), p.lastFailure) > 0):
		// A delivery in the window, or a later one (the next window's),
		// is running: if it succeeds the report arrived, if it fails it
		// is re-run once, for this failure and its own.
		return decide(p, actAwait, "", "a delivery started at "+p.Latest.Created.Format(time.RFC3339)+" is still running"), true
	case p.Failures == 0:
		return decide(p, actSkip, ReasonNotInWindow, "no failed delivery of it started in the window"), true
	case p.Latest.Status == statusSuccess && cmpMark(p.Latest.mark(), p.lastFailure) > 0:
		return decide(p, actSkip, ReasonLaterSuccess, "delivered at "+p.Latest.Created.Format(time.RFC3339)), true
	}
	return decision{}, false
}

// decideCopies applies the rules that read the run-once copies, as the books
// share them among look-alike plans.
func decideCopies(p *plan, b *books, rl rules) decision {
	// A copy near the failure in the repeated hour may be before or after
	// it: even one that reads as covering proves nothing.
	if why, ok := b.unsure[p.ID]; ok && why.reason == ReasonAmbiguousTime {
		return decide(p, actPerson, why.reason, why.detail)
	}
	if c, ok := b.covering[p.ID]; ok {
		state := "succeeded"
		if c.Status != statusSuccess {
			state = "is still running"
		}
		d := decide(p, actSkip, ReasonAlreadyRerun, "run-once copy "+c.PlanID+" made at "+c.made().Format(time.RFC3339)+" "+state)
		d.copy = c
		return d
	}
	if why, ok := b.unsure[p.ID]; ok {
		return decide(p, actPerson, why.reason, why.detail)
	}
	failed := b.failed[p.ID]
	if rl.maxFailedReruns > 0 && len(failed) >= rl.maxFailedReruns {
		last := failed[len(failed)-1]
		return decide(p, actPerson, ReasonAttemptsExhausted, fmt.Sprintf("%d re-runs since it last delivered failed (its latest failure at %s); the last: %s",
			len(failed), p.LastFailure.Format(time.RFC3339), orUnknown(last.Detail)))
	}
	if !rl.retryPermanent {
		details := []string{p.LastDetail}
		for _, c := range failed {
			details = append(details, c.Detail)
		}
		for _, d := range details {
			if m := rl.permanent.Permanent(d); m != "" {
				return decide(p, actPerson, ReasonPermanent, fmt.Sprintf("a re-run cannot fix %q: %s", m, d))
			}
		}
	}
	return decide(p, actRerun, "", "")
}

// decideAll decides for every plan: the copies' rules for those the first
// rules leave, with the books kept on the copies.
func decideAll(plans []*plan, b *books, rl rules) []decision {
	out := make([]decision, len(plans))
	for i, p := range plans {
		if d, ok := decideFirst(p, rl); ok {
			out[i] = d
			continue
		}
		out[i] = decideCopies(p, b, rl)
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "(no status detail)"
	}
	return s
}
