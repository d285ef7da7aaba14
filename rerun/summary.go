package rerun

import (
	"slices"
	"time"
)

// Summary is the one-line JSON report of a run: the last line of stdout and
// the result file. Its field names are a public interface.
type Summary struct {
	Window Window `json:"window"`
	// Source is "system_activity" or "look:ID".
	Source string `json:"source"`
	DryRun bool   `json:"dry_run"`
	// FailedJobs is how many failed deliveries the source listed (System
	// Activity: failed jobs in the window; a Look: its rows).
	FailedJobs int `json:"failed_jobs"`
	// FailedPlans is how many distinct plans they belong to.
	FailedPlans int `json:"failed_plans"`
	// Rerun lists the plans re-run (or, in a dry run, that would be).
	Rerun []Rerun `json:"rerun"`
	// Skipped lists the plans that needed no re-run, with the reason.
	Skipped []Skip `json:"skipped"`
	// Failed lists the plans whose re-run failed or whose outcome is unknown.
	Failed []Failure `json:"failed"`
	// NotAttempted lists the plans left alone because the run was stopped.
	NotAttempted []string `json:"not_attempted"`
	// NeedsPerson lists the failed plans a re-run cannot help: permanent
	// failures and failures whose re-runs kept failing.
	NeedsPerson []Attention `json:"needs_person"`
	// InProgress lists the deliveries that started in the window and were
	// still running at the end of the run: without RERUN_WAIT a warning;
	// with it, outcome "running" (they were waited for in vain).
	InProgress []Progress `json:"in_progress"`
	// MaxActivityLag is the longest, in seconds, that a copy this run made
	// took to show in System Activity after run_once answered (as first
	// seen by a poll, so at most a poll interval late): what RERUN_CONFIRM
	// must cover. 0 when the run made no copy.
	MaxActivityLag float64 `json:"max_activity_lag_seconds"`
	// Error says why the run could not list the failures (exit code 3), or
	// was stopped.
	Error string `json:"error,omitempty"`
	// ExitCode is the outcome as an exit code: 0 (OK), 1 (a person is
	// needed), 3 (the failures could not be listed) or 4 (stopped before
	// the end), whatever code the process exits with. The caller sets it.
	ExitCode int `json:"exit_code"`
}

// Window is the half-open time range [Since, Until) in which the failed
// deliveries started.
type Window struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// Rerun is a plan that was re-run.
type Rerun struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	// NewPlanID is the run-once copy that Looker made; empty in a dry run.
	NewPlanID   string    `json:"new_plan_id,omitempty"`
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure"`
	// Note says how the re-run was confirmed when its answer was lost, or
	// why it was made after the run waited.
	Note string `json:"note,omitempty"`
	// Outcome is what became of the re-run's delivery, when the run waited
	// for it (RERUN_WAIT): delivered, failed_again or running; or
	// unconfirmed, when its copy never showed in System Activity.
	Outcome string `json:"outcome,omitempty"`
	// OutcomeDetail is Looker's status_detail of a re-run that failed again.
	OutcomeDetail string `json:"outcome_detail,omitempty"`
}

// Outcomes of a re-run's delivery.
const (
	OutcomeDelivered   = "delivered"
	OutcomeFailedAgain = "failed_again"
	OutcomeRunning     = "running"
	// OutcomeUnconfirmed: run_once answered with the copy, but System
	// Activity did not show it within RERUN_CONFIRM, so a run that follows
	// could not see it either.
	OutcomeUnconfirmed = "unconfirmed"
)

// failing reports an outcome that needs a person.
func failing(outcome string) bool {
	return outcome == OutcomeFailedAgain || outcome == OutcomeRunning || outcome == OutcomeUnconfirmed
}

// Progress is a delivery of a plan that started in the window and had not
// finished when the run ended.
type Progress struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	// Started is when the delivery started.
	Started time.Time `json:"started"`
	// Outcome is "running" when the run waited for it (RERUN_WAIT) in vain.
	Outcome string `json:"outcome,omitempty"`
	Detail  string `json:"detail"`
}

// Attention is a failed plan that needs a person rather than a re-run.
type Attention struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	// Owner is the plan owner's email, to tell whom to ask.
	Owner  string `json:"owner,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// Skip is a failed plan that was not re-run.
type Skip struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	// NewPlanID, Outcome and OutcomeDetail tell, for already_rerun, the copy
	// that covers the failure and, when the run waited for a copy still
	// running (RERUN_WAIT), what became of it, as for a Rerun.
	NewPlanID     string `json:"new_plan_id,omitempty"`
	Outcome       string `json:"outcome,omitempty"`
	OutcomeDetail string `json:"outcome_detail,omitempty"`
}

// Failure is a plan whose re-run failed.
type Failure struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	// Status is Looker's HTTP status, 0 when there was no answer.
	Status int    `json:"status,omitempty"`
	Error  string `json:"error"`
}

// OK reports whether every plan that needed a re-run got one, nothing needs
// a person, every copy this run made showed in System Activity, and nothing
// waited for failed again or is still running.
func (s *Summary) OK() bool {
	if s.Error != "" || len(s.Failed) != 0 || len(s.NotAttempted) != 0 || len(s.NeedsPerson) != 0 {
		return false
	}
	for _, r := range s.Rerun {
		if failing(r.Outcome) {
			return false
		}
	}
	for _, sk := range s.Skipped {
		if failing(sk.Outcome) {
			return false
		}
	}
	for _, ip := range s.InProgress {
		if failing(ip.Outcome) {
			return false
		}
	}
	return true
}

func newSummary(opts Options) *Summary {
	src := "system_activity"
	if opts.LookID != "" {
		src = "look:" + opts.LookID
	}
	return &Summary{
		Window:       Window{Since: opts.Since.UTC(), Until: opts.Until.UTC()},
		Source:       src,
		DryRun:       opts.DryRun,
		Rerun:        []Rerun{},
		Skipped:      []Skip{},
		Failed:       []Failure{},
		NotAttempted: []string{},
		NeedsPerson:  []Attention{},
		InProgress:   []Progress{},
	}
}

// NotRun returns the summary of a run that could not start, such as when the
// login failed.
func NotRun(opts Options, err error) *Summary {
	s := newSummary(opts)
	s.Error = err.Error()
	return s
}

// sort orders every list by plan id, so summaries compare line by line.
func (s *Summary) sort() {
	slices.SortFunc(s.Rerun, func(a, b Rerun) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(s.Skipped, func(a, b Skip) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(s.Failed, func(a, b Failure) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(s.NotAttempted, compareIDs)
	slices.SortFunc(s.NeedsPerson, func(a, b Attention) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(s.InProgress, func(a, b Progress) int { return compareIDs(a.PlanID, b.PlanID) })
}
