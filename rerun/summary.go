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
	// LookerURL is the Looker web address the links are relative to: an
	// entry's content "dashboard::9" is LookerURL + "/dashboards/9". The
	// caller sets it; empty when unknown.
	LookerURL string `json:"looker_url,omitempty"`
	DryRun    bool   `json:"dry_run"`
	// FailedJobs is how many failed deliveries the source listed (System
	// Activity: failed jobs in the window; a Look: its rows).
	FailedJobs int `json:"failed_jobs"`
	// FailedPlans is how many distinct plans they belong to.
	FailedPlans int `json:"failed_plans"`
	// Rerun lists the plans re-run (or, in a dry run, that would be).
	Rerun []Resent `json:"rerun"`
	// Skipped lists the plans that needed no re-run, with the reason.
	Skipped []Skip `json:"skipped"`
	// Failed lists the plans whose re-run failed or whose outcome is unknown.
	Failed []Failure `json:"failed"`
	// NotAttempted lists the plans left alone because the run was stopped.
	NotAttempted []string `json:"not_attempted"`
	// NeedsPerson lists the failed plans a re-run cannot help: permanent
	// failures and failures whose re-runs kept failing.
	NeedsPerson []NeedsPerson `json:"needs_person"`
	// InProgress lists the deliveries that started in the window and were
	// still running at the end of the run: without RERUN_WAIT a warning;
	// with it, outcome "running" (they were waited for in vain).
	InProgress []InProgress `json:"in_progress"`
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

// Resent is a plan that was re-run (or, in a dry run, would be).
type Resent struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	// OwnerEmail is the plan owner's email, to tell whom to ask; empty when
	// System Activity did not name one.
	OwnerEmail string `json:"owner,omitempty"`
	// Content is the plan's content as System Activity names it
	// (scheduled_plan.content_type_id: "look::3", "dashboard::9",
	// "dashboard::model::name"), to link the report in Looker; empty when
	// the run did not read it.
	Content string `json:"content,omitempty"`
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

// undelivered reports an outcome that is not a delivery the run saw.
func undelivered(outcome string) bool {
	return outcome == OutcomeFailedAgain || outcome == OutcomeRunning || outcome == OutcomeUnconfirmed
}

// Progress is a delivery of a plan that started in the window and had not
// finished when the run ended.
type InProgress struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	// OwnerEmail is the plan owner's email, to tell whom to ask; empty when
	// System Activity did not name one.
	OwnerEmail string `json:"owner,omitempty"`
	// Content is the plan's content as System Activity names it
	// (scheduled_plan.content_type_id: "look::3", "dashboard::9",
	// "dashboard::model::name"), to link the report in Looker; empty when
	// the run did not read it.
	Content string `json:"content,omitempty"`
	// Started is when the delivery started.
	Started time.Time `json:"started"`
	// Outcome is "running" when the run waited for it (RERUN_WAIT) in vain.
	Outcome string `json:"outcome,omitempty"`
	Detail  string `json:"detail"`
}

// Attention is a failed plan that needs a person rather than a re-run.
type NeedsPerson struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	// Content is the plan's content as System Activity names it
	// (scheduled_plan.content_type_id: "look::3", "dashboard::9",
	// "dashboard::model::name"), to link the report in Looker; empty when
	// the run did not read it.
	Content string `json:"content,omitempty"`
	// OwnerEmail is the plan owner's email, to tell whom to ask.
	OwnerEmail string `json:"owner,omitempty"`
	Reason     string `json:"reason"`
	Detail     string `json:"detail"`
}

// Skip is a failed plan that was not re-run.
type Skip struct {
	PlanID string `json:"plan_id"`
	Name   string `json:"name,omitempty"`
	// OwnerEmail is the plan owner's email, to tell whom to ask; empty when
	// System Activity did not name one.
	OwnerEmail string `json:"owner,omitempty"`
	// Content is the plan's content as System Activity names it
	// (scheduled_plan.content_type_id: "look::3", "dashboard::9",
	// "dashboard::model::name"), to link the report in Looker; empty when
	// the run did not read it.
	Content string `json:"content,omitempty"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail,omitempty"`
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
	// OwnerEmail is the plan owner's email, to tell whom to ask; empty when
	// System Activity did not name one.
	OwnerEmail string `json:"owner,omitempty"`
	// Content is the plan's content as System Activity names it
	// (scheduled_plan.content_type_id: "look::3", "dashboard::9",
	// "dashboard::model::name"), to link the report in Looker; empty when
	// the run did not read it.
	Content string `json:"content,omitempty"`
	// Status is Looker's HTTP status, 0 when there was no answer.
	Status int    `json:"status,omitempty"`
	Error  string `json:"error"`
}

// Undelivered lists, by plan id, the deliveries that are not known to have
// arrived: the entries of rerun, skipped and in_progress whose outcome is
// failed_again, running or unconfirmed (a re-run or an earlier copy that
// failed again or still runs, a copy never seen in System Activity, a
// delivery in the window still running). Each needs a person; the plans
// under failed, not_attempted and needs_person are not among them.
func (s *Summary) Undelivered() []string {
	var ids []string
	for _, r := range s.Rerun {
		if undelivered(r.Outcome) {
			ids = append(ids, r.PlanID)
		}
	}
	for _, sk := range s.Skipped {
		if undelivered(sk.Outcome) {
			ids = append(ids, sk.PlanID)
		}
	}
	for _, ip := range s.InProgress {
		if undelivered(ip.Outcome) {
			ids = append(ids, ip.PlanID)
		}
	}
	return ids
}

// OK reports whether every plan that needed a re-run got one, nothing needs
// a person, and nothing is undelivered (Undelivered).
func (s *Summary) OK() bool {
	return s.Error == "" && len(s.Failed) == 0 && len(s.NotAttempted) == 0 && len(s.NeedsPerson) == 0 && len(s.Undelivered()) == 0
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
		Rerun:        []Resent{},
		Skipped:      []Skip{},
		Failed:       []Failure{},
		NotAttempted: []string{},
		NeedsPerson:  []NeedsPerson{},
		InProgress:   []InProgress{},
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
	slices.SortFunc(s.Rerun, func(a, b Resent) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(s.Skipped, func(a, b Skip) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(s.Failed, func(a, b Failure) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(s.NotAttempted, compareIDs)
	slices.SortFunc(s.NeedsPerson, func(a, b NeedsPerson) int { return compareIDs(a.PlanID, b.PlanID) })
	slices.SortFunc(s.InProgress, func(a, b InProgress) int { return compareIDs(a.PlanID, b.PlanID) })
}
