package lookertest_test

import (
	"testing"
	"time"
	_ "time/tzdata" // America/New_York wherever the tests run

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func TestOmitFieldsLeavesTheirKeysOut(t *testing.T) {
	t.Parallel()
	s, base := fake(t)
	s.AddPlan(lookertest.Plan{ID: "1", OwnerEmail: "ana@example.com", Destinations: "#a"})
	s.AddPlan(lookertest.Plan{ID: "2", OwnerEmail: "bo@example.com", Destinations: "#b"})
	token := login(t, base)
	fields := []string{"scheduled_plan.id", "user.email", "scheduled_plan.destination_addresses"}

	s.OmitFields("user.email", "scheduled_plan.destination_addresses")
	want := []any{map[string]any{"scheduled_plan.id": 2.0}}
	if diff := cmp.Diff(want, query(t, base, token, fields, map[string]string{"user.email": "bo@example.com"})); diff != "" {
		t.Errorf("omitted, filtered on one (-want +got):\n%s", diff)
	}
	s.OmitFields("scheduled_plan.id")
	want = []any{
		map[string]any{"user.email": "ana@example.com", "scheduled_plan.destination_addresses": "#a"},
		map[string]any{"user.email": "bo@example.com", "scheduled_plan.destination_addresses": "#b"},
	}
	if diff := cmp.Diff(want, query(t, base, token, []string{"user.email", "scheduled_plan.id", "scheduled_plan.destination_addresses"}, nil)); diff != "" {
		t.Errorf("another omitted (-want +got):\n%s", diff)
	}
	s.OmitFields()
	want = []any{
		map[string]any{"scheduled_plan.id": 1.0, "user.email": "ana@example.com", "scheduled_plan.destination_addresses": "#a"},
		map[string]any{"scheduled_plan.id": 2.0, "user.email": "bo@example.com", "scheduled_plan.destination_addresses": "#b"},
	}
	if diff := cmp.Diff(want, query(t, base, token, fields, nil)); diff != "" {
		t.Errorf("none omitted (-want +got):\n%s", diff)
	}

	defer func() {
		if recover() == nil {
			t.Errorf("OmitFields of an unknown field did not panic")
		}
	}()
	s.OmitFields("scheduled_plan.nosuch")
}

// At the end of summer time New York's 01:00-02:00 comes twice: Looker shows
// times as wall clock without an offset, so two jobs an hour apart show the
// same time. The fake keeps that ambiguity.
func TestTheRepeatedHourShowsTwiceTheSame(t *testing.T) {
	t.Parallel()
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	s, base := fake(t)
	s.AddFailure("1", time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), "boom") // 01:30 EDT
	s.AddFailure("2", time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), "boom") // 01:30 EST
	s.SetQueryTimezone(newYork)
	token := login(t, base)

	want := []any{
		map[string]any{"scheduled_plan.id": 1.0, "scheduled_job.created_time": "2026-11-01 01:30:00"},
		map[string]any{"scheduled_plan.id": 2.0, "scheduled_job.created_time": "2026-11-01 01:30:00"},
	}
	if diff := cmp.Diff(want, query(t, base, token, []string{"scheduled_plan.id", "scheduled_job.created_time"}, nil)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
