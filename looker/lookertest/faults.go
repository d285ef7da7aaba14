package lookertest

import (
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"
)

// Fault is a scripted misbehaviour for the next requests of one operation.
type Fault struct {
	// Op is the operation id (OpRunOnce and so on; "run_once" also works).
	Op string
	// PlanID limits a fault of run_once or scheduled_plan to one plan; ""
	// matches every plan.
	PlanID string
	// Times is how many matching requests it applies to; 0 means 1, -1 all.
	Times int
	// Delay holds the request back (or until the client gives up, when
	// nothing is done). With AfterAction, the answer is held back instead.
	Delay time.Duration
	// AfterAction performs the operation before the fault: for run_once, the
	// copy is made and delivered, then the answer is slow, lost or replaced.
	AfterAction bool
	// LateAction has Looker perform the operation this long after the
	// request arrived, in the background, whatever becomes of the answer:
	// for run_once, the copy is made then (and lags like any copy), even if
	// the client gave up or the connection was reset long before. The
	// answer follows the rest of the fault: held back by Delay, lost by
	// Reset, replaced by Status; with none of these, Looker answers once it
	// has acted, if the client is still waiting. It overrides AfterAction.
	// A request without a live token is refused at once and never acted on.
	LateAction time.Duration
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
	// EchoForm makes the body an HTML page that quotes the request's form
	// fields and values back, as some SSO and WAF login pages do
	// (<input name="client_secret" value="...">): text/html unless
	// ContentType says otherwise. It needs a Status, which says whether the
	// page comes as a refusal (403) or as a success (200), and no Body.
	EchoForm bool
}

// script is the misbehaviour to come. Server.mu guards it.
type script struct {
	latency time.Duration // before every answer
	faults  []Fault       // in the order injected
}

// Inject scripts a fault. Faults apply in the order injected. It panics for
// an EchoForm fault without a Status or with a Body.
func (s *Server) Inject(f Fault) {
	if f.EchoForm && (f.Status == 0 || f.Body != "") {
		panic("lookertest: Inject: an EchoForm fault needs a Status and no Body")
	}
	if f.Op == "run_once" {
		f.Op = OpRunOnce
	}
	if f.Times == 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script.faults = append(s.script.faults, f)
}

// serve answers op after the script: the latency, then the first fault
// injected for op, if any. It returns the status written, 0 for a reset
// connection.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, op string, args []string) int {
	s.mu.Lock()
	latency := s.script.latency
	s.mu.Unlock()
	if !sleep(r, latency) {
		return 0
	}
	planID := ""
	if op == OpRunOnce || op == OpScheduledPlan {
		planID = args[0]
	}
	f, ok := s.takeFault(op, planID)
	if !ok {
		return s.handle(w, r, op, args)
	}
	if f.ExpireTokens {
		s.ExpireTokens()
	}
	// With AfterAction Looker acts first, then its answer is slow, lost or
	// replaced; without, the request is held back, and a client that gives
	// up meanwhile leaves Looker untouched.
	// With LateAction Looker acts in the background, on its own time.
	var acted *httptest.ResponseRecorder
	var lateAnswer <-chan *httptest.ResponseRecorder
	switch {
	case f.LateAction > 0:
		lateAnswer = s.actLate(r, op, args, f.LateAction)
	case f.AfterAction:
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
		return f.write(w, r)
	case lateAnswer != nil:
		select {
		case acted = <-lateAnswer:
		case <-r.Context().Done():
			return 0
		}
		if acted == nil { // dropped: the fake closed before Looker acted
			reset(w)
			return 0
		}
		fallthrough
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

// takeFault returns the first fault scripted for op on plan planID, and uses
// one of its times.
func (s *Server) takeFault(op, planID string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.script.faults {
		f := &s.script.faults[i]
		if f.Op != op || (f.PlanID != "" && f.PlanID != planID) {
			continue
		}
		taken := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.script.faults = slices.Delete(s.script.faults, i, i+1)
			}
		}
		return taken, true
	}
	return Fault{}, false
}

// ProxyPage is the HTML a reverse proxy or load balancer in front of Looker
// answers with when it gives up on Looker, as nginx does. Looker may have
// acted all the same:
//
//	Fault{Op: OpRunOnce, AfterAction: true, Status: 503, Body: lookertest.ProxyPage}
//
// is a run_once that reached Looker, made its copy, and whose answer the
// proxy replaced with a 503 in text/html.
const ProxyPage = `<html>
<head><title>503 Service Temporarily Unavailable</title></head>
<body>
<center><h1>503 Service Temporarily Unavailable</h1></center>
<hr><center>nginx</center>
</body>
</html>
`

// GatewayJSON503 is the body Envoy (and so many a cloud load balancer or
// service mesh in front of Looker) answers in application/json when the
// connection to Looker drops before Looker answered. It is not Looker's
// error: it has no documentation_url. Looker may have acted all the same:
//
//	Fault{Op: OpRunOnce, Status: 503, ContentType: "application/json",
//		Body: lookertest.GatewayJSON503, AfterAction: true}
const GatewayJSON503 = `{"message":"upstream connect error or disconnect/reset before headers. reset reason: connection termination"}`

// write answers r as the fault says: Looker's JSON error without a Body,
// the Body (or the echoed form) as text/html unless ContentType says
// otherwise.
func (f *Fault) write(w http.ResponseWriter, r *http.Request) int {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	body := f.Body
	if f.EchoForm {
		body = echoForm(r)
	}
	if body == "" {
		return writeError(w, f.Status, http.StatusText(f.Status))
	}
	ct := f.ContentType
	if ct == "" {
		ct = "text/html; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, body)
	return f.Status
}

// echoForm is a login page that quotes r's form (body and query) back in
// hidden inputs, its fields in name order.
func echoForm(r *http.Request) string {
	_ = r.ParseForm() // a body that is no form leaves only the query's fields
	var b strings.Builder
	b.WriteString("<html>\n<head><title>Sign in</title></head>\n<body>\n<form method=\"post\" action=\"")
	b.WriteString(html.EscapeString(r.URL.Path))
	b.WriteString("\">\n")
	for _, name := range slices.Sorted(maps.Keys(r.Form)) {
		for _, v := range r.Form[name] {
			fmt.Fprintf(&b, "<input type=\"hidden\" name=\"%s\" value=\"%s\">\n", html.EscapeString(name), html.EscapeString(v))
		}
	}
	b.WriteString("<p>Your session has expired. Please sign in again.</p>\n<button type=\"submit\">Sign in</button>\n</form>\n</body>\n</html>\n")
	return b.String()
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
