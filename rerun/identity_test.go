package rerun_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// These tests are about which run-once copy counts as a plan's re-run: one
// that delivers the same report (content, owner, filters, destinations as a
// set), whoever made it, and nothing else.

// sales is a schedule of the sales dashboard to #sales and the team's inbox,
// with filters.
func sales(id, filters string) lookertest.Plan {
	return lookertest.Plan{ID: id, Name: "Sales " + filters, UserID: "5", ContentTypeID: "dashboard::7", Filters: filters,
		Dests: []lookertest.Destination{{Address: "#sales"}, {Address: "sales@example.com"}}}
}

// sentByHand adds a person's "Send now" of p made at the time at, already in
// System Activity, that ended with status.
func sentByHand(s *lookertest.Server, id string, p lookertest.Plan, at time.Time, status string) {
	p.ID, p.RunOnce, p.Created = id, true, at
	s.AddPlan(p)
	s.AddJob(lookertest.Job{PlanID: id, Status: status, Created: at})
}

func TestACopyCountsOnlyIfItDeliversTheSameReport(t *testing.T) {
	t.Parallel()
	m := newMorning()
	emea, apac := sales("1", "Region=EMEA"), sales("2", "Region=APAC")
	// The same definition, its destinations listed the other way round.
	emeaReordered := emea
	emeaReordered.Dests = []lookertest.Destination{emea.Dests[1], emea.Dests[0]}
	for _, tt := range []struct {
		name       string
		seed       func(s *lookertest.Server)
		wantReruns map[string]int
		wantReason map[string]string // skipped or needs_person, by plan
	}{
		{
			name: "schedules that differ by filters: APAC's send by hand is not EMEA's re-run",
			seed: func(s *lookertest.Server) {
				s.AddPlan(emea)
				s.AddPlan(apac)
				s.AddFailure("1", m.at(1), "Slack API error: ratelimited")
				sentByHand(s, "501", apac, m.at(2), "success")
			},
			wantReruns: map[string]int{"1": 1},
			wantReason: map[string]string{},
		},
		{
			name: "a person's send with other filters is not a re-run",
			seed: func(s *lookertest.Server) {
				s.AddPlan(emea)
				s.AddFailure("1", m.at(1), "boom")
				sentByHand(s, "501", sales("", "Region=EMEA&Quarter=Q3"), m.at(2), "success")
			},
			wantReruns: map[string]int{"1": 1},
			wantReason: map[string]string{},
		},
		{
			name: "a person's send of the same definition is (destinations in any order)",
			seed: func(s *lookertest.Server) {
				s.AddPlan(emea)
				s.AddFailure("1", m.at(1), "boom")
				sentByHand(s, "501", emeaReordered, m.at(2), "success")
			},
			wantReruns: map[string]int{},
			wantReason: map[string]string{"1": rerun.ReasonAlreadyRerun},
		},
		{
			name: "the same filters written in another order are the same filters",
			seed: func(s *lookertest.Server) {
				s.AddPlan(sales("1", "Region=EMEA&Date=7+days"))
				s.AddFailure("1", m.at(1), "boom")
				sentByHand(s, "501", sales("", "Date=7%20days&Region=EMEA"), m.at(2), "success")
			},
			wantReruns: map[string]int{},
			wantReason: map[string]string{"1": rerun.ReasonAlreadyRerun},
		},
		{
			name: "another format to the same address is another report",
			seed: func(s *lookertest.Server) {
				s.AddPlan(emea)
				s.AddFailure("1", m.at(1), "boom")
				csv := emea
				csv.Dests = []lookertest.Destination{{Address: "#sales", Format: "csv_zip"}, emea.Dests[1]}
				sentByHand(s, "501", csv, m.at(2), "success")
			},
			wantReruns: map[string]int{"1": 1},
			wantReason: map[string]string{},
		},
		{
			name: "Slack through the Action Hub: one address, the channel in the parameters",
			seed: func(s *lookertest.Server) {
				slackTo := func(id, channel string) lookertest.Plan {
					return lookertest.Plan{ID: id, Name: "Sales", UserID: "5", ContentTypeID: "dashboard::7",
						Dests: []lookertest.Destination{{Type: "looker-integration", Address: "1::slack", Parameters: `{"channel":"` + channel + `"}`}}}
				}
				s.AddPlan(slackTo("1", "#sales-emea"))
				s.AddFailure("1", m.at(1), "boom")
				sentByHand(s, "501", slackTo("", "#sales-apac"), m.at(2), "success")
			},
			wantReruns: map[string]int{"1": 1},
			wantReason: map[string]string{},
		},
		{
			name: "a plan edited after a copy alike was made is not guessed at",
			seed: func(s *lookertest.Server) {
				s.AddPlan(emea)
				s.AddFailure("1", m.at(1), "boom")
				sentByHand(s, "501", emea, m.at(2), "success")
				s.EditPlan("1", func(p *lookertest.Plan) { p.Filters = "Region=EMEA&Currency=EUR" })
			},
			wantReruns: map[string]int{},
			wantReason: map[string]string{"1": rerun.ReasonUnsureCopy},
		},
		{
			name: "a plan only renamed after its copy keeps it",
			seed: func(s *lookertest.Server) {
				s.AddPlan(emea)
				s.AddFailure("1", m.at(1), "boom")
				sentByHand(s, "501", emea, m.at(2), "success")
				s.EditPlan("1", func(p *lookertest.Plan) { p.Name = "Sales EMEA (weekly)" })
			},
			wantReruns: map[string]int{},
			wantReason: map[string]string{"1": rerun.ReasonAlreadyRerun},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			tt.seed(s)
			sum := runOnce(t, s, m.opts())
			if diff := cmp.Diff(tt.wantReruns, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			got := reasons(sum)
			for _, a := range sum.NeedsPerson {
				got[a.PlanID] = a.Reason
			}
			if diff := cmp.Diff(tt.wantReason, got); diff != "" {
				t.Errorf("reasons (-want +got):\n%s\nsummary %+v", diff, sum)
			}
		})
	}
}

func TestALostAnswersCopyIsFoundWhateverOrderItsDestinationsAreIn(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t) // copies list their destinations in reverse
	s.AddPlan(sales("1", "Region=EMEA"))
	s.AddFailure("1", m.at(1), "boom")
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "1", Status: 500, AfterAction: true})
	sum := runOnce(t, s, m.opts())
	again := runOnce(t, s, m.opts())
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if !sum.OK() || len(sum.Rerun) != 1 || sum.Rerun[0].Note == "" {
		t.Errorf("first run: OK %v, rerun %+v: want the copy found after the lost answer", sum.OK(), sum.Rerun)
	}
	if diff := cmp.Diff(map[string]string{"1": rerun.ReasonAlreadyRerun}, reasons(again)); diff != "" {
		t.Errorf("second run (-want +got):\n%s", diff)
	}
}

func TestALostAnswerIsNotProvenByAPersonsOtherSend(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.SetActivityLag(0, 0)
	emea := sales("1", "Region=EMEA")
	s.AddPlan(emea)
	s.AddFailure("1", m.at(1), "boom")
	// The call is refused before Looker acts, with a 500 (outcome
	// unknown); meanwhile a person sends the dashboard with other filters.
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "1", Status: 500})
	s.AfterQuery(func(q looker.Query) {
		if q.Filters["scheduled_plan.run_once"] == "Yes" && len(s.Reruns()) == 0 {
			s.AfterQuery(nil)
			s.SendNow(sales("", "Region=EMEA&Quarter=Q3"))
		}
	})
	opts := m.opts()
	opts.Confirm = 2 * time.Second
	sum := runOnce(t, s, opts)
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if copies := s.Copies("1"); !sum.OK() || len(sum.Rerun) != 1 || len(copies) != 1 || sum.Rerun[0].NewPlanID != copies[0] {
		t.Errorf("rerun %+v: want plan 1's own copy %v", sum.Rerun, copies)
	}
}

// slack is sales to one channel: the same on System Activity whatever order
// Looker lists a copy's destinations in.
func slack(id string) lookertest.Plan {
	p := sales(id, "Region=EMEA")
	p.Dests = p.Dests[:1]
	return p
}

func TestLookAlikesAcrossWindows(t *testing.T) {
	t.Parallel()
	// Two windows back to back, both before now: A, then B.
	until := epoch.Add(-time.Hour)
	b := morning{since: until.Add(-10 * time.Hour), until: until}
	a := morning{since: b.since.Add(-10 * time.Hour), until: b.since}
	seed := func(s *lookertest.Server) {
		// Two schedules that deliver the same report: X failed in A, Y in B.
		x, y := slack("1"), slack("2")
		s.AddPlan(x)
		s.AddPlan(y)
		s.AddFailure("1", a.at(5), "boom")
		s.AddFailure("2", b.at(5), "boom")
	}
	// A copy made after both windows ended may be either failure's: A's
	// run's, late in a backfill, or B's own, by an earlier attempt of B's
	// run. Which cannot be told, so the report is never sent twice, and
	// never silently dropped: the failure that may lack its re-run goes to
	// a person.
	for _, tt := range []struct {
		name  string
		order []morning
	}{
		{"a backfill in order: A's copy is not taken for B's failure", []morning{a, b}},
		{"a backfill out of order: B's copy is not taken for A's failure", []morning{b, a}},
		{"each window run twice (an Airflow retry)", []morning{a, a, b, b}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			seed(s)
			accounted := map[string]bool{}
			for _, w := range tt.order {
				sum := runOnce(t, s, w.opts())
				for _, a := range sum.NeedsPerson {
					if a.Reason == rerun.ReasonUnsureCopy {
						accounted[a.PlanID] = true
					}
				}
			}
			got := s.Reruns()
			if got["1"] > 1 || got["2"] > 1 || got["1"]+got["2"] > 2 {
				t.Errorf("copies %v: a report went out twice", got)
			}
			for id, n := range got {
				if n > 0 {
					accounted[id] = true
				}
			}
			if diff := cmp.Diff(map[string]bool{"1": true, "2": true}, accounted); diff != "" {
				t.Errorf("a failure neither re-run nor handed to a person (copies %v) (-want +got):\n%s", got, diff)
			}
		})
	}

	t.Run("a look-alike's failure after the window does not take this window's copy", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		s.AddPlan(slack("1"))
		s.AddPlan(slack("2"))
		s.AddFailure("1", b.at(5), "boom")
		s.AddFailure("2", b.until.Add(20*time.Minute), "boom") // the next window's
		first := runOnce(t, s, b.opts())
		retry := runOnce(t, s, b.opts())
		if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		if len(first.Rerun) != 1 || len(retry.Rerun) != 0 {
			t.Errorf("first re-ran %v, the retry %v", rerunIDs(first), rerunIDs(retry))
		}
	})
}

// TestDefinitionsAreReadOnlyWhereACopyIsAlike: a morning with no copy alike
// to a failed plan reads no definition; only the time zone's proof reads a
// plan (now, and before the window).
func TestDefinitionsAreReadOnlyWhereACopyIsAlike(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	for i := range 20 {
		s.AddFailure(strconv.Itoa(100+i), m.at(1), "boom")
	}
	// Yesterday's copy of plan 100, before its failure: alike, but it
	// cannot be the re-run of it.
	s.AddPlan(lookertest.Plan{ID: "501", Name: "Plan 100", UserID: "7", ContentTypeID: "look::100", Destinations: "#reports-100", RunOnce: true, Created: m.at(-5)})
	s.AddJob(lookertest.Job{PlanID: "501", Status: "success", Created: m.at(-5)})
	runOnce(t, s, m.opts())
	reads := 0
	for _, c := range s.Calls() {
		if c.Op == lookertest.OpScheduledPlan {
			reads++
		}
	}
	if reads > 2 {
		t.Errorf("%d plan reads for a morning with no copy to judge, want at most the 2 of the time zone's proof", reads)
	}
	if diff := cmp.Diff(20, len(s.Reruns())); diff != "" {
		t.Errorf("plans re-run (-want +got):\n%s", diff)
	}
}
