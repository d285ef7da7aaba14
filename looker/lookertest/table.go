package lookertest

import (
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
	// Filters is Looker's filters_string: the filters the content is run
	// with, as a URL query string (Region=EMEA&Date=7+days).
	Filters string
	// Dests are where the plan delivers, in Looker's order. When it is
	// empty they come from Destinations, one per address.
	Dests []Destination
	// Destinations is the comma-separated list of destination addresses,
	// System Activity's destination_addresses when Dests is empty (and
	// ignored when it is not). Empty too, the plan delivers to
	// "#reports-ID".
	Destinations string
	RunOnce      bool
	// Disabled is a plan whose schedule is switched off; run_once still
	// runs it, and its copy is enabled.
	Disabled bool
	Created  time.Time
	// Visible is when System Activity starts showing the plan, on the
	// fake's clock; zero, at once. The fake sets it on run-once copies and
	// SendNow's plans when SetActivityLag is on.
	Visible time.Time

	deleted bool
	updated time.Time // the last edit (EditPlan, DisablePlan, RenamePlan); zero, never
	dests   []dest    // Dests, or Destinations, resolved by the table
}

// Job is a row of Looker's scheduled_job table: one delivery attempt of a plan.
type Job struct {
	ID     string
	PlanID string
	// Status is "success", "failure", or "" while the job runs.
	Status  string
	Detail  string
	Created time.Time
	// Finalized is when the job ended: zero, or after the fake's now
	// (SetClock), while it runs. Until then System Activity shows no status, detail or
	// finalized time, whatever Status says.
	Finalized time.Time
	// Visible is when System Activity starts showing the job; zero, at once.
	// The fake sets it on run-once copies' jobs when SetActivityLag is on.
	Visible time.Time
}

// Outcome is what the job of a run-once copy ends with.
type Outcome struct {
	Status string // "success", "failure", or "" for running until FinishCopies
	Detail string
	// After is how long the job runs, showing no status, before it ends
	// with Status; zero ends it the moment it starts.
	After time.Duration
}

// table is what the fake serves: System Activity's scheduled plans and their
// jobs, saved Looks, and how run-once copies turn out. Server.mu guards it.
type table struct {
	plans     map[string]*Plan
	planOrder []string // plan ids as added: the order rows come out in
	jobs      []*Job
	looks     map[string][]map[string]any // the rows each saved Look answers
	// nextPlan, nextJob and nextDest are the last ids handed out.
	nextPlan, nextJob, nextDest int
	jobIDs                      map[int]bool         // job ids handed out
	maxRows                     int                  // the most rows a query answers
	queryZone                   *time.Location       // the Query Time Zone; nil honours query_timezone
	outcomes                    map[string][]Outcome // per plan, how its next copies' jobs end
	copies                      map[string][]string  // per plan, its run-once copies, oldest first
	keepCopyOrder               bool                 // copies list destinations as the original does
	omitted                     map[string]bool      // fields System Activity's rows lack
}

// AddPlan adds a scheduled plan and returns it with its ID set.
func (s *Server) AddPlan(p Plan) Plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.table.addPlan(p)
}

// AddJob adds a delivery attempt of an existing plan and returns it with its
// ID set. A job with a status and no Finalized time finishes when it starts;
// one with a Finalized time in the future runs, with no status, until then.
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

// DisablePlan switches a plan's schedule off, as a user pausing it does: an
// edit, like EditPlan's, that does nothing to a plan the fake does not have.
// System Activity shows it as scheduled_plan.enabled "No"; run_once still
// runs it.
func (s *Server) DisablePlan(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.editPlan(id, func(p *Plan) { p.Disabled = true })
}

// RenamePlan renames a plan, as a user editing a schedule does: an edit,
// like EditPlan's, that does nothing to a plan the fake does not have. Its
// jobs show the new name from then on, and its later copies carry it.
func (s *Server) RenamePlan(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.editPlan(id, func(p *Plan) { p.Name = name })
}

// AddLook adds a saved Look whose run answers rows.
func (s *Server) AddLook(id string, rows []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.looks[id] = rows
}

// addPlan fills in what p leaves unset and adds it, replacing any plan with
// its ID.
func (t *table) addPlan(p Plan) *Plan {
	t.fill(&p)
	t.insert(&p)
	return &p
}

// fill fills in what p leaves unset.
func (t *table) fill(p *Plan) {
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
	if p.Destinations == "" && len(p.Dests) == 0 {
		p.Destinations = "#reports-" + p.ID
	}
	if p.Created.IsZero() {
		p.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
}

// insert adds p as it is, with its destinations resolved, replacing any
// plan with its ID.
func (t *table) insert(p *Plan) {
	t.resolveDests(p, nil)
	if _, ok := t.plans[p.ID]; !ok {
		t.planOrder = append(t.planOrder, p.ID)
	}
	t.plans[p.ID] = p
}

// addJob gives j an ID if it has none and adds it. Looker numbers jobs in
// the order it starts them, and a test may add a morning's jobs in any
// order: the ID follows Created (its microseconds, made unique), so that
// ids order jobs as their starts do, as in Looker.
func (t *table) addJob(j Job) *Job {
	if j.ID == "" {
		id := t.nextJob + 1
		if !j.Created.IsZero() {
			id = int(j.Created.UnixMicro())
		}
		for t.jobIDs[id] {
			id++
		}
		t.nextJob = max(t.nextJob, id)
		t.jobIDs[id] = true
		j.ID = strconv.Itoa(id)
	}
	if j.Status != "" && j.Finalized.IsZero() {
		j.Finalized = j.Created
	}
	t.jobs = append(t.jobs, &j)
	return &j
}
