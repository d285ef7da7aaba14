package lookertest

import (
	"slices"
	"strconv"
	"time"
)

// This file makes run-once copies and finishes deliveries: what run_once
// does to the table, the outcomes a test scripts for them, and what a test
// reads back (Reruns, Copies).

// RunOnceOutcome sets how the jobs of the next run-once copies of plan end,
// one outcome per copy in order; the last one repeats.
func (s *Server) RunOnceOutcome(planID string, outcomes ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.outcomes[planID] = outcomes
}

// FinishCopies ends at the fake's now, with o's Status and Detail, every
// run-once job of plan that is still running: those with no status and
// those whose Outcome.After has not yet passed.
func (s *Server) FinishCopies(planID string, o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, cp := range s.table.copies[planID] {
		for _, j := range s.table.jobs {
			if j.PlanID == cp && j.running(now) {
				j.Status, j.Detail, j.Finalized = o.Status, o.Detail, now
			}
		}
	}
}

// FinishJob ends job jobID at the fake's now with status and detail, as
// Looker does when a delivery it was running succeeds or fails: System
// Activity shows them from then on. A test may call it from AfterQuery, to
// end a job between two queries. It panics for a job the fake does not have.
func (s *Server) FinishJob(jobID, status, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.table.jobs {
		if j.ID == jobID {
			j.Status, j.Detail, j.Finalized = status, detail, s.now()
			return
		}
	}
	panic("lookertest: FinishJob of unknown job " + jobID)
}

// Reruns returns, per original plan id, how many run-once copies Looker made:
// how many times its report was delivered again.
func (s *Server) Reruns() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.table.copies))
	for id, cps := range s.table.copies {
		out[id] = len(cps)
	}
	return out
}

// Copies returns the ids of the run-once copies made of plan, oldest first.
func (s *Server) Copies(planID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.table.copies[planID])
}

// copyPlan does what Looker's run_once does to the table at now: it copies
// plan id (owner, content, name, filters, destinations, the latter in
// reverse unless KeepCopyOrder) into a new run-once plan, enabled whatever
// the original is, and launches it with the plan's next outcome. It
// reports false for a plan that does not exist or was deleted.
func (t *table) copyPlan(id string, now time.Time, lag func() time.Duration) (*Plan, bool) {
	orig, ok := t.plans[id]
	if !ok || orig.deleted {
		return nil, false
	}
	t.nextPlan++
	cp := &Plan{
		ID: strconv.Itoa(t.nextPlan), Name: orig.Name, UserID: orig.UserID, OwnerEmail: orig.OwnerEmail, OwnerName: orig.OwnerName,
		ContentTypeID: orig.ContentTypeID, Filters: orig.Filters, Dests: t.copyDests(orig),
	}
	cp.Destinations = cp.destinationAddresses()
	t.copies[id] = append(t.copies[id], cp.ID)

	o := Outcome{Status: "success"}
	if next := t.outcomes[id]; len(next) > 0 {
		o = next[0]
		if len(next) > 1 {
			t.outcomes[id] = next[1:]
		}
	}
	t.launch(cp, now, lag, o)
	return cp, true
}

// launch adds p as a run-once plan made at now and starts its job, which
// ends as o says. System Activity shows p lag() after now, and its job no
// earlier.
func (t *table) launch(p *Plan, now time.Time, lag func() time.Duration, o Outcome) {
	p.RunOnce, p.Created = true, now
	p.Visible = visibleAfter(now, lag())
	t.insert(p)
	j := Job{PlanID: p.ID, Status: o.Status, Detail: o.Detail, Created: now, Visible: visibleAfter(now, lag())}
	if j.Visible.Before(p.Visible) {
		j.Visible = p.Visible // the explore joins jobs to plans: no job shows before its plan
	}
	if o.Status != "" {
		j.Finalized = now.Add(o.After)
	}
	t.addJob(j)
}
