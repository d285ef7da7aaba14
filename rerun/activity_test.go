package rerun_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

func TestMoreFailuresThanOneQueryReturns(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	const n = 230
	for i := range n {
		id := 1000 + i
		// Crowd them: many in the same minute, so pages split several times.
		s.AddFailure(strconv.Itoa(id), m.at(1).Add(time.Duration(i%37)*time.Second), "boom")
	}
	opts := m.opts()
	opts.PageSize = 50
	sum := runOnce(t, s, opts)
	if sum.FailedJobs != n || len(sum.Rerun) != n {
		t.Fatalf("found %d failed jobs and re-ran %d plans, want %d and %d", sum.FailedJobs, len(sum.Rerun), n, n)
	}
	for id, got := range s.Reruns() {
		if got != 1 {
			t.Errorf("plan %s delivered %d times, want 1", id, got)
		}
	}
	for _, c := range s.Calls() {
		probe := strings.Contains(c.Body, `"fields":["scheduled_plan.id","scheduled_plan.created_time"]`) // the time zone's proof asks for 10
		if c.Op == lookertest.OpRunInlineQuery && !probe && !strings.Contains(c.Body, `"limit":"50"`) {
			t.Errorf("query without the page limit: %s", c.Body)
		}
	}
}

func TestLooker5000RowCutIsNeverSilent(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	// More failures in one second than one page holds: no split can list them.
	for i := range 12 {
		s.AddFailure(strconv.Itoa(2000+i), m.at(2), "boom")
	}
	opts := m.opts()
	opts.PageSize = 10
	sum, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, opts))
	if err == nil || !strings.Contains(err.Error(), "cannot list them all") {
		t.Fatalf("Run error = %v, want a loud error about the cut", err)
	}
	if len(s.Reruns()) != 0 || sum.Error == "" {
		t.Errorf("re-ran %v with an incomplete list; summary error %q", s.Reruns(), sum.Error)
	}
}

func TestLookMode(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.AddFailure("1", m.at(1), "boom")
	s.AddFailure("1", m.at(2), "boom")
	s.AddFailure("2", m.at(1), "boom")
	s.AddSuccess("2", m.at(2))
	s.AddFailure("3", m.since.Add(-time.Hour), "before the window")
	s.AddLook("77", []map[string]any{
		{"scheduled_plan.id": 1, "scheduled_job.status": "failure"},
		{"scheduled_plan.id": 1, "scheduled_job.status": "failure"},
		{"scheduled_plan.id": "2", "scheduled_job.status": "failure"},
		{"scheduled_plan.id": 3, "scheduled_job.status": "failure"},
	})
	opts := m.opts()
	opts.LookID = "77"
	sum := runOnce(t, s, opts)
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	want := map[string]string{"2": rerun.ReasonLaterSuccess, "3": rerun.ReasonNotInWindow}
	if diff := cmp.Diff(want, reasons(sum)); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	// Failed deliveries in the window, as System Activity counts them: not
	// the Look's rows (plan 3's failure is before the window).
	if sum.Source != "look:77" || sum.FailedJobs != 3 || sum.FailedPlans != 2 {
		t.Errorf("source %q, failed_jobs %d, failed_plans %d; want look:77, 3, 2", sum.Source, sum.FailedJobs, sum.FailedPlans)
	}
}

func TestLookWithoutPlanIDColumn(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	s.AddFailure("1", m.at(1), "boom")
	s.AddLook("78", []map[string]any{{"scheduled_job.id": 5, "scheduled_plan.name": "Sales"}})
	opts := m.opts()
	opts.LookID = "78"
	_, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, opts))
	if err == nil || !strings.Contains(err.Error(), "scheduled_plan.id") || !strings.Contains(err.Error(), "scheduled_plan.name") {
		t.Fatalf("Run error = %v, want one naming the missing column and the ones present", err)
	}
	if len(s.Reruns()) != 0 {
		t.Errorf("re-ran %v", s.Reruns())
	}
}

func TestLookCutAtTheLimitIsAnError(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	var rows []map[string]any
	for i := range 12 {
		s.AddFailure(strconv.Itoa(500+i), m.at(1), "boom")
		rows = append(rows, map[string]any{"scheduled_plan.id": 500 + i})
	}
	s.AddLook("79", rows)
	opts := m.opts()
	opts.LookID, opts.PageSize = "79", 10
	_, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, opts))
	if !errors.Is(err, rerun.ErrLookCut) || !strings.Contains(err.Error(), "may be cut") {
		t.Fatalf("Run error = %v, want a loud error about the cut", err)
	}
	if len(s.Reruns()) != 0 {
		t.Errorf("re-ran %v from a list that may be cut", s.Reruns())
	}
	for _, c := range s.Calls() {
		if c.Op == lookertest.OpRunLook && c.URL != "/api/4.0/looks/79/run/json?cache=false&limit=10" {
			t.Errorf("run_look URL %s", c.URL)
		}
	}
}

func TestMissingLook(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	opts := newMorning().opts()
	opts.LookID = "404"
	_, err := rerun.Run(context.Background(), newClient(t, s), onClock(s, opts))
	var lerr *looker.Error
	if !errors.As(err, &lerr) || lerr.StatusCode != http.StatusNotFound {
		t.Fatalf("Run error = %v, want a *looker.Error 404", err)
	}
}

func TestOddRows(t *testing.T) {
	t.Parallel()
	m := newMorning()
	row := func(kv ...any) looker.Row {
		r := looker.Row{}
		for i := 0; i < len(kv); i += 2 {
			b, _ := json.Marshal(kv[i+1])
			r[kv[i].(string)] = b
		}
		return r
	}
	at := m.at(1).Format("2006-01-02 15:04:05")
	lk := &oddRows{rows: []looker.Row{
		row("scheduled_plan.id", nil, "scheduled_job.id", 1, "scheduled_job.status", "failure", "scheduled_job.created_time", at),
		row("scheduled_plan.id", "12", "scheduled_job.id", "2", "scheduled_job.status", "FAILURE", "scheduled_job.created_time", m.at(1).Format("2006-01-02 15:04:05.000000")),
		row("scheduled_plan.id", 13.0, "scheduled_job.id", 3, "scheduled_job.status", "failure", "scheduled_job.created_time", m.at(2).Format(time.RFC3339)),
		row("scheduled_plan.id", 14, "scheduled_plan.name", "Ventes – 日次", "scheduled_job.id", 4, "scheduled_job.status", "failure", "scheduled_job.created_time", at),
	}}
	opts := m.opts()
	opts.Clock = lookertest.NewClock(epoch)
	sum, err := rerun.Run(context.Background(), lk, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"12", "13", "14"}, rerunIDs(sum)); diff != "" {
		t.Errorf("re-run (-want +got):\n%s", diff)
	}
	lk.rows = append(lk.rows, row("scheduled_plan.id", map[string]int{"v": 1}))
	if _, err := rerun.Run(context.Background(), lk, opts); err == nil || !strings.Contains(err.Error(), "scheduled_plan.id") {
		t.Errorf("an object for a plan id: error %v, want one naming the field", err)
	}
}

// oddRows answers System Activity queries with fixed rows, for data the
// stand-in would not make. It shows its copies at once, and one plan to
// prove the time zone with.
type oddRows struct {
	rows []looker.Row
	mu   sync.Mutex
	made []string
}

var oddCreated = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (o *oddRows) RunLook(context.Context, string, int) ([]looker.Row, error) { return nil, nil }
func (o *oddRows) RunInlineQuery(_ context.Context, q looker.Query, fn func(looker.Row) error) error {
	var rows []looker.Row
	switch {
	case len(q.Fields) == 2: // the time zone's proof
		rows = []looker.Row{{"scheduled_plan.id": []byte(`"1"`), "scheduled_plan.created_time": []byte(`"2026-01-01 00:00:00"`)}}
	case q.Filters["scheduled_job.status"] == "NULL":
	case q.Filters["scheduled_plan.run_once"] == "Yes":
		o.mu.Lock()
		for _, id := range o.made {
			rows = append(rows, looker.Row{"scheduled_plan.id": []byte(`"` + id + `"`), "scheduled_plan.run_once": []byte(`"Yes"`)})
		}
		o.mu.Unlock()
	default:
		rows = o.rows
	}
	for _, r := range rows {
		// Looker answers every selected field, null when it has no value.
		full := looker.Row{}
		for _, f := range q.Fields {
			full[f] = []byte("null")
		}
		for k, v := range r {
			full[k] = v
		}
		if err := fn(full); err != nil {
			return err
		}
	}
	return nil
}
func (o *oddRows) RunOnce(_ context.Context, id string) (looker.ScheduledPlan, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.made = append(o.made, "9"+id)
	return looker.ScheduledPlan{ID: "9" + id, RunOnce: true}, nil
}
func (o *oddRows) ScheduledPlan(_ context.Context, id string, _ ...string) (looker.ScheduledPlan, error) {
	return looker.ScheduledPlan{ID: id, CreatedAt: oddCreated}, nil
}

// inFlight counts the System Activity queries running at once.
type inFlight struct {
	rerun.Looker
	mu       sync.Mutex
	now, max int
}

func (f *inFlight) RunInlineQuery(ctx context.Context, q looker.Query, fn func(looker.Row) error) error {
	f.mu.Lock()
	f.now++
	f.max = max(f.max, f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	return f.Looker.RunInlineQuery(ctx, q, fn)
}

func TestHistoryQueriesRunConcurrentlyWithinTheLimit(t *testing.T) {
	t.Parallel()
	m := newMorning()
	s := newServer(t)
	// 2,000 failed plans: their history is asked in four batches of 500.
	for i := range 2000 {
		s.AddFailure(strconv.Itoa(1+i), m.at(1).Add(time.Duration(i)*time.Second), "boom")
	}
	s.SetLatency(20 * time.Millisecond) // long enough for the batches to overlap
	for _, concurrency := range []int{1, 3} {
		lk := &inFlight{Looker: newClient(t, s)}
		opts := m.opts()
		opts.Concurrency, opts.DryRun = concurrency, true
		sum, err := rerun.Run(context.Background(), lk, onClock(s, opts))
		if err != nil || len(sum.Rerun) != 2000 {
			t.Fatalf("concurrency %d: Run error %v, %d re-runs; want 2000", concurrency, err, len(sum.Rerun))
		}
		if lk.max != concurrency {
			t.Errorf("concurrency %d: %d queries ran at once, want %d", concurrency, lk.max, concurrency)
		}
	}
}
