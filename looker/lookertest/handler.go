package lookertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/looker-rerun/looker-rerun/looker"
)

// Operation ids, as Looker's spec names them.
const (
	OpLogin          = "login"
	OpLogout         = "logout"
	OpRunLook        = "run_look"
	OpRunInlineQuery = "run_inline_query"
	OpRunOnce        = "scheduled_plan_run_once_by_id"
	OpScheduledPlan  = "scheduled_plan"
)

// Query parameters the 4.0 spec declares for each operation, and their types.
var runParams = map[string]string{
	"limit": "int", "apply_formatting": "bool", "apply_vis": "bool", "cache": "bool",
	"image_width": "int", "image_height": "int", "generate_drill_links": "bool",
	"force_production": "bool", "cache_only": "bool", "path_prefix": "string",
	"rebuild_pdts": "bool", "server_table_calcs": "bool",
}

var declaredParams = map[string]map[string]string{
	OpLogin:          {"client_id": "string", "client_secret": "string"},
	OpLogout:         {},
	OpRunLook:        runParams,
	OpRunInlineQuery: runParams,
	OpRunOnce:        {},
	OpScheduledPlan:  {"fields": "string"},
}

// route matches a request to an operation, or returns "".
func route(method, path string) (op string, args []string) {
	rest, ok := strings.CutPrefix(path, "/api/"+looker.APIVersion+"/")
	if !ok {
		return "", nil
	}
	parts := strings.Split(rest, "/")
	switch {
	case method == http.MethodPost && rest == "login":
		return OpLogin, nil
	case method == http.MethodDelete && rest == "logout":
		return OpLogout, nil
	case method == http.MethodGet && len(parts) == 4 && parts[0] == "looks" && parts[2] == "run":
		return OpRunLook, []string{parts[1], parts[3]}
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "queries" && parts[1] == "run":
		return OpRunInlineQuery, []string{parts[2]}
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "scheduled_plans" && parts[2] == "run_once":
		return OpRunOnce, []string{parts[1]}
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "scheduled_plans":
		return OpScheduledPlan, []string{parts[1]}
	}
	return "", nil
}

// ServeHTTP answers as Looker would, after any scripted latency and fault,
// and records the call. It refuses loudly what it does not serve.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, args := route(r.Method, r.URL.Path)
	if op == "" {
		s.unknown(w, r, "not an operation of Looker's API 4.0 that the fake serves")
		return
	}
	if why := checkParams(op, r); why != "" {
		s.unknown(w, r, why)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))

	call := Call{Op: op, Method: r.Method, URL: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(body)}
	call.Status = s.serve(w, r, op, args)
	s.mu.Lock()
	s.record.calls = append(s.record.calls, call)
	s.mu.Unlock()
}

// checkParams refuses query parameters the spec does not declare for op, and
// values of the wrong type (booleans must be true or false).
func checkParams(op string, r *http.Request) string {
	declared := declaredParams[op]
	for name, vals := range r.URL.Query() {
		typ, ok := declared[name]
		if !ok {
			return "query parameter " + strconv.Quote(name) + " is not declared by the spec for " + op
		}
		for _, v := range vals {
			switch typ {
			case "bool":
				if v != "true" && v != "false" {
					return "boolean parameter " + name + "=" + strconv.Quote(v) + " must be true or false"
				}
			case "int":
				if _, err := strconv.ParseInt(v, 10, 64); err != nil {
					return "integer parameter " + name + "=" + strconv.Quote(v) + " is not an integer"
				}
			}
		}
	}
	return ""
}

// handle checks the request's token and performs op, and returns the status
// written.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, op string, args []string) int {
	token, ok := s.admit(r, op)
	if !ok {
		return writeError(w, http.StatusUnauthorized, "Requires authentication.")
	}
	return s.perform(w, r, op, args, token)
}

// admit returns the request's access token, and whether Looker lets it in:
// login needs no token, every other operation a live one.
func (s *Server) admit(r *http.Request, op string) (token string, ok bool) {
	if op == OpLogin {
		return "", true
	}
	return s.authorized(r)
}

// perform does op for a request already admitted with token, and returns
// the status written.
func (s *Server) perform(w http.ResponseWriter, r *http.Request, op string, args []string, token string) int {
	switch op {
	case OpLogin:
		return s.login(w, r)
	case OpLogout:
		return s.logout(w, token)
	case OpRunLook:
		return s.runLook(w, r, args[0], args[1])
	case OpRunInlineQuery:
		return s.runInlineQuery(w, r, args[0])
	case OpRunOnce:
		return s.runOnce(w, r, args[0])
	case OpScheduledPlan:
		return s.scheduledPlan(w, r, args[0])
	}
	panic("unreachable")
}

func (s *Server) runLook(w http.ResponseWriter, r *http.Request, id, format string) int {
	if format != "json" {
		return s.unknown(w, r, "the fake serves only result_format json")
	}
	s.mu.Lock()
	rows, ok := s.table.looks[id]
	limit := s.table.maxRows
	s.mu.Unlock()
	if !ok {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		if n, _ := strconv.Atoi(v); n > 0 && n < limit {
			limit = n
		}
	}
	if len(rows) > limit {
		rows = rows[:limit]
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	return writeJSON(w, http.StatusOK, rows)
}

func (s *Server) runOnce(w http.ResponseWriter, r *http.Request, id string) int {
	if body := readBody(r); len(bytes.TrimSpace([]byte(body))) > 0 {
		var obj map[string]any
		if err := json.Unmarshal([]byte(body), &obj); err != nil {
			return writeError(w, http.StatusBadRequest, "Bad request: body is not a JSON object")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cp, ok := s.table.copyPlan(id, s.now(), s.lag.draw)
	if !ok {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeJSON(w, http.StatusOK, planJSON(cp))
}

// scheduledPlan answers GET scheduled_plans/{id}: the plan as Looker's API
// sees it, at once, whatever System Activity's lag, with only the keys that
// fields lists when it is given.
func (s *Server) scheduledPlan(w http.ResponseWriter, r *http.Request, id string) int {
	s.mu.Lock()
	var out map[string]any
	if p, ok := s.table.plans[id]; ok && !p.deleted {
		out = planJSON(p)
	}
	s.mu.Unlock()
	if out == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	if fields := r.URL.Query().Get("fields"); fields != "" {
		only := map[string]any{}
		for _, name := range strings.Split(fields, ",") {
			if v, ok := out[strings.TrimSpace(name)]; ok {
				only[strings.TrimSpace(name)] = v
			}
		}
		out = only
	}
	return writeJSON(w, http.StatusOK, out)
}

// planJSON renders a plan as Looker's ScheduledPlan, its times in UTC, its
// filters under their name and their deprecated alias.
func planJSON(p *Plan) map[string]any {
	updated := p.updated
	if updated.IsZero() {
		updated = p.Created
	}
	out := map[string]any{
		"id": p.ID, "name": p.Name, "user_id": p.UserID, "run_once": p.RunOnce, "enabled": !p.Disabled,
		"look_id": nil, "dashboard_id": nil, "lookml_dashboard_id": nil,
		"created_at": p.Created.UTC().Format(time.RFC3339), "updated_at": updated.UTC().Format(time.RFC3339),
		"crontab": nil, "datagroup": nil, "timezone": nil,
		"filters_string": orNull(p.Filters), "dashboard_filters": orNull(p.Filters),
		"scheduled_plan_destination": p.destinationsJSON(),
	}
	if kind, id, ok := strings.Cut(p.ContentTypeID, "::"); ok {
		out[kind+"_id"] = id
	}
	if !p.RunOnce {
		out["crontab"] = "0 6 * * *"
	}
	return out
}

// readBody returns the body ServeHTTP read, and leaves it to read again.
func readBody(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}
