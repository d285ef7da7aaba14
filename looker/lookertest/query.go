package lookertest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	"scheduled_plan.content_type_id":       {"string", func(p *Plan, _ *Job) any { return p.ContentTypeID }},
	"scheduled_plan.destination_addresses": {"string", func(p *Plan, _ *Job) any { return p.Destinations }},
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

// matcher tests a field value against a Looker filter expression.
type matcher func(v any) bool

// parseFilter understands the subset of Looker's filter expressions listed in
// the package doc, and refuses the rest.
func parseFilter(kind, expr string, loc *time.Location) (matcher, error) {
	e := strings.TrimSpace(expr)
	switch strings.ToUpper(e) {
	case "NULL":
		return func(v any) bool { return isNull(v) }, nil
	case "-NULL", "NOT NULL":
		return func(v any) bool { return !isNull(v) }, nil
	}
	switch kind {
	case "yesno":
		want := strings.ToLower(e)
		if want != "yes" && want != "no" {
			return nil, fmt.Errorf("yesno filter %q: want Yes or No", expr)
		}
		return func(v any) bool { return strings.EqualFold(fmt.Sprint(v), want) }, nil
	case "number", "string":
		if strings.ContainsAny(e, "%^_") && kind == "string" || strings.HasPrefix(e, "-") {
			return nil, fmt.Errorf("filter %q: patterns, escapes and negation are not supported by the fake", expr)
		}
		set := map[string]bool{}
		for _, part := range strings.Split(e, ",") {
			part = strings.TrimSpace(part)
			if kind == "number" {
				if _, err := strconv.ParseInt(part, 10, 64); err != nil {
					return nil, fmt.Errorf("number filter %q: %q is not a number", expr, part)
				}
			}
			set[part] = true
		}
		return func(v any) bool { return !isNull(v) && set[fmt.Sprint(v)] }, nil
	case "time":
		return parseTimeFilter(e, loc)
	}
	return nil, fmt.Errorf("filter %q on a %s field", expr, kind)
}

func isNull(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case time.Time:
		return x.IsZero()
	}
	return false
}

// parseTimeFilter understands "A to B" (A included, B not), "after A" (A
// included) and "before A" (A not included).
func parseTimeFilter(e string, loc *time.Location) (matcher, error) {
	var from, to time.Time
	var err error
	lower := strings.ToLower(e)
	switch {
	case strings.HasPrefix(lower, "after "):
		from, err = parseTime(e[len("after "):], loc)
	case strings.HasPrefix(lower, "before "):
		to, err = parseTime(e[len("before "):], loc)
	case strings.Contains(lower, " to "):
		i := strings.Index(lower, " to ")
		if from, err = parseTime(e[:i], loc); err == nil {
			to, err = parseTime(e[i+len(" to "):], loc)
		}
	default:
		err = fmt.Errorf("time filter %q: the fake understands only \"A to B\", \"after A\" and \"before A\"", e)
	}
	if err != nil {
		return nil, err
	}
	return func(v any) bool {
		t, ok := v.(time.Time)
		if !ok || t.IsZero() {
			return false
		}
		t = t.Truncate(time.Second)
		return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
	}, nil
}

func parseTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006/01/02 15:04:05", "2006-01-02 15:04:05", "2006/01/02 15:04", "2006/01/02", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want YYYY/MM/DD HH:MM:SS", s)
}

// runInlineQuery evaluates a query on System Activity's scheduled_plan explore.
func (s *Server) runInlineQuery(w http.ResponseWriter, r *http.Request, format string) int {
	if format != "json" {
		s.unknown(w, r, "the fake serves only result_format json")
		return http.StatusNotFound
	}
	var q looker.Query
	if err := json.Unmarshal([]byte(mustBody(r)), &q); err != nil {
		writeError(w, http.StatusBadRequest, "Bad request: "+err.Error())
		return http.StatusBadRequest
	}
	if q.Model != "system__activity" || q.View != "scheduled_plan" {
		s.unknown(w, r, fmt.Sprintf("the fake has only the explore system__activity/scheduled_plan, not %s/%s", q.Model, q.View))
		return http.StatusNotFound
	}
	rows, err := s.evaluate(q)
	if err != nil {
		// Looker reports a query it cannot run inside a 200 json answer.
		s.complain(r, err.Error())
		writeJSON(w, http.StatusOK, []map[string]string{{"looker_error": err.Error()}})
		return http.StatusOK
	}
	writeJSON(w, http.StatusOK, rows)
	return http.StatusOK
}

func (s *Server) evaluate(q looker.Query) ([]map[string]any, error) {
	loc := time.UTC
	if q.QueryTimezone != "" {
		var err error
		if loc, err = time.LoadLocation(q.QueryTimezone); err != nil {
			return nil, fmt.Errorf("query_timezone %q: %v", q.QueryTimezone, err)
		}
	}
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
	limit := s.maxRows
	jobsOf := map[string][]*Job{}
	for _, j := range s.jobs {
		jobsOf[j.PlanID] = append(jobsOf[j.PlanID], j)
	}
	var out []map[string]any
	seen := map[string]bool{}
	for _, id := range s.planOrder {
		p := s.plans[id]
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

// sortRows sorts as Looker does: by the query's sorts, or by default on the
// first time field descending, else the first field ascending.
func sortRows(rows []map[string]any, q looker.Query) error {
	sorts := q.Sorts
	if len(sorts) == 0 {
		sorts = []string{q.Fields[0]}
		for _, name := range q.Fields {
			if fields[name].kind == "time" {
				sorts = []string{name + " desc"}
				break
			}
		}
	}
	type key struct {
		name string
		desc bool
		kind string
	}
	var keys []key
	for _, s := range sorts {
		name, dir, _ := strings.Cut(strings.TrimSpace(s), " ")
		if !slices.Contains(q.Fields, name) {
			return fmt.Errorf("sort on %q, which is not a selected field", name)
		}
		keys = append(keys, key{name, strings.HasPrefix(strings.TrimSpace(dir), "desc"), fields[name].kind})
	}
	slices.SortStableFunc(rows, func(a, b map[string]any) int {
		for _, k := range keys {
			c := compare(k.kind, a[k.name], b[k.name])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return nil
}

func compare(kind string, a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if kind == "number" {
		x, _ := strconv.ParseFloat(fmt.Sprint(a), 64)
		y, _ := strconv.ParseFloat(fmt.Sprint(b), 64)
		return cmp.Compare(x, y)
	}
	return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b))
}
