package lookertest

import (
	"strconv"
	"time"
)

// SeedDemo fills s with a morning of deliveries relative to now, for the demo
// and the container tests. With the default window (the last 10 hours) plans
// 101 and 105 need a re-run, and nothing else does:
//   - 101 failed twice (re-run once);
//   - 102 failed, then its next delivery succeeded;
//   - 103 failed and was already re-sent by a run-once copy that succeeded;
//   - 104 is a one-off send that failed (never re-sent);
//   - 105 failed on a Slack hiccup;
//   - 106 failed before the window;
//   - 107 was delivered.
func SeedDemo(s *Server, now time.Time) {
	at := func(hoursAgo float64) time.Time {
		return now.Add(-time.Duration(hoursAgo * float64(time.Hour))).Truncate(time.Second)
	}
	plan := func(id, name, content, dest string, runOnce bool) {
		s.AddPlan(Plan{ID: id, Name: name, UserID: "12", OwnerEmail: "analyst@example.com", OwnerName: "Ana Lyst",
			ContentTypeID: content, Destinations: dest, RunOnce: runOnce, Created: at(24 * 30)})
	}
	plan("101", "Daily revenue", "dashboard::7", "#finance", false)
	plan("102", "Orders by region", "look::21", "ops@example.com", false)
	plan("103", "Marketing funnel", "dashboard::9", "#marketing", false)
	plan("104", "Ad-hoc export", "look::30", "someone@example.com", true)
	plan("105", "Inventory", "look::33", "https://hooks.example.com/inventory", false)
	plan("106", "Weekly KPIs", "dashboard::11", "#leadership", false)
	plan("107", "Signups", "look::40", "#growth", false)

	s.AddFailure("101", at(8), "Slack API error: ratelimited")
	s.AddFailure("101", at(7), "Slack API error: ratelimited")
	s.AddFailure("102", at(6), "Query timed out")
	s.AddSuccess("102", at(5))
	s.AddFailure("103", at(5), "SMTP 451 temporary failure")
	s.AddPlan(Plan{ID: "9103", Name: "Marketing funnel", UserID: "12", OwnerEmail: "analyst@example.com", OwnerName: "Ana Lyst",
		ContentTypeID: "dashboard::9", Destinations: "#marketing", RunOnce: true, Created: at(4)})
	s.AddJob(Job{PlanID: "9103", Status: "success", Created: at(4)})
	s.AddFailure("104", at(3), "Slack API error: channel_not_found")
	s.AddFailure("105", at(3), "Webhook answered 502")
	s.AddFailure("106", at(20), "Query timed out")
	s.AddSuccess("107", at(2))
}

// SeedFailures adds n plans, 1 to n, each failed once in the 10 hours
// before now, spread evenly: a bad morning, for benchmarks.
func SeedFailures(s *Server, now time.Time, n int) {
	for i := range n {
		at := now.Add(-10 * time.Hour).Add(time.Duration(i+1) * 9 * time.Hour / time.Duration(n+1)).Truncate(time.Second)
		s.AddFailure(strconv.Itoa(i+1), at, "Slack API error: ratelimited")
	}
}
