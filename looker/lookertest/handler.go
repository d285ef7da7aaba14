package lookertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
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
	}
	return "", nil
}

// ServeHTTP answers as Looker would, after any injected fault.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/lookertest/reruns" {
		writeJSON(w, http.StatusOK, s.Reruns())
		return
	}
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
	status := s.serve(w, r, op, args)
	call.Status = status
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
}

// serve applies latency and faults, then the operation; it returns the status
// written, 0 for a reset connection.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, op string, args []string) int {
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if !sleep(r, latency) {
		return 0
	}
	planID := ""
	if op == OpRunOnce {
		planID = args[0]
	}
	f := s.takeFault(op, planID)
	if f == nil {
		return s.handle(w, r, op, args)
	}
	if f.ExpireTokens {
		s.ExpireTokens()
	}
	// With AfterAction Looker acts first, then its answer is slow, lost or
	// replaced; without, the request is held back, and a client that gives
	// up meanwhile leaves Looker untouched.
	var acted *httptest.ResponseRecorder
	if f.AfterAction {
		acted = httptest.NewRecorder()
		acted.Code = s.handle(acted, r, op, args)
	}
	if !sleep(r, f.Delay) {
		return 0
	}
	switch {
	case f.Reset:
		reset(w)
		return 0
	case f.Status != 0:
		return f.write(w)
	case acted != nil:
		for k, v := range acted.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(acted.Code)
		_, _ = w.Write(acted.Body.Bytes())
		return acted.Code
	}
	return s.handle(w, r, op, args)
}

// sleep waits d or until the client gives up; it reports whether to go on.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// reset closes the connection without an answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
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

// handle performs op and returns the status written.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, op string, args []string) int {
	if op == OpLogin {
		return s.login(w, r)
	}
	token, ok := s.authorized(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "Requires authentication.")
		return http.StatusUnauthorized
	}
	switch op {
	case OpLogout:
		s.mu.Lock()
		delete(s.tokens, token)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	case OpRunLook:
		return s.runLook(w, r, args[0], args[1])
	case OpRunInlineQuery:
		return s.runInlineQuery(w, r, args[0])
	case OpRunOnce:
		return s.runOnce(w, r, args[0])
	}
	panic("unreachable")
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) int {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "Bad request")
		return http.StatusBadRequest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Form.Get("client_id") != s.clientID || r.Form.Get("client_secret") != s.secret {
		// Looker answers bad credentials with 404, not 401.
		writeError(w, http.StatusNotFound, "Not found")
		return http.StatusNotFound
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": s.issueToken(), "token_type": "Bearer", "expires_in": 3600, "refresh_token": nil,
	})
	return http.StatusOK
}

// authorized accepts "Authorization: token T" (and "Bearer T", as Looker does).
func (s *Server) authorized(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || (!strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "bearer")) {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return token, s.tokens[token]
}

func (s *Server) runLook(w http.ResponseWriter, r *http.Request, id, format string) int {
	if format != "json" {
		s.unknown(w, r, "the fake serves only result_format json")
		return http.StatusNotFound
	}
	s.mu.Lock()
	rows, ok := s.looks[id]
	limit := s.maxRows
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return http.StatusNotFound
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
	writeJSON(w, http.StatusOK, rows)
	return http.StatusOK
}

func (s *Server) runOnce(w http.ResponseWriter, r *http.Request, id string) int {
	if len(bytes.TrimSpace([]byte(mustBody(r)))) > 0 {
		var body map[string]any
		if err := json.Unmarshal([]byte(mustBody(r)), &body); err != nil {
			writeError(w, http.StatusBadRequest, "Bad request: body is not a JSON object")
			return http.StatusBadRequest
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	orig, ok := s.plans[id]
	if !ok || orig.deleted {
		writeError(w, http.StatusNotFound, "Not found")
		return http.StatusNotFound
	}
	now := s.now()
	cp := s.addPlanLocked(Plan{
		Name: orig.Name, UserID: orig.UserID, OwnerEmail: orig.OwnerEmail, OwnerName: orig.OwnerName,
		ContentTypeID: orig.ContentTypeID, Destinations: orig.Destinations, RunOnce: true, Created: now,
	})
	s.reruns[id]++
	s.copies[id] = append(s.copies[id], cp.ID)

	o := Outcome{Status: "success"}
	if os := s.outcomes[id]; len(os) > 0 {
		o = os[0]
		if len(os) > 1 {
			s.outcomes[id] = os[1:]
		}
	}
	s.nextJob++
	j := &Job{ID: strconv.Itoa(s.nextJob), PlanID: cp.ID, Status: o.Status, Detail: o.Detail, Created: now}
	if o.Status != "" {
		j.Finalized = now
	}
	s.jobs = append(s.jobs, j)

	writeJSON(w, http.StatusOK, planJSON(cp))
	return http.StatusOK
}

// planJSON renders a plan as Looker's ScheduledPlan.
func planJSON(p *Plan) map[string]any {
	out := map[string]any{
		"id": p.ID, "name": p.Name, "user_id": p.UserID, "run_once": p.RunOnce, "enabled": true,
		"look_id": nil, "dashboard_id": nil, "lookml_dashboard_id": nil,
		"created_at": p.Created.Format(time.RFC3339), "crontab": nil,
	}
	if kind, id, ok := strings.Cut(p.ContentTypeID, "::"); ok {
		out[kind+"_id"] = id
	}
	if !p.RunOnce {
		out["crontab"] = "0 6 * * *"
	}
	return out
}

func mustBody(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

// Fault is a scripted misbehaviour for the next requests of one operation.
type Fault struct {
	// Op is the operation id (OpRunOnce and so on; "run_once" also works).
	Op string
	// PlanID limits a run_once fault to one plan; "" matches every plan.
	PlanID string
	// Times is how many matching requests it applies to; 0 means 1, -1 all.
	Times int
	// Delay holds the request back (or until the client gives up, when
	// nothing is done). With AfterAction, the answer is held back instead.
	Delay time.Duration
	// AfterAction performs the operation before the fault: for run_once, the
	// copy is made and delivered, then the answer is slow, lost or replaced.
	AfterAction bool
	// Reset closes the connection without answering.
	Reset bool
	// ExpireTokens revokes every access token first, as their expiry
	// would: the request is then answered 401.
	ExpireTokens bool
	// Status, RetryAfter, ContentType and Body make the answer. With Status
	// set and no Body, the body is Looker's JSON error.
	Status      int
	RetryAfter  string
	ContentType string
	Body        string
}

// Inject scripts a fault. Faults apply in the order injected.
func (s *Server) Inject(f Fault) {
	if f.Op == "run_once" {
		f.Op = OpRunOnce
	}
	if f.Times == 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

func (s *Server) takeFault(op, planID string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Op != op || (f.PlanID != "" && f.PlanID != planID) {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f
	}
	return nil
}

func (f *Fault) write(w http.ResponseWriter) int {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body == "" {
		writeError(w, f.Status, http.StatusText(f.Status))
		return f.Status
	}
	ct := f.ContentType
	if ct == "" {
		ct = "text/html; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, f.Body)
	return f.Status
}
