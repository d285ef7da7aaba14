package rerun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/looker-rerun/looker-rerun/looker"
)

// This file tells what a plan delivers. System Activity shows a plan's owner,
// content and destination addresses, not its filters nor each destination's
// type and format: two schedules of one dashboard for EMEA and APAC look the
// same there. A run-once copy counts as a plan's re-run only when it delivers
// the same thing, as GET scheduled_plans/{id} shows it. Those reads are made
// only for plans that have a copy alike on System Activity's fields.

// definition is what a plan delivers: its content, owner, filters and
// destinations (as a set: a copy need not list them in the original order).
// The name, schedule and enabled flag are not part of it.
type definition struct {
	content, owner, filters, dests string
}

// definitionFields are the fields of a ScheduledPlan that a definition and the
// checks around it read.
var definitionFields = []string{"id", "user_id", "run_once", "look_id", "dashboard_id", "lookml_dashboard_id", "query_id",
	"run_as_recipient", "filters_string", "dashboard_filters", "scheduled_plan_destination", "created_at", "updated_at"}

func definitionOf(p looker.ScheduledPlan) definition {
	content := ""
	switch {
	case p.LookID != "":
		content = "look:" + p.LookID
	case p.DashboardID != "":
		content = "dashboard:" + p.DashboardID
	case p.LookMLDashboardID != "":
		content = "lookml_dashboard:" + p.LookMLDashboardID
	case p.QueryID != "":
		content = "query:" + p.QueryID
	}
	if p.RunAsRecipient {
		content += " as each recipient"
	}
	filters := p.FiltersString
	if filters == "" {
		filters = p.DashboardFilters // its deprecated alias
	}
	var dests []string
	for _, d := range p.Destinations {
		dests = append(dests, strings.Join([]string{strings.ToLower(strings.TrimSpace(d.Type)),
			strings.ToLower(strings.TrimSpace(d.Format)), strings.TrimSpace(d.Address), jsonSet(d.Parameters)}, "\x1f"))
	}
	slices.Sort(dests)
	return definition{content: content, owner: p.UserID, filters: filterSet(filters), dests: strings.Join(dests, "\x1e")}
}

// jsonSet writes a JSON object so that the same settings compare equal
// whatever the order of their keys; anything else is kept as it is.
func jsonSet(s string) string {
	var v any
	if strings.TrimSpace(s) == "" || json.Unmarshal([]byte(s), &v) != nil {
		return strings.TrimSpace(s)
	}
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	return string(b)
}

// filterSet writes a filters_string so that the same filters compare equal
// whatever their order or escaping.
func filterSet(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "?")
	q, err := url.ParseQuery(s)
	if err != nil {
		return s
	}
	var kv []string
	for k, vs := range q {
		for _, v := range vs {
			kv = append(kv, k+"\x1f"+v)
		}
	}
	slices.Sort(kv)
	return strings.Join(kv, "\x1e")
}

// planDef is a plan's definition as read, or why it could not be.
type planDef struct {
	def              definition
	created, updated time.Time
	// err is set when Looker would not show the plan (404: deleted; 403:
	// another user's, hidden from this one).
	err error
}

// definitions reads plan definitions, each once per run, at most limit at
// once. It is safe for concurrent use.
type definitions struct {
	lk    Looker
	limit int

	mu   sync.Mutex
	read map[string]planDef
}

func newDefinitions(lk Looker, limit int) *definitions {
	return &definitions{lk: lk, limit: max(limit, 1), read: map[string]planDef{}}
}

// load reads the definitions of ids not read yet. A plan Looker will not show
// is recorded as such; any other failure (Looker unreachable, the run
// stopped) is returned, and nothing may be decided on what was not read.
func (d *definitions) load(ctx context.Context, ids []string) error {
	d.mu.Lock()
	var todo []string
	for _, id := range ids {
		if _, ok := d.read[id]; !ok && !slices.Contains(todo, id) {
			todo = append(todo, id)
		}
	}
	d.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.limit)
	for _, id := range todo {
		g.Go(func() error {
			p, err := d.lk.ScheduledPlan(gctx, id, definitionFields...)
			var lerr *looker.Error
			switch {
			case errors.As(err, &lerr) && (lerr.StatusCode == http.StatusNotFound || lerr.StatusCode == http.StatusForbidden):
				d.set(id, planDef{err: err})
				return nil
			case err != nil:
				return err
			}
			d.set(id, planDef{def: definitionOf(p), created: p.CreatedAt, updated: p.UpdatedAt})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("read plan definitions: %w", err)
	}
	return nil
}

func (d *definitions) set(id string, pd planDef) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.read[id] = pd
}

// forget drops what was read of id, so the next load reads it again.
func (d *definitions) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.read, id)
}

// get returns what load read of id.
func (d *definitions) get(id string) (planDef, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pd, ok := d.read[id]
	return pd, ok
}

// verdict is what the definitions say of a copy alike to a plan on System
// Activity's fields.
type verdict int

const (
	notACopy   verdict = iota // it delivers something else: a person's send with other filters or destinations
	sameReport                // it delivers what the plan delivers
	unsure                    // it cannot be told: see why
)

// judge compares copy c with plan p. The plan edited after the copy was
// made, when they now differ, cannot be judged: the copy may be the re-run
// of what the plan was then.
func (d *definitions) judge(p *plan, c job) (verdict, string) {
	pd, okP := d.get(p.ID)
	cd, okC := d.get(c.PlanID)
	switch {
	case !okP || !okC:
		return unsure, "its definition was not read"
	case pd.err != nil:
		return unsure, fmt.Sprintf("run-once copy %s looks like its re-run on System Activity, but the plan's own definition cannot be read (%v)", c.PlanID, pd.err)
	case cd.err != nil:
		return unsure, fmt.Sprintf("run-once copy %s made at %s looks like its re-run on System Activity, but its definition cannot be read (%v): check it in Looker", c.PlanID, c.made().Format(time.RFC3339), cd.err)
	case pd.def == cd.def:
		return sameReport, ""
	case !pd.updated.IsZero() && !cd.created.IsZero() && !pd.updated.Before(cd.created):
		// Looker shows both to the second: an edit in the copy's second
		// may be after it.
		return unsure, fmt.Sprintf("the plan was edited at %s, after run-once copy %s that looks like its re-run was made (%s), and now delivers something else: whether that copy re-sent this report cannot be told",
			pd.updated.UTC().Format(time.RFC3339), c.PlanID, cd.created.UTC().Format(time.RFC3339))
	}
	return notACopy, ""
}
