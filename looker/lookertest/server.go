// Package lookertest is a fake Looker API 4.0 server for tests, after
// net/http/httptest: it serves login, logout, run_look, run_inline_query on
// System Activity's scheduled_plan explore, scheduled_plan and
// scheduled_plan_run_once_by_id, from an in-memory System Activity table
// that the test fills.
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
//   - a saved Look answers the rows given to AddLook, whatever its query;
//   - a run-once copy's job, and that of a SendNow, ends the moment it is
//     created, with the status set by RunOnceOutcome (success by default),
//     unless its Outcome says to run a while (After) or until FinishCopies
//     or FinishJob (no Status);
//   - System Activity shows a run-once copy the moment run_once makes it,
//     unless SetActivityLag is on; Looker's trails by seconds or more;
//   - a scheduled plan's JSON carries only the keys planJSON in handler.go
//     lists, crontab "0 6 * * *" for every plan that is not run-once, and
//     destinations with apply_formatting and apply_vis false, no message,
//     parameters only as Destination.Parameters gives them, and
//     looker_recipient only for the owner's email;
//   - job ids follow the jobs' start times (as Looker numbers jobs in the
//     order it starts them), whatever order a test adds them in;
//   - a destination given only by its address (Plan.Destinations) gets a
//     type from it (http:// or https:// a webhook, "@" an email, any other
//     Slack's action, looker-integration) and a format from the content
//     (csv for a Look, wysiwyg_pdf for a dashboard); Looker keeps what the
//     person chose;
//   - the time that decides what System Activity shows (lags, running jobs,
//     when run_once made a copy, when a plan was edited) and when a late
//     action happens is the fake's clock: a Clock (SetClock), which the
//     code under test moves as it waits, or the wall clock; latency and a
//     fault's Delay wait on the wall clock, as a client's timeout does;
//   - access tokens never expire by themselves: only logout, ExpireTokens or
//     an injected fault revokes them;
//   - there is no cache, no permissions model and no rate limit unless a
//     fault is injected.
//
// Production Looker is slow and messy, and so can the fake be:
//   - SetLatency delays every answer; SetActivityLag makes System Activity
//     show each run-once copy, plan and job, a random while after Looker
//     made it (seeded by SetSeed: the same lags every run by default; on
//     in every fake NewServer makes, up to DefaultTestLag);
//   - a job runs with no status, detail or finalized time until its
//     Finalized time (Outcome.After for a copy's job);
//   - a run-once copy lists its plan's destinations in reverse order, as
//     Looker does not promise to keep it (KeepCopyOrder turns that off);
//   - Inject scripts faults: an answer delayed, lost (Reset) or replaced
//     (Status, Body; ProxyPage is a proxy's HTML 503, GatewayJSON503 a
//     gateway's JSON one, EchoForm a login page that quotes the form, its
//     secret too), with Looker acting before it (AfterAction), or later in
//     the background whatever becomes of the answer (LateAction, seen in
//     LateActions);
//   - SetQueryTimezone runs every query in one zone, as Looker does with
//     user-specific time zones off, whatever query_timezone says; times
//     show as wall clock in that zone, without an offset, so in the hour
//     summer time ends two times an hour apart show the same, as in Looker;
//   - OmitFields answers as a Looker whose System Activity lacks columns:
//     rows come back without their keys;
//   - EditPlan, DisablePlan and RenamePlan change a plan as its owner
//     would, and move its updated_at; a disabled plan still runs once, and
//     its copy is enabled; SendNow is a person's ad hoc send, a run-once
//     plan that is no copy;
//   - AfterQuery runs the test's code between two queries of a client, to
//     change the table (FinishJob, say) exactly there.
//
// It may not stand in for Looker anywhere but tests and demos: it keeps
// everything in memory, serves plain HTTP, and accepts one API key.
//
// Requests the fake does not know fail the test that owns it; a fake made
// with New records them for Unexpected instead.
package lookertest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Default credentials the fake accepts.
const (
	ClientID     = "lookertest-client-id"
	ClientSecret = "lookertest-client-secret"
)

// Server is a fake Looker. Create it with NewServer (tests) or New (a process).
type Server struct {
	// URL is the base URL, without /api/4.0, of a server started by NewServer.
	URL string

	t   testing.TB       // nil when not owned by a test
	hts *httptest.Server // nil when not started by NewServer

	// mu guards all the state below: one lock, since a request touches
	// several parts of it (run_once takes a fault, checks a token and copies
	// a plan).
	mu sync.Mutex
	// table is what the fake serves: System Activity and saved Looks.
	table table
	// auth is the API key the fake accepts and the tokens it has issued.
	auth auth
	// record is what the fake received, for assertions.
	record record
	// script is the misbehaviour to come: latency and faults.
	script script
	// lag is how far System Activity trails run_once.
	lag lag
	// late is the work Looker does after a request's answer is decided.
	late late
	// clock is the time that decides what System Activity shows.
	clock clock
	// hooks are the test's code the fake runs between its steps.
	hooks hooks
}

// New returns a fake that is not started: serve it with net/http.
func New() *Server {
	s := &Server{
		table: table{
			plans:    map[string]*Plan{},
			looks:    map[string][]map[string]any{},
			nextPlan: 90000,
			nextJob:  900000,
			jobIDs:   map[int]bool{},
			nextDest: 50000,
			maxRows:  5000,
			outcomes: map[string][]Outcome{},
			copies:   map[string][]string{},
		},
		auth: auth{
			clientID: ClientID,
			secret:   ClientSecret,
			tokens:   map[string]bool{},
		},
		lag: newLag(defaultSeed),
	}
	s.late.stop = make(chan struct{})
	return s
}

// DefaultTestLag is the System Activity lag of a fake made by NewServer:
// realism on by default, as short as keeps the tests quick. A test that
// needs another calls SetActivityLag.
const DefaultTestLag = 500 * time.Millisecond

// NewServer starts a fake on loopback for the test t and closes it when the
// test ends. Its System Activity trails run_once by up to DefaultTestLag. A
// request the fake does not know fails t.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := New()
	s.SetActivityLag(0, DefaultTestLag)
	s.t = t
	s.hts = httptest.NewServer(s)
	s.URL = s.hts.URL
	t.Cleanup(s.Close)
	return s
}

// Client returns an HTTP client for a server started by NewServer, with a
// transport of its own: on http.DefaultTransport, every other test server's
// Close closes the idle connections a parallel test is about to reuse.
func (s *Server) Client() *http.Client { return s.hts.Client() }

// Close drops the late actions still pending (LateActions reports them
// Dropped), waits for those under way, and stops a server started by
// NewServer. A fake served some other way should be closed too, before the
// test that owns it ends.
func (s *Server) Close() {
	s.stopLate()
	if s.hts != nil {
		s.hts.CloseClientConnections()
		s.hts.Close()
	}
}

// SetCredentials changes the API key the fake accepts.
func (s *Server) SetCredentials(clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth.clientID, s.auth.secret = clientID, secret
}

// SetLatency delays every answer by d, as a distant Looker would.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script.latency = d
}

// SetRowLimit sets the most rows a query answers, whatever limit it asks
// for (Looker's default is 5,000). Rows past it are dropped silently, as
// Looker does.
func (s *Server) SetRowLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.maxRows = n
}
