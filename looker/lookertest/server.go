// Package lookertest is a fake Looker API 4.0 server for tests, after
// net/http/httptest: it serves login, logout, run_look, run_inline_query on
// System Activity's scheduled_plan explore, and scheduled_plan_run_once_by_id,
// from an in-memory System Activity table that the test fills.
//
// It is a fake, not Looker. It answers as Looker's 4.0 spec says (paths,
// declared parameters only, status codes, error bodies, a 404 for bad
// credentials, a 401 for a missing or stale token, results silently cut at the
// row limit, run_once copying the plan into a new run-once plan). It differs
// from Looker in these ways:
//   - the only explore is system__activity/scheduled_plan, with the fields
//     listed in query.go; other fields, models and filter expressions are
//     refused loudly instead of being guessed at;
//   - filters understand what looker-rerun sends: Yes/No, exact values and
//     comma lists, NULL and -NULL, and "A to B", "after A", "before A" times;
//   - a run-once copy's job finishes the moment it is created, with the status
//     set by RunOnceOutcome (success by default), unless told otherwise;
//   - there is no cache, no permissions model and no rate limit unless a
//     fault is injected.
//
// Requests the fake does not know fail the test that owns it.
package lookertest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Default credentials the fake accepts.
const (
	ClientID     = "lookertest-client-id"
	ClientSecret = "lookertest-client-secret"
)

// Plan is a row of Looker's scheduled_plan table.
type Plan struct {
	ID     string
	Name   string
	UserID string
	// OwnerEmail and OwnerName are the owner's user.email and user.name.
	OwnerEmail, OwnerName string
	// ContentTypeID is "look::ID" or "dashboard::ID".
	ContentTypeID string
	// Destinations is the comma-separated list of destination addresses.
	Destinations string
	RunOnce      bool
	Created      time.Time

	deleted bool
}

// Job is a row of Looker's scheduled_job table: one delivery attempt of a plan.
type Job struct {
	ID     string
	PlanID string
	// Status is "success", "failure", or "" while the job runs.
	Status    string
	Detail    string
	Created   time.Time
	Finalized time.Time // zero while the job runs
}

// Call is one request the fake received.
type Call struct {
	Op     string // Looker operation id, such as "login" or "scheduled_plan_run_once_by_id"
	Method string
	// URL is the request URL as received: path and raw query.
	URL    string
	Header http.Header
	Body   string
	// Status is the status the fake answered (0 for a reset connection).
	Status int
}

// Outcome is what the job of a run-once copy ends with.
type Outcome struct {
	Status string // "success", "failure", or "" for still running
	Detail string
}

// Server is a fake Looker. Create it with NewServer (tests) or New (a process).
type Server struct {
	// URL is the base URL, without /api/4.0, once started.
	URL string

	t   testing.TB // nil when not owned by a test
	hts *httptest.Server

	mu          sync.Mutex
	clientID    string
	secret      string
	now         func() time.Time
	latency     time.Duration
	maxRows     int
	plans       map[string]*Plan
	planOrder   []string
	jobs        []*Job
	looks       map[string][]map[string]any
	tokens      map[string]bool
	nextPlan    int
	nextJob     int
	calls       []Call
	faults      []*Fault
	outcomes    map[string][]Outcome
	reruns      map[string]int
	copies      map[string][]string
	unknownReqs []string
	issued      []string
}

// New returns a fake that is not started: serve it with net/http.
func New() *Server {
	return &Server{
		clientID: ClientID,
		secret:   ClientSecret,
		now:      func() time.Time { return time.Now().UTC() },
		maxRows:  5000,
		plans:    map[string]*Plan{},
		looks:    map[string][]map[string]any{},
		tokens:   map[string]bool{},
		nextPlan: 90000,
		nextJob:  900000,
		outcomes: map[string][]Outcome{},
		reruns:   map[string]int{},
		copies:   map[string][]string{},
	}
}

// NewServer starts a fake on loopback for the test t and closes it when the
// test ends. A request the fake does not know fails t.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := New()
	s.t = t
	s.hts = httptest.NewServer(s)
	s.URL = s.hts.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops a server started by NewServer.
func (s *Server) Close() {
	if s.hts != nil {
		s.hts.CloseClientConnections()
		s.hts.Close()
	}
}

// Listen serves the fake on addr (host:port, port 0 for any) until the
// listener fails, and sets URL. It returns once listening.
func (s *Server) Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.URL = "http://" + l.Addr().String()
	go http.Serve(l, s) //nolint:errcheck // ends when the listener closes
	return l, nil
}

// SetCredentials changes the API key the fake accepts.
func (s *Server) SetCredentials(clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clientID, s.secret = clientID, secret
}

// SetLatency delays every answer by d, as a distant Looker would.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetRowLimit sets the most rows a query answers, whatever limit it asks
// for (Looker's default is 5,000). Rows past it are dropped silently, as
// Looker does.
func (s *Server) SetRowLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxRows = n
}

// AddPlan adds a scheduled plan and returns it with its ID set.
func (s *Server) AddPlan(p Plan) Plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.addPlanLocked(p)
}

func (s *Server) addPlanLocked(p Plan) *Plan {
	if p.ID == "" {
		s.nextPlan++
		p.ID = strconv.Itoa(s.nextPlan)
	}
	if p.Name == "" {
		p.Name = "Plan " + p.ID
	}
	if p.UserID == "" {
		p.UserID = "7"
	}
	if p.ContentTypeID == "" {
		p.ContentTypeID = "look::" + p.ID
	}
	if p.Destinations == "" {
		p.Destinations = "#reports-" + p.ID
	}
	if p.Created.IsZero() {
		p.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if _, ok := s.plans[p.ID]; !ok {
		s.planOrder = append(s.planOrder, p.ID)
	}
	s.plans[p.ID] = &p
	return &p
}

// AddJob adds a delivery attempt of an existing plan and returns it with its
// ID set. A job with a status and no Finalized time finishes when it starts.
func (s *Server) AddJob(j Job) Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.plans[j.PlanID]; !ok {
		panic("lookertest: AddJob for unknown plan " + j.PlanID)
	}
	if j.ID == "" {
		s.nextJob++
		j.ID = strconv.Itoa(s.nextJob)
	}
	if j.Status != "" && j.Finalized.IsZero() {
		j.Finalized = j.Created
	}
	s.jobs = append(s.jobs, &j)
	return j
}

// AddFailure adds a failed delivery of plan (creating the plan if needed) at t.
func (s *Server) AddFailure(planID string, at time.Time, detail string) {
	s.ensurePlan(planID)
	s.AddJob(Job{PlanID: planID, Status: "failure", Detail: detail, Created: at})
}

// AddSuccess adds a successful delivery of plan (creating it if needed) at t.
func (s *Server) AddSuccess(planID string, at time.Time) {
	s.ensurePlan(planID)
	s.AddJob(Job{PlanID: planID, Status: "success", Created: at})
}

func (s *Server) ensurePlan(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.plans[id]; !ok {
		s.addPlanLocked(Plan{ID: id})
	}
}

// DeletePlan removes a plan, as a user deleting a schedule does; its jobs stay
// in System Activity's history.
func (s *Server) DeletePlan(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.plans[id]; ok {
		p.deleted = true
	}
}

// AddLook adds a saved Look whose run answers rows.
func (s *Server) AddLook(id string, rows []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.looks[id] = rows
}

// RunOnceOutcome sets how the jobs of the next run-once copies of plan end,
// one outcome per copy in order; the last one repeats.
func (s *Server) RunOnceOutcome(planID string, outcomes ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes[planID] = outcomes
}

// FinishCopies ends every still-running run-once job of plan with o.
func (s *Server) FinishCopies(planID string, o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cp := range s.copies[planID] {
		for _, j := range s.jobs {
			if j.PlanID == cp && j.Status == "" {
				j.Status, j.Detail, j.Finalized = o.Status, o.Detail, s.now()
			}
		}
	}
}

// ExpireTokens revokes every access token, as their expiry would.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Calls returns every request received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Reruns returns, per original plan id, how many run-once copies Looker made:
// how many times its report was delivered again.
func (s *Server) Reruns() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.reruns))
	for k, v := range s.reruns {
		out[k] = v
	}
	return out
}

// Copies returns the ids of the run-once copies made of plan, oldest first.
func (s *Server) Copies(planID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.copies[planID])
}

// LiveTokens returns how many access tokens are still valid (not logged out).
func (s *Server) LiveTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

func (s *Server) issueToken() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	s.tokens[tok] = true
	s.issued = append(s.issued, tok)
	return tok
}

// Issued returns every access token the fake has handed out.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// lookerError is Looker's error body.
type lookerError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}

const docURL = "https://cloud.google.com/looker/docs/r/api/support"

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, lookerError{Message: msg, DocumentationURL: docURL})
}

// unknown records and reports a request the fake does not serve.
func (s *Server) unknown(w http.ResponseWriter, r *http.Request, why string) {
	s.complain(r, why)
	writeError(w, http.StatusNotFound, "Not found")
}

// complain records a request the fake cannot answer truthfully and fails the
// owning test.
func (s *Server) complain(r *http.Request, why string) {
	msg := fmt.Sprintf("lookertest: %s %s: %s", r.Method, r.URL.RequestURI(), why)
	s.mu.Lock()
	s.unknownReqs = append(s.unknownReqs, msg)
	s.mu.Unlock()
	if s.t != nil {
		s.t.Errorf("%s", msg)
	}
}

// Unexpected returns the requests the fake refused as not Looker's API.
func (s *Server) Unexpected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.unknownReqs)
}
