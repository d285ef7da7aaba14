package rerun

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// This file keeps the books on run-once copies: which copy proves which
// plan's re-run. System Activity does not record which plan a copy was made
// from, only what the copy shares with it, so plans alike in all of that
// (look-alikes) form a group, and a group's copies are shared out among its
// plans, each copy to one plan at most.

// copyKey is what a run-once copy shares with the plan it was copied from, as
// far as System Activity shows: scheduled_plan_run_once_by_id copies the
// owner, content and destinations. The name is left out: a plan renamed
// after its re-run must still know its copy.
type copyKey struct{ owner, content, dests string }

func (j job) key() copyKey { return copyKey{j.Owner, j.Content, j.Dests} }

// made is when a copy was made: its plan's creation, or its first job's
// start when System Activity does not show the former.
func (j job) made() time.Time {
	if j.PlanCreated.IsZero() {
		return j.Created
	}
	return j.PlanCreated
}

// isCopyOf reports whether c looks like a run-once copy of p made at or
// after p's latest failure.
func isCopyOf(c job, p *plan) bool {
	return c.RunOnce && c.key() == p.Key && c.PlanID != p.ID && !c.made().Before(p.LastFailure)
}

// ledger is the run's record of copies: those System Activity showed when the
// run began, and which plan each claimed copy belongs to. A copy is claimed
// once: by the plan whose run_once answer named it, by the plan whose lost
// answer it proves, or by the plan an earlier copy was shared out to. It is
// safe for concurrent use.
type ledger struct {
	mu      sync.Mutex
	known   map[string]bool   // copy ids listed before this run re-ran anything
	claimed map[string]string // copy id -> plan id
}

func newLedger(copies []job) *ledger {
	l := &ledger{known: map[string]bool{}, claimed: map[string]string{}}
	for _, c := range copies {
		l.known[c.PlanID] = true
	}
	return l
}

// claim gives copy id to plan planID; it reports false when another plan has
// it already.
func (l *ledger) claim(id, planID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if owner, ok := l.claimed[id]; ok && owner != planID {
		return false
	}
	l.claimed[id] = planID
	return true
}

// claimNew claims for p the oldest copy of it among copies that the run had
// not listed when it began and that no plan has claimed: after a lost
// answer, the one copy that can prove p's call was acted on.
func (l *ledger) claimNew(p *plan, copies []job) (job, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []job
	for _, c := range copies {
		if _, taken := l.claimed[c.PlanID]; isCopyOf(c, p) && !l.known[c.PlanID] && !taken {
			found = append(found, c)
		}
	}
	if len(found) == 0 {
		return job{}, false
	}
	c := slices.MinFunc(found, byMade)
	l.claimed[c.PlanID] = p.ID
	return c, true
}

func byMade(a, b job) int {
	if c := a.made().Compare(b.made()); c != 0 {
		return c
	}
	return compareIDs(a.PlanID, b.PlanID)
}

// shares is what the existing copies say about each plan: the copy that
// covers it (succeeded, running or not started), and the failed re-runs of
// its failure.
type shares struct {
	covering map[string]job   // plan id -> its covering copy
	failed   map[string][]job // plan id -> failed copies, oldest first
}

// shareOut shares the copies among the plans. Within a group of look-alikes,
// plans in the order of their latest failure each take the oldest covering
// copy made at or after it that no other plan took, so N failed plans need N
// copies; a copy covers one plan at most. Failed copies are dealt the same
// way, each to the plan it may belong to that has the fewest so far: across
// runs, copies of look-alikes cannot be told apart, so they are counted per
// group. Covering copies are claimed in l.
func shareOut(plans []*plan, copies []job, l *ledger) shares {
	sh := shares{covering: map[string]job{}, failed: map[string][]job{}}
	groups := map[copyKey][]*plan{}
	for _, p := range plans {
		groups[p.Key] = append(groups[p.Key], p)
	}
	byKey := map[copyKey][]job{}
	for _, c := range copies {
		if _, ok := groups[c.key()]; ok && c.RunOnce {
			byKey[c.key()] = append(byKey[c.key()], c)
		}
	}
	for key, group := range groups {
		slices.SortFunc(group, func(a, b *plan) int {
			return cmp.Or(a.LastFailure.Compare(b.LastFailure), compareIDs(a.ID, b.ID))
		})
		cs := byKey[key]
		slices.SortFunc(cs, byMade)
		taken := map[string]bool{}
		for _, p := range group {
			for _, c := range cs {
				if !taken[c.PlanID] && c.covers() && isCopyOf(c, p) && l.claim(c.PlanID, p.ID) {
					taken[c.PlanID] = true
					sh.covering[p.ID] = c
					break
				}
			}
		}
		for _, c := range cs {
			if c.Status != statusFailure {
				continue
			}
			var to *plan
			for _, p := range group {
				if isCopyOf(c, p) && (to == nil || len(sh.failed[p.ID]) < len(sh.failed[to.ID])) {
					to = p
				}
			}
			if to != nil {
				sh.failed[to.ID] = append(sh.failed[to.ID], c)
			}
		}
	}
	return sh
}

// covers reports whether a copy delivers, or may still deliver, the report:
// it succeeded, is running, or has not started.
func (j job) covers() bool { return !j.hasJob() || j.Status == statusSuccess || j.Status == "" }
