package rerun

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// This file keeps the books on run-once copies: which copy proves which
// plan's re-run. System Activity does not record which plan a copy was made
// from. A copy counts for a plan only when it delivers the same report
// (identity.go); plans that deliver the same report (look-alikes) form a
// group, and a group's copies are shared out among its failures, each copy
// to one failure at most.

// copyKey is what a run-once copy shares with the plan it was copied from, as
// far as System Activity shows: the owner, the content and the destination
// addresses (as a set). The name is left out: a plan renamed after its
// re-run must still know its copy. Plans and copies that share a key are
// told apart by their definitions.
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

// covers reports whether a copy delivers, or may still deliver, the report:
// it succeeded, is running, or has not started.
func (j job) covers() bool { return !j.hasJob() || j.Status == statusSuccess || j.Status == "" }

func byMade(a, b job) int {
	if c := a.made().Compare(b.made()); c != 0 {
		return c
	}
	return compareIDs(a.PlanID, b.PlanID)
}

// span is the window of failures and the window before it, which the books
// reach back to: a copy made in this window may be the re-run of a failure
// in the one before.
type span struct{ from, since, until time.Time }

func newSpan(since, until time.Time) span {
	return span{from: since.Add(-until.Sub(since)), since: since, until: until}
}

// ready returns the earliest a copy can be the re-run, made by this tool, of
// a failure at t outside the window: windows tile time from since, each as
// long as this one, and a window's run starts when the window ends. A copy
// made before then is a person's send of another failure.
func (w span) ready(t time.Time) time.Time {
	n := w.until.Sub(w.since)
	if t.Before(w.since) {
		return w.since
	}
	return w.since.Add((t.Sub(w.since)/n + 1) * n)
}

// books is what the copies say about the plans decided: the copy that
// covers each, the failed re-runs of its failure, or why it cannot be told.
type books struct {
	covering map[string]job   // plan id -> the copy that covers its failure
	failed   map[string][]job // plan id -> failed re-runs of its failure, oldest first
	unsure   map[string]doubt // plan id -> why a copy cannot be told apart from its re-run
}

// doubt is why a copy may or may not be a plan's re-run: a reason for a
// person, and its detail.
type doubt struct{ reason, detail string }

func newBooks() *books {
	return &books{covering: map[string]job{}, failed: map[string][]job{}, unsure: map[string]doubt{}}
}

// doubt records the first doubt about a plan's copies.
func (b *books) doubt(planID, reason, detail string) {
	if _, ok := b.unsure[planID]; !ok {
		b.unsure[planID] = doubt{reason, detail}
	}
}

// claimant is a plan's failure that a copy of its group may be the re-run of.
type claimant struct {
	p *plan
	// after: a copy made before it cannot be this failure's re-run.
	after time.Time
	// decided: the plan's failure is in the window, decided by this run;
	// otherwise it is another window's, counted so that its copies are not
	// taken for this window's.
	decided bool
	got     bool
}

// keep shares out the copies of one group: plans that deliver the same
// report (one plan, usually), with the copies that deliver it, oldest
// first. Each copy that covers goes to one failure made before it, in the
// order copies were made; a failure of another window takes it before one
// of this window, so that when there are fewer copies than failures, this
// window's failures are the ones left to re-run. Copies that failed are
// dealt, for the RERUN_MAX_ATTEMPTS cap, to the decided plan with fewest so
// far among those whose failure chain they may belong to. Covering copies
// are claimed in l.
func (b *books) keep(group []*plan, decided map[string]bool, copies []job, w span, rl rules, l *ledger) {
	var cls []*claimant
	for _, p := range group {
		switch {
		case decided[p.ID] && p.Failures > 0:
			cls = append(cls, &claimant{p: p, after: p.LastFailure, decided: true})
		case p.open() && !p.Disabled && !p.RunOnce && (rl.retryPermanent || rl.permanent.Permanent(p.lastOwnDetail) == ""):
			// Another window's failure that its run would re-run.
			cls = append(cls, &claimant{p: p, after: maxTime(p.lastOwnFailure, w.ready(p.lastOwnFailure))})
		}
	}
	slices.SortFunc(cls, func(a, b *claimant) int {
		return cmp.Or(cmpBool(a.decided, b.decided), a.after.Compare(b.after), compareIDs(a.p.ID, b.p.ID))
	})
	for _, c := range copies {
		if !c.covers() {
			continue
		}
		for _, cl := range cls {
			if cl.got || c.made().Before(cl.after) {
				continue
			}
			if cl.decided && !l.claim(c.PlanID, cl.p.ID) {
				continue
			}
			cl.got = true
			if cl.decided {
				b.covering[cl.p.ID] = c
			}
			break
		}
	}
	for _, c := range copies {
		if c.covers() {
			continue
		}
		var to *plan
		for _, cl := range cls {
			if cl.decided && !c.made().Before(chainStart(cl.p)) && (to == nil || len(b.failed[cl.p.ID]) < len(b.failed[to.ID])) {
				to = cl.p
			}
		}
		if to != nil {
			b.failed[to.ID] = append(b.failed[to.ID], c)
		}
	}
}

// chainStart is the failure the re-runs of p's latest failure were made
// for: its latest own failure not followed by an own success, or, when that
// is outside what the run read, the window's latest failure. Failed copies
// made since then are failed re-runs of it.
func chainStart(p *plan) time.Time {
	if p.open() && !p.lastOwnFailure.After(p.LastFailure) {
		return p.lastOwnFailure
	}
	if !p.firstCopyFailure.IsZero() && p.firstCopyFailure.After(p.lastOwnSuccess) {
		return p.firstCopyFailure
	}
	return p.LastFailure
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ledger is the run's record of copies: those System Activity showed when the
// run began, and which plan each claimed copy belongs to. A copy is claimed
// once: by the plan whose run_once answer named it, by the plan whose lost
// answer it proves, or by the plan the books shared it out to. It is safe
// for concurrent use.
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

// fresh returns the copies alike to p on System Activity's fields, made at or
// after its latest failure, that the run had not listed when it began and no
// plan has claimed, oldest first: after a lost answer, those that may prove
// p's call was acted on.
func (l *ledger) fresh(p *plan, copies []job) []job {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []job
	for _, c := range copies {
		if _, taken := l.claimed[c.PlanID]; c.RunOnce && c.key() == p.Key && c.PlanID != p.ID &&
			!c.made().Before(p.LastFailure) && !l.known[c.PlanID] && !taken {
			found = append(found, c)
		}
	}
	slices.SortFunc(found, byMade)
	return found
}
