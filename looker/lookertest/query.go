package lookertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/looker-rerun/looker-rerun/looker"
)

// field is a field of System Activity's scheduled_plan explore.
type field struct {
	kind string // "number", "string", "yesno" or "time"
	get  func(p *Plan, j *Job) any
}

func jobField(f func(j *Job) any) func(*Plan, *Job) any {
	return func(_ *Plan, j *Job) any {
		if j == nil {
			return nil
		}
		return f(j)
	}
}

func orNull[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// fields are the explore's fields the fake knows.
var fields = map[string]field{
	"scheduled_plan.id":                    {"number", func(p *Plan, _ *Job) any { return p.ID }},
	"scheduled_plan.name":                  {"string", func(p *Plan, _ *Job) any { return p.Name }},
	"scheduled_plan.user_id":               {"number", func(p *Plan, _ *Job) any { return p.UserID }},
	"scheduled_plan.run_once":              {"yesno", func(p *Plan, _ *Job) any { return yesNo(p.RunOnce) }},
	"scheduled_plan.enabled":               {"yesno", func(p *Plan, _ *Job) any { return yesNo(!p.Disabled) }},
	"scheduled_plan.content_type_id":       {"string", func(p *Plan, _ *Job) any { return p.ContentTypeID }},
	"scheduled_plan.destination_addresses": {"string", func(p *Plan, _ *Job) any { return p.destinationAddresses() }},
	"scheduled_plan.created_time":          {"time", func(p *Plan, _ *Job) any { return p.Created }},
	"user.email":                           {"string", func(p *Plan, _ *Job) any { return orNull(p.OwnerEmail) }},
	"user.name":                            {"string", func(p *Plan, _ *Job) any { return orNull(p.OwnerName) }},
	"scheduled_job.id":                     {"number", jobField(func(j *Job) any { return j.ID })},
	"scheduled_job.status":                 {"string", jobField(func(j *Job) any { return orNull(j.Status) })},
	"scheduled_job.status_detail":          {"string", jobField(func(j *Job) any { return orNull(j.Detail) })},
	"scheduled_job.created_time":           {"time", jobField(func(j *Job) any { return j.Created })},
	"scheduled_job.finalized_time":         {"time", jobField(func(j *Job) any { return j.Finalized })},
}

// timeLayout is how Looker's json results show a time: in the query's time
// zone, to the second, without a zone.
const timeLayout = "2006-01-02 15:04:05"

// render turns a field value into what Looker's json result holds.
func render(kind string, v any, loc *time.Location) any {
	if v == nil {
		return nil
	}
	switch kind {
	case "number":
		s := v.(string)
		if s == "" {
			return nil
		}
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return json.Number(s)
		}
		return s
	case "time":
		t := v.(time.Time)
		if t.IsZero() {
			return nil
		}
		return t.In(loc).Format(timeLayout)
	}
	return v
}

// runInlineQuery evaluates a query on System Activity's scheduled_plan explore.
func (s *Server) runInlineQuery(w http.ResponseWriter, r *http.Request, format string) int {
	if format != "json" {
		return s.unknown(w, r, "the fake serves only result_format json")
	}
	var q looker.Query
	if err := json.Unmarshal([]byte(readBody(r)), &q); err != nil {
		return writeError(w, http.StatusBadRequest, "Bad request: "+err.Error())
	}
	if q.Model != "system__activity" || q.View != "scheduled_plan" {
		return s.unknown(w, r, fmt.Sprintf("the fake has only the explore system__activity/scheduled_plan, not %s/%s", q.Model, q.View))
	}
	rows, err := s.evaluate(q)
	s.afterQuery(q)
	if err != nil {
		// Looker reports a query it cannot run inside a 200 json answer.
		s.complain(r, err.Error())
		return writeJSON(w, http.StatusOK, []map[string]string{{"looker_error": err.Error()}})
	}
	return writeJSON(w, http.StatusOK, rows)
}

// OmitFields makes System Activity answer as a Looker whose explore lacks
// the named fields: a query may still select, filter and sort on them, but
// its rows come back without their keys (and rows equal in the other
// fields as one). Each call replaces the last; none restores every field.
// It panics for a field the fake does not know.
func (s *Server) OmitFields(names ...string) {
	omit := map[string]bool{}
	for _, name := range names {
		if _, ok := fields[name]; !ok {
			panic("lookertest: OmitFields of unknown field " + strconv.Quote(name))
		}
		omit[name] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.omitted = omit
}

// SetQueryTimezone sets the Query Time Zone of a Looker whose user-specific
// time zones are off: every query then runs in loc whatever its
// query_timezone says, its filter times read and its time cells shown in
// loc. Nil, the default, honours each query's query_timezone (UTC when it
// has none).
func (s *Server) SetQueryTimezone(loc *time.Location) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.queryZone = loc
}

func (s *Server) evaluate(q looker.Query) ([]map[string]any, error) {
	loc := time.UTC
	if q.QueryTimezone != "" {
		var err error
		if loc, err = time.LoadLocation(q.QueryTimezone); err != nil {
			return nil, fmt.Errorf("query_timezone %q: %v", q.QueryTimezone, err)
		}
	}
	s.mu.Lock()
	if s.table.queryZone != nil {
		loc = s.table.queryZone
	}
	s.mu.Unlock()
	if len(q.Fields) == 0 {
		return nil, fmt.Errorf("a query needs fields")
	}
	for _, name := range q.Fields {
		if _, ok := fields[name]; !ok {
			return nil, fmt.Errorf("unknown field %q", name)
		}
	}
	type filter struct {
		f     field
		match matcher
	}
	var filters []filter
	for name, expr := range q.Filters {
		f, ok := fields[name]
		if !ok {
			return nil, fmt.Errorf("filter on unknown field %q", name)
		}
		m, err := parseFilter(f.kind, expr, loc)
		if err != nil {
			return nil, err
		}
		filters = append(filters, filter{f, m})
	}
	s.mu.Lock()
	now := s.now()
	limit := s.table.maxRows
	// System Activity at now: rows not yet visible left out, running jobs
	// without their status.
	jobsOf := map[string][]*Job{}
	for _, j := range s.table.jobs {
		if shows(j.Visible, now) {
			jobsOf[j.PlanID] = append(jobsOf[j.PlanID], j.asOf(now))
		}
	}
	var out []map[string]any
	seen := map[string]bool{}
	for _, id := range s.table.planOrder {
		p := s.table.plans[id]
		if !shows(p.Visible, now) {
			continue
		}
		js := jobsOf[id]
		if len(js) == 0 {
			js = []*Job{nil} // the explore joins jobs to plans: a plan without jobs is one row
		}
	rows:
		for _, j := range js {
			for _, f := range filters {
				if !f.match(f.f.get(p, j)) {
					continue rows
				}
			}
			row := make(map[string]any, len(q.Fields))
			for _, name := range q.Fields {
				if s.table.omitted[name] {
					continue
				}
				f := fields[name]
				row[name] = render(f.kind, f.get(p, j), loc)
			}
			// Looker groups by every selected dimension: equal rows are one.
			key, _ := json.Marshal(row)
			if !seen[string(key)] {
				seen[string(key)] = true
				out = append(out, row)
			}
		}
	}
	s.mu.Unlock()

	if err := sortRows(out, q); err != nil {
		return nil, err
	}
	if q.Limit != "" && q.Limit != "-1" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("limit %q is not a row count", q.Limit)
		}
		limit = min(limit, n)
	}
	if len(out) > limit {
		out = out[:limit] // silently, as Looker does
	}
	if out == nil {
		out = []map[string]any{}
	}
	return out, nil
}
