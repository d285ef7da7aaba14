package rerun

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/looker-rerun/looker-rerun/looker"
)

func FuzzDecodeJob(f *testing.F) {
	for _, seed := range []string{
		`{"scheduled_plan.id":42,"scheduled_plan.name":"Daily","scheduled_job.created_time":"2026-11-28 01:00:00","scheduled_job.status":"failure"}`,
		`{"scheduled_plan.id":"42","scheduled_job.id":null,"scheduled_plan.created_time":"2026-11-28T01:00:00Z"}`,
		`{"scheduled_plan.id":42.0,"scheduled_plan.run_once":"Yes"}`,
		`{"scheduled_plan.id":-1}`, `{"scheduled_plan.id":1e30}`, `{"scheduled_plan.id":{"v":1}}`, `{"scheduled_plan.id":true}`,
		`{"scheduled_plan.id":7,"scheduled_job.created_time":"yesterday"}`, `{"scheduled_plan.id":7,"scheduled_job.created_time":12}`,
		`{}`, `{"scheduled_plan.id":"007"}`, `{"scheduled_plan.id":"18446744073709551616"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var row looker.Row
		if json.Unmarshal(raw, &row) != nil {
			return
		}
		j, err := decodeJob(row, nil, time.UTC)
		if err != nil {
			return
		}
		if _, err := strconv.ParseUint(j.PlanID, 10, 64); err != nil {
			t.Errorf("decoded plan id %q from %s", j.PlanID, raw)
		}
		if j.JobID != "" {
			if _, err := strconv.ParseUint(j.JobID, 10, 64); err != nil {
				t.Errorf("decoded job id %q from %s", j.JobID, raw)
			}
		}
		if !j.Created.IsZero() && j.Created.Location().String() != "UTC" {
			t.Errorf("time %v not in UTC", j.Created)
		}
	})
}

func FuzzLookRows(f *testing.F) {
	for _, seed := range []string{
		`[{"scheduled_plan.id":1},{"scheduled_plan.id":"1"},{"scheduled_plan.id":2}]`,
		`[{"scheduled_job.id":5}]`, `[{"scheduled_plan.id":null}]`, `[{"scheduled_plan.id":"x"}]`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var rows []looker.Row
		if json.Unmarshal(raw, &rows) != nil || slices.ContainsFunc(rows, func(r looker.Row) bool { return r == nil }) {
			return
		}
		a := newActivity(lookRows(rows), Options{PageSize: 5000, Concurrency: 1})
		ids, err := a.lookFailures(t.Context(), "1")
		if err != nil {
			return
		}
		if len(ids) > len(rows) {
			t.Errorf("%d ids from %d rows", len(ids), len(rows))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("plan %s listed twice", id)
			}
			seen[id] = true
		}
	})
}

// lookRows is a Looker whose saved Look answers fixed rows.
type lookRows []looker.Row

func (l lookRows) RunLook(context.Context, string, int) ([]looker.Row, error) { return l, nil }
func (lookRows) RunInlineQuery(context.Context, looker.Query, func(looker.Row) error) error {
	panic("not used")
}
func (lookRows) RunOnce(context.Context, string) (looker.ScheduledPlan, error) { panic("not used") }
func (lookRows) ScheduledPlan(context.Context, string, ...string) (looker.ScheduledPlan, error) {
	panic("not used")
}
