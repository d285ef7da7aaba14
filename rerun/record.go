package rerun

import (
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
)

// This file writes what the run does into the summary and the log: the one
// place a decision is read (take), and an entry for each list.

// waits reports whether the run follows deliveries until they end.
func (r *runner) waits() bool { return r.opts.Wait > 0 && !r.opts.DryRun }

// take carries out decision d as far as the summary goes: a skip, a plan
// for a person, a delivery in progress. It returns what is left for the
// caller to do: actRerun (send it) or actIgnore (nothing). A delivery to
// follow is kept for watch (r.awaited). Before the run begins to watch, a
// running copy that covers the plan is followed too, when the run waits.
func (r *runner) take(d decision) action {
	p := d.plan
	switch d.act {
	case actRerun:
		return actRerun
	case actAwait:
		if r.waits() {
			r.mu.Lock()
			r.awaited = append(r.awaited, d)
			r.mu.Unlock()
			break
		}
		r.inProgress(p, p.Latest.Created, d.detail)
	case actPerson:
		r.needsPerson(NeedsPerson{PlanID: p.ID, Name: p.Name, Content: p.Key.content, OwnerEmail: p.OwnerEmail, Reason: d.reason, Detail: d.detail})
	case actSkip:
		sk := Skip{PlanID: p.ID, Name: p.Name, OwnerEmail: p.OwnerEmail, Content: p.Key.content, Reason: d.reason, Detail: d.detail, NewPlanID: d.copy.PlanID}
		switch {
		case d.copy.PlanID == "" || d.copy.Status != "":
		case r.waits() && !r.watching:
			sk.Outcome = OutcomeRunning // an earlier copy: waited for as this run's own
		case d.copy.made().Before(r.opts.Until):
			// Not waited for, and if it fails its failure is this
			// window's: no later run would look at it.
			sk.Outcome, sk.OutcomeDetail = OutcomeRunning, "the copy made at "+d.copy.made().Format(time.RFC3339)+
				" was still running, and the run did not follow it: if it failed, no later run re-runs the plan; check it in Looker"
		}
		if d.reason == ReasonNotInWindow {
			r.log.Warn().Str("plan_id", p.ID).Str("name", p.Name).Msg("the saved Look lists a plan with no failed delivery in the window: not re-run")
		}
		r.skip(sk)
	}
	return actIgnore
}

// record adds a re-run and the copy it made, and returns the re-run's index
// in sum.Rerun.
func (r *runner) record(rr Resent, c madeCopy) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Rerun = append(r.sum.Rerun, rr)
	c.rerun = len(r.sum.Rerun) - 1
	r.made = append(r.made, c)
	return c.rerun
}

func (r *runner) skip(sk Skip) {
	r.log.Info().Str("plan_id", sk.PlanID).Str("name", sk.Name).Str("reason", sk.Reason).Str("detail", sk.Detail).Msg("skipped")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Skipped = append(r.sum.Skipped, sk)
}

func (r *runner) needsPerson(a NeedsPerson) {
	r.log.Warn().Str("plan_id", a.PlanID).Str("name", a.Name).Str("owner", a.OwnerEmail).Str("reason", a.Reason).Str("detail", a.Detail).Msg("needs a person")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.NeedsPerson = append(r.sum.NeedsPerson, a)
}

// inProgress reports a delivery of p, started at started, still running
// when the run does not wait for it. One that started after the window is
// the next window's to examine; one that started in it is no later run's:
// a person is needed to see how it ends.
func (r *runner) inProgress(p *plan, started time.Time, detail string) {
	ip := InProgress{PlanID: p.ID, Name: p.Name, OwnerEmail: p.OwnerEmail, Content: p.Key.content, Started: started, Detail: detail}
	log := r.log.Warn()
	if started.Before(r.opts.Until) {
		ip.Outcome = OutcomeRunning
		ip.Detail += ", started in the window, and the run does not wait for deliveries: if it fails, no later run re-runs it; check it in Looker (a run that waits for deliveries follows such ones)"
		log = r.log.Error()
	} else {
		ip.Detail += ", started after the window: if it fails, the run of the window that holds its start re-runs the plan"
	}
	log.Str("plan_id", p.ID).Str("name", p.Name).Time("started", started).Msg("a delivery is still running and the run does not wait for it")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.InProgress = append(r.sum.InProgress, ip)
}

func (r *runner) done(rr Resent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Rerun = append(r.sum.Rerun, rr)
}

func (r *runner) notAttempted(p *plan, why string) {
	r.log.Warn().Str("plan_id", p.ID).Str("name", p.Name).Str("why", why).Msg("not attempted")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.NotAttempted = append(r.sum.NotAttempted, p.ID)
}

func (r *runner) fail(log zerolog.Logger, p *plan, err error, note string) {
	f := Failure{PlanID: p.ID, Name: p.Name, OwnerEmail: p.OwnerEmail, Content: p.Key.content, Error: err.Error()}
	var lerr *looker.Error
	if errors.As(err, &lerr) {
		f.Status = lerr.StatusCode
		if lerr.StatusCode == http.StatusNotFound {
			f.Error = "the plan no longer exists (deleted since it failed?): " + f.Error
		}
	}
	if note != "" {
		f.Error += ": " + note
	}
	log.Error().Err(err).Int("status", f.Status).Str("note", note).Msg("re-run failed")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Failed = append(r.sum.Failed, f)
}
