package lookertest

import (
	"slices"
	"strconv"
	"time"
)

// Plan is a row of Looker's scheduled_plan table.
type Plan struct {
	ID     string
	Name   string
	UserID string
	// OwnerEmail and OwnerName are the owner's user.email and user.name.
	OwnerEmail, OwnerName string
	// ContentTypeID is "look::ID" or "dashboard::ID".
	ContentTypeID string
	// Destinations is the comma-separated list of destination addresses.
	Destinations string
	RunOnce      bool
	Created      time.Time

	deleted bool
}

// Job is a row of Looker's scheduled_job table: one delivery attempt of a plan.
type Job struct {
	ID     string
	PlanID string
	// Status is "success", "failure", or "" while the job runs.
	Status    string
	Detail    string
	Created   time.Time
	Finalized time.Time // zero while the job runs
}

// Outcome is what the job of a run-once copy ends with.
type Outcome struct {
	Status string // "success", "failure", or "" for still running
	Detail string
}

// table is what the fake serves: System Activity's scheduled plans and their
// jobs, saved Looks, and how run-once copies turn out. Server.mu guards it.
type table struct {
	plans     map[string]*Plan
	planOrder []string // plan ids as added: the order rows come out in
	jobs      []*Job
	looks     map[string][]map[string]any // the rows each saved Look answers
	// nextPlan and nextJob are the last ids handed out.
	nextPlan, nextJob int
	maxRows           int                  // the most rows a query answers
	outcomes          map[string][]Outcome // per plan, how its next copies' jobs end
	copies            map[string][]string  // per plan, its run-once copies, oldest first
}

// AddPlan adds a scheduled plan and returns it with its ID set.
func (s *Server) AddPlan(p Plan) Plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.table.addPlan(p)
}

// AddJob adds a delivery attempt of an existing plan and returns it with its
// ID set. A job with a status and no Finalized time finishes when it starts.
func (s *Server) AddJob(j Job) Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.table.plans[j.PlanID]; !ok {
		panic("lookertest: AddJob for unknown plan " + j.PlanID)
	}
	return *s.table.addJob(j)
}

// AddFailure adds a failed delivery of plan planID at the time at, creating
// the plan if needed.
func (s *Server) AddFailure(planID string, at time.Time, detail string) {
	s.addDelivery(Job{PlanID: planID, Status: "failure", Detail: detail, Created: at})
}

// AddSuccess adds a successful delivery of plan planID at the time at,
// creating the plan if needed.
func (s *Server) AddSuccess(planID string, at time.Time) {
	s.addDelivery(Job{PlanID: planID, Status: "success", Created: at})
}

func (s *Server) addDelivery(j Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.table.plans[j.PlanID]; !ok {
		s.table.addPlan(Plan{ID: j.PlanID})
	}
	s.table.addJob(j)
}

// DeletePlan removes a plan, as a user deleting a schedule does; its jobs stay
// in System Activity's history.
func (s *Server) DeletePlan(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.table.plans[id]; ok {
		p.deleted = true
	}
}

// AddLook adds a saved Look whose run answers rows.
func (s *Server) AddLook(id string, rows []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.looks[id] = rows
}

// RunOnceOutcome sets how the jobs of the next run-once copies of plan end,
// one outcome per copy in order; the last one repeats.
func (s *Server) RunOnceOutcome(planID string, outcomes ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.outcomes[planID] = outcomes
}

// FinishCopies ends every still-running run-once job of plan with o.
func (s *Server) FinishCopies(planID string, o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cp := range s.table.copies[planID] {
		for _, j := range s.table.jobs {
			if j.PlanID == cp && j.Status == "" {
				j.Status, j.Detail, j.Finalized = o.Status, o.Detail, time.Now().UTC()
			}
		}
	}
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

// addPlan fills in what p leaves unset and adds it, replacing any plan with
// its ID.
func (t *table) addPlan(p Plan) *Plan {
	if p.ID == "" {
		t.nextPlan++
		p.ID = strconv.Itoa(t.nextPlan)
	}
	if p.Name == "" {
		p.Name = "Plan " + p.ID
	}
	if p.UserID == "" {
		p.UserID = "7"
	}
	if p.ContentTypeID == "" {
		p.ContentTypeID = "look::" + p.ID
	}
	if p.Destinations == "" {
		p.Destinations = "#reports-" + p.ID
	}
	if p.Created.IsZero() {
		p.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if _, ok := t.plans[p.ID]; !ok {
		t.planOrder = append(t.planOrder, p.ID)
	}
	t.plans[p.ID] = &p
	return &p
}

// addJob gives j an ID if it has none and adds it.
func (t *table) addJob(j Job) *Job {
	if j.ID == "" {
		t.nextJob++
		j.ID = strconv.Itoa(t.nextJob)
	}
	if j.Status != "" && j.Finalized.IsZero() {
		j.Finalized = j.Created
	}
	t.jobs = append(t.jobs, &j)
	return &j
}

// copyPlan does what Looker's run_once does to the table: it copies plan id
// into a new run-once plan and starts the copy's job, which ends with the
// plan's next outcome. It reports false for a plan that does not exist or
// was deleted.
func (t *table) copyPlan(id string) (*Plan, bool) {
	orig, ok := t.plans[id]
	if !ok || orig.deleted {
		return nil, false
	}
	now := time.Now().UTC()
	cp := t.addPlan(Plan{
		Name: orig.Name, UserID: orig.UserID, OwnerEmail: orig.OwnerEmail, OwnerName: orig.OwnerName,
		ContentTypeID: orig.ContentTypeID, Destinations: orig.Destinations, RunOnce: true, Created: now,
	})
	t.copies[id] = append(t.copies[id], cp.ID)

	o := Outcome{Status: "success"}
	if next := t.outcomes[id]; len(next) > 0 {
		o = next[0]
		if len(next) > 1 {
			t.outcomes[id] = next[1:]
		}
	}
	t.addJob(Job{PlanID: cp.ID, Status: o.Status, Detail: o.Detail, Created: now})
	return cp, true
}
