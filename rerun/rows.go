package rerun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/looker-rerun/looker-rerun/looker"
)

// System Activity fields of the scheduled_plan explore that the rules read.
const (
	fPlanID       = "scheduled_plan.id"
	fPlanName     = "scheduled_plan.name"
	fPlanUserID   = "scheduled_plan.user_id"
	fPlanRunOnce  = "scheduled_plan.run_once"
	fPlanContent  = "scheduled_plan.content_type_id"
	fPlanDests    = "scheduled_plan.destination_addresses"
	fPlanCreated  = "scheduled_plan.created_time"
	fJobID        = "scheduled_job.id"
	fJobStatus    = "scheduled_job.status"
	fJobDetail    = "scheduled_job.status_detail"
	fJobCreated   = "scheduled_job.created_time"
	fOwnerEmail   = "user.email"
	statusSuccess = "success"
	statusFailure = "failure"
)

// timeLayouts are how Looker's json results show a time, in the query's time
// zone (UTC here), with or without the zone.
var timeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04", time.RFC3339Nano, "2006-01-02"}

// errNoPlanID marks a row whose plan id is null: a job whose plan is gone.
var errNoPlanID = errors.New("row has no " + fPlanID)

// rowString reads a text or number cell; ok is false for null or absent.
func rowString(r looker.Row, field string) (s string, ok bool, err error) {
	raw, present := r[field]
	if !present {
		return "", false, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", false, nil
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fmt.Errorf("%s: %w", field, err)
		}
		return s, s != "", nil
	case '{', '[':
		return "", false, fmt.Errorf("%s: want a text or number, got %.40s", field, raw)
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", false, fmt.Errorf("%s: %w", field, err)
		}
		return strconv.FormatBool(b), true, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false, fmt.Errorf("%s: %w", field, err)
	}
	return n.String(), true, nil
}

// rowID reads an id cell (number or numeric text) as Looker 4.0's string id.
func rowID(r looker.Row, field string) (string, bool, error) {
	s, ok, err := rowString(r, field)
	if err != nil || !ok {
		return "", ok, err
	}
	s = strings.TrimSpace(s)
	// Numbers may come back as 42.0 from some dialects.
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) && f > 0 {
		return strconv.FormatInt(int64(f), 10), true, nil
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return "", false, fmt.Errorf("%s: %q is not an id", field, s)
	}
	return s, true, nil
}

// rowTime reads a time cell, shown in UTC.
func rowTime(r looker.Row, field string) (time.Time, bool, error) {
	s, ok, err := rowString(r, field)
	if err != nil || !ok {
		return time.Time{}, ok, err
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), time.UTC); err == nil {
			return t.UTC(), true, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%s: %q is not a time", field, s)
}

// job is one row of the scheduled_plan explore: a plan and, when the plan has
// run, one of its jobs.
type job struct {
	PlanID      string
	Name        string
	Owner       string // user id
	OwnerEmail  string
	Content     string
	Dests       string
	PlanCreated time.Time
	RunOnce     bool

	JobID   string
	Status  string // success, failure, or "" while running
	Detail  string
	Created time.Time
}

// hasJob reports whether the row carries a job (the explore joins plans to
// jobs, so a plan that has not run yet comes without one).
func (j job) hasJob() bool { return j.JobID != "" || !j.Created.IsZero() }

// decodeJob reads the fields of a row that are present. The plan id is
// required; a field the query selected but a cell cannot be read is an error.
func decodeJob(r looker.Row) (job, error) {
	var (
		j   job
		ok  bool
		err error
	)
	if j.PlanID, ok, err = rowID(r, fPlanID); err != nil {
		return j, err
	} else if !ok {
		return j, errNoPlanID
	}
	strs := []struct {
		field string
		dst   *string
	}{
		{fPlanName, &j.Name}, {fPlanUserID, &j.Owner}, {fOwnerEmail, &j.OwnerEmail}, {fPlanContent, &j.Content},
		{fPlanDests, &j.Dests}, {fJobStatus, &j.Status}, {fJobDetail, &j.Detail},
	}
	for _, s := range strs {
		if *s.dst, _, err = rowString(r, s.field); err != nil {
			return j, err
		}
	}
	if j.JobID, _, err = rowID(r, fJobID); err != nil {
		return j, err
	}
	if j.Created, _, err = rowTime(r, fJobCreated); err != nil {
		return j, err
	}
	if j.PlanCreated, _, err = rowTime(r, fPlanCreated); err != nil {
		return j, err
	}
	var runOnce string
	if runOnce, _, err = rowString(r, fPlanRunOnce); err != nil {
		return j, err
	}
	j.RunOnce = strings.EqualFold(runOnce, "yes") || runOnce == "true"
	j.Status = strings.ToLower(strings.TrimSpace(j.Status))
	return j, nil
}

// copyKey is what a run-once copy shares with the plan it was copied from, as
// far as System Activity shows: scheduled_plan_run_once_by_id copies the
// name, owner, content and destinations.
type copyKey struct{ name, owner, content, dests string }

func (j job) key() copyKey { return copyKey{j.Name, j.Owner, j.Content, j.Dests} }
