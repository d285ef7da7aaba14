package rerun

import (
	"cmp"
	"slices"
	"strings"
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
// addresses (as a set). Plans that deliver the same report share it, so the
// sender re-runs plans of one key one after another. Which copy is whose is
// told by content (a copy's owner and addresses may be a plan's before an
// edit) and then by definitions (identity.go).
type copyKey struct{ ownerID, content, dests string }

func (j job) key() copyKey { return copyKey{j.OwnerID, j.Content, j.Dests} }

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

// span is how far back a run reads copies: from the window before this one
// (from), where every run's list of copies begins, and, for the plans of a
// copied content, their copies and deliveries (back): a copy made in this
// window may be the late re-run of a failure days before, in a catch-up.
type span struct{ back, from time.Time }

// lookBack is how far before the window the books read a plan alike to a
// copy: the longest catch-up of missed runs they see through, and how far
// back failed re-runs count toward RERUN_MAX_ATTEMPTS.
const lookBack = 7 * 24 * time.Hour

func newSpan(since, until time.Time) span {
	return span{back: since.Add(-lookBack), from: since.Add(-until.Sub(since))}
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
	after mark
	// decided: the plan's failure is in the window and goes to the copies'
	// rules in this run; otherwise it is another window's failure, counted
	// so that its copies are not taken for this window's.
	decided bool
}

// claimants lists the failures of a group that want a copy: this window's
// that the first rules leave to the copies' rules, and every open failure
// of another window (no own success after it) that a re-run could fix:
// whether its run re-ran it cannot be told from what the plan is now
// (disabled since, or delivering again), so it counts.
func claimants(group []*plan, decided map[string]bool, rl rules) []*claimant {
	var cls []*claimant
	for _, p := range group {
		if decided[p.ID] && p.Failures > 0 {
			if _, first := decideFirst(p, rl); !first {
				cls = append(cls, &claimant{p: p, after: p.lastFailure, decided: true})
			}
			continue
		}
		if decided[p.ID] || p.RunOnce || !p.open() || (!rl.retryPermanent && rl.permanent.Permanent(p.lastOwnDetail) != "") {
			continue
		}
		cls = append(cls, &claimant{p: p, after: p.lastOwnFailure})
	}
	slices.SortFunc(cls, func(a, b *claimant) int {
		return cmp.Or(cmpMark(a.after, b.after), compareIDs(a.p.ID, b.p.ID))
	})
	return cls
}

// share gives each covering copy, in the order they were made, to one
// failure made before it that has none yet: first to this window's failures
// when decidedFirst, else first to other windows'. Either way as many
// failures get a copy as can; the two orders bound how many of this
// window's do. A reserved copy (given to another window's failure by an
// earlier reckoning) goes to this window's failures only when decidedFirst.
func share(cls []*claimant, copies []job, decidedFirst bool, reserved func(job) bool) map[*claimant]job {
	got := map[*claimant]job{}
	for _, c := range copies {
		if !c.covers() {
			continue
		}
		var pick *claimant
		for _, cl := range cls {
			if _, has := got[cl]; has || cmpMark(c.madeMark(), cl.after) < 0 || (cl.decided && !decidedFirst && reserved(c)) {
				continue
			}
			if pick == nil || (cl.decided == decidedFirst && pick.decided != decidedFirst) {
				pick = cl
			}
		}
		if pick != nil {
			got[pick] = c
		}
	}
	return got
}

// keep shares out the copies of one group: plans that deliver the same
// report (one plan, usually), with the copies that deliver it, oldest
// first. A copy covers one failure made before it, never two. Where the
// copies cannot all be told apart between this window's failures and
// another window's (a look-alike whose run came late, in a backfill, made a
// copy after this window ended; or an earlier send of this run did),
// this window's failures that may or may not have their re-run go to a
// person (unsure_copy): re-running them could deliver twice, skipping them
// could lose them. Copies that failed are dealt, for the RERUN_MAX_ATTEMPTS
// cap, to the decided plan with fewest so far among those whose failure
// chain they may belong to. The copies given are claimed in l: this
// window's under the plan's id, another window's marked as such.
func (b *books) keep(group []*plan, decided map[string]bool, copies []job, rl rules, l *claims) {
	cls := claimants(group, decided, rl)
	var usable []job
	for _, c := range copies {
		if holder, ok := l.holder(c.PlanID); !ok || isReserved(holder) || slices.ContainsFunc(cls, func(cl *claimant) bool { return cl.p.ID == holder }) {
			usable = append(usable, c)
		}
	}
	reserved := func(c job) bool { holder, _ := l.holder(c.PlanID); return isReserved(holder) }
	most := share(cls, usable, true, reserved)
	least := share(cls, usable, false, reserved)
	unsure := 0
	for cl := range most {
		if cl.decided {
			unsure++
		}
	}
	for cl := range least {
		if cl.decided {
			unsure--
		}
	}
	// The copies this window's failures may not own, latest first.
	var mine []*claimant
	for _, cl := range cls {
		if _, ok := most[cl]; ok && cl.decided {
			mine = append(mine, cl)
		}
	}
	slices.SortFunc(mine, func(a, b *claimant) int { return byMade(most[b], most[a]) })
	for _, cl := range mine {
		c := most[cl]
		if unsure > 0 && contested(c, cls, reserved) {
			unsure--
			b.doubt(cl.p.ID, ReasonUnsureCopy, "run-once copy "+c.PlanID+" made at "+c.made().Format(time.RFC3339)+
				" delivers this report, but may be the re-run of a look-alike's failure in another window (a plan that delivers the same report): "+
				"whether this failure was re-run cannot be told; check the deliveries of the look-alikes in Looker")
			continue
		}
		l.claim(c.PlanID, cl.p.ID)
		b.covering[cl.p.ID] = c
	}
	for cl, c := range most {
		if !cl.decided {
			l.claim(c.PlanID, reservedFor(cl.p.ID))
		}
	}
	for _, c := range copies {
		if c.covers() {
			continue
		}
		var to *plan
		for _, cl := range cls {
			if cl.decided && cmpMark(c.madeMark(), chainStart(cl.p)) >= 0 && (to == nil || len(b.failed[cl.p.ID]) < len(b.failed[to.ID])) {
				to = cl.p
			}
		}
		if to != nil {
			b.failed[to.ID] = append(b.failed[to.ID], c)
		}
	}
}

// contested reports whether a copy may be another window's: reserved for
// one, or made late enough for one of the claimants of other windows.
func contested(c job, cls []*claimant, reserved func(job) bool) bool {
	if reserved(c) {
		return true
	}
	for _, cl := range cls {
		if !cl.decided && cmpMark(c.madeMark(), cl.after) >= 0 {
			return true
		}
	}
	return false
}

// A copy reserved for another window's failure is claimed under this mark.
const reservedMark = "another window's failure of plan "

func reservedFor(planID string) string { return reservedMark + planID }

func isReserved(holder string) bool { return strings.HasPrefix(holder, reservedMark) }

// chainStart is when p last delivered, as far as the run read (its own
// success, or a copy of it that succeeded): the failed copies made since are
// failed re-runs of its failures, however many windows they span. Zero
// when the run read no delivery: every failed copy read counts.
func chainStart(p *plan) mark {
	if cmpMark(p.lastCopySuccess, p.lastOwnSuccess) > 0 {
		return p.lastCopySuccess
	}
	return p.lastOwnSuccess
}
