package looker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func TestNormalizeBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  string
		// secrets are the parts of in that no error may show.
		secrets []string
	}{
		{in: "https://example.looker.com", want: "https://example.looker.com/api/4.0/"},
		{in: "https://example.looker.com/", want: "https://example.looker.com/api/4.0/"},
		{in: "https://example.looker.com:19999", want: "https://example.looker.com:19999/api/4.0/"},
		{in: "https://example.looker.com:19999/api/4.0", want: "https://example.looker.com:19999/api/4.0/"},
		{in: "https://example.looker.com/api/4.0/", want: "https://example.looker.com/api/4.0/"},
		{in: " https://example.looker.com/looker/ ", want: "https://example.looker.com/looker/api/4.0/"},
		{in: "https://example.looker.com/api/3.1", wantErr: `API version "3.1" is not supported`},
		{in: "example.looker.com", wantErr: "scheme must be https or http"},
		{in: "https://", wantErr: "no host"},
		{in: "https://exa mple.looker.com", wantErr: `base url "https://exa mple.looker.com": invalid character " " in host name`},
		{in: "https://id:secret@example.looker.com", wantErr: "must not carry credentials", secrets: []string{"secret", "id:"}},
		{in: "https://looker-admin:secret@example.looker.com", wantErr: "must not carry credentials", secrets: []string{"secret", "looker-admin"}},
		{in: "https://id:s%zzsecret@example.looker.com", wantErr: `"https://REDACTED@example.looker.com"`, secrets: []string{"secret", "id:"}},
		{in: "https://id:sec ret@exa mple.looker.com/x", wantErr: `"https://REDACTED@exa mple.looker.com/x"`, secrets: []string{"sec ret", "id:"}},
		{in: "https://admin:pa/ss@example.looker.com", wantErr: `"https://REDACTED@example.looker.com": must not carry credentials`, secrets: []string{"admin", "pa/ss"}},
		{in: "https://admin:1234/abcd@example.looker.com", wantErr: `"https://REDACTED@example.looker.com": must not carry credentials`, secrets: []string{"admin", "1234", "abcd"}},
		{in: "https://admin:pa#ss@example.looker.com", wantErr: `"https://REDACTED": must not carry credentials`, secrets: []string{"admin", "pa#ss", "ss@"}},
		{in: "https://admin:pa?ss@example.looker.com", wantErr: `"https://REDACTED": must not carry credentials`, secrets: []string{"admin", "pa?ss", "ss@"}},
		{in: "https://example.looker.com/?client_id=x", wantErr: "must not have a query", secrets: []string{"client_id"}},
		{in: "https://example.looker.com/api/4.0?access_token=abc123", wantErr: `"https://example.looker.com/api/4.0?REDACTED": must not have a query or fragment`, secrets: []string{"access_token", "abc123"}},
		{in: "https://example.looker.com#access_token=abc123", wantErr: `"https://example.looker.com?REDACTED": must not have a query or fragment`, secrets: []string{"access_token", "abc123"}},
		{in: "https://example.looker.com/?next=a@b.example&token=xyz", wantErr: `"https://REDACTED"`, secrets: []string{"next", "b.example", "token", "xyz"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := looker.NormalizeBaseURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				for _, secret := range tt.secrets {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error shows %q: %v", secret, err)
					}
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestNormalizeBaseURLErrorsAreTyped(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]error{
		"https://id:secret@example.looker.com":         looker.ErrURLCredentials,
		"https://id:secret@example.looker.com/?a=b":    looker.ErrURLCredentials,
		"https://example.looker.com/?access_token=abc": looker.ErrURLQuery,
	} {
		if _, err := looker.NormalizeBaseURL(in); !errors.Is(err, want) {
			t.Errorf("NormalizeBaseURL(%q) = %v, want %v", looker.RedactURL(in), err, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://example.looker.com:19999/api/4.0/", "https://example.looker.com:19999/api/4.0/"},
		{" https://example.looker.com ", "https://example.looker.com"},
		{"https://exa mple.looker.com/%zz", "https://exa mple.looker.com/%zz"},
		{"https://admin:secret@example.looker.com/x", "https://REDACTED@example.looker.com/x"},
		{"https://admin:pa/ss@example.looker.com/x", "https://REDACTED@example.looker.com/x"},
		{"https://admin:p@ss:w0rd@example.looker.com", "https://REDACTED@example.looker.com"},
		{"https://id:s%zz@exa mple.looker.com:x/", "https://REDACTED@exa mple.looker.com:x/"},
		{"user:pass@example.looker.com", "REDACTED@example.looker.com"},
		{"https://example.looker.com/api/4.0?access_token=abc123", "https://example.looker.com/api/4.0?REDACTED"},
		{"https://example.looker.com#access_token=abc123", "https://example.looker.com?REDACTED"},
		{"https://example.looker.com?", "https://example.looker.com?REDACTED"},
		// A ? or # before the last @ may start a password's second half or
		// a query holding an @: either way, nothing after the scheme is
		// known to be safe.
		{"https://admin:pa#ss@example.looker.com", "https://REDACTED"},
		{"https://admin:pa?ss@example.looker.com", "https://REDACTED"},
		{"https://example.looker.com/?next=a@b.example&token=xyz", "https://REDACTED"},
		// Only a scheme's characters before "://" make a scheme.
		{"user:pass@example.looker.com/?x=https://y", "REDACTED@example.looker.com/?REDACTED"},
		{"a b://user:pass@example.looker.com", "REDACTED@example.looker.com"},
	}
	for _, tt := range tests {
		if got := looker.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewClientValidatesOptions(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]looker.Option{
		"nil http client":          looker.WithHTTPClient(nil),
		"nil run_once http client": looker.WithRunOnceHTTPClient(nil),
		"empty secret":             looker.WithCredentials("id", ""),
		"blank user agent":         looker.WithUserAgent(" "),
		"negative run_once rate":   looker.WithRunOnceRate(-1, time.Second),
		"NaN run_once rate":        looker.WithRunOnceRate(math.NaN(), time.Second),
		"negative run_once pause":  looker.WithRunOnceRate(1, -time.Second),
		"nil throttle func":        looker.WithThrottleFunc(nil),
	} {
		if _, err := looker.NewClient("https://example.looker.com", opt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func newClient(t *testing.T, s *lookertest.Server, opts ...looker.Option) *looker.Client {
	t.Helper()
	c, err := looker.NewClient(s.URL, append([]looker.Option{looker.WithHTTPClient(s.Client()), looker.WithCredentials(lookertest.ClientID, lookertest.ClientSecret)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoginSendsCredentialsInTheBodyOnly(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	c := newClient(t, s)
	ctx := context.Background()
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunOnce(ctx, "missing"); err == nil {
		t.Fatal("run_once of a missing plan: no error")
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	calls := s.Calls()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want login, run_once, logout", len(calls))
	}
	login := calls[0]
	if login.URL != "/api/4.0/login" || login.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		login.Body != "client_id="+lookertest.ClientID+"&client_secret="+lookertest.ClientSecret {
		t.Errorf("login = %s %q %q", login.URL, login.Header.Get("Content-Type"), login.Body)
	}
	token := s.Issued()[0]
	for _, c := range calls[1:] {
		if got := c.Header.Get("Authorization"); got != "token "+token {
			t.Errorf("%s: Authorization %q", c.URL, got)
		}
	}
	if calls[2].Op != lookertest.OpLogout || calls[2].Status != http.StatusNoContent || s.LiveTokens() != 0 {
		t.Errorf("logout = %+v, live tokens %d", calls[2], s.LiveTokens())
	}
}

func TestBadCredentialsAreA404(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	c, _ := looker.NewClient(s.URL, looker.WithHTTPClient(s.Client()), looker.WithCredentials("id", "wrong-secret"))
	err := c.Login(context.Background())
	var lerr *looker.Error
	if !errors.As(err, &lerr) || lerr.StatusCode != http.StatusNotFound || lerr.Method != http.MethodPost || lerr.Path != "/api/4.0/login" {
		t.Fatalf("Login error = %#v, want a *looker.Error 404 on POST /api/4.0/login", err)
	}
	if !strings.HasPrefix(err.Error(), "looker: login: ") || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error %q: want it to name the operation and not the secret", err)
	}
	// A call that logs in by itself names both operations, and the package
	// once.
	_, err = c.RunOnce(context.Background(), "42")
	if got, want := fmt.Sprint(err), "looker: run scheduled plan 42: login: POST /api/4.0/login: 404: "; !strings.HasPrefix(got, want) || strings.Count(got, "looker:") != 1 {
		t.Errorf("RunOnce error %q, want it to start %q", got, want)
	}
}

func TestA401LogsInOnceAndContinues(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	s.AddPlan(lookertest.Plan{ID: "42"})
	c := newClient(t, s)
	ctx := context.Background()
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	s.ExpireTokens()
	p, err := c.RunOnce(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"42": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if !p.RunOnce || p.ID == "42" || p.ID == "" {
		t.Errorf("RunOnce answered %+v, want the new run-once copy", p)
	}
	var ops []string
	for _, c := range s.Calls() {
		ops = append(ops, c.Op)
	}
	want := []string{"login", lookertest.OpRunOnce, "login", lookertest.OpRunOnce}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestAPersistent401IsAnError(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	s.Inject(lookertest.Fault{Op: lookertest.OpRunInlineQuery, Status: 401, Times: -1})
	c := newClient(t, s)
	err := c.RunInlineQuery(context.Background(), looker.Query{Model: "system__activity", View: "scheduled_plan", Fields: []string{"scheduled_plan.id"}}, func(looker.Row) error { return nil })
	var lerr *looker.Error
	if !errors.As(err, &lerr) || lerr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("error = %v, want a 401", err)
	}
	logins := 0
	for _, c := range s.Calls() {
		if c.Op == lookertest.OpLogin {
			logins++
		}
	}
	if logins != 2 {
		t.Errorf("%d logins, want the first and one more after the 401", logins)
	}
}

func TestRequestsAreDeclaredBySpec(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	s.AddLook("7", []map[string]any{{"scheduled_plan.id": 1}})
	c := newClient(t, s)
	ctx := context.Background()
	if _, err := c.RunLook(ctx, "7", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.RunInlineQuery(ctx, looker.Query{Model: "system__activity", View: "scheduled_plan", Fields: []string{"scheduled_plan.id"}}, func(looker.Row) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunLook(ctx, "7", 5000); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, c := range s.Calls() {
		urls = append(urls, c.Method+" "+c.URL)
	}
	want := []string{"POST /api/4.0/login", "GET /api/4.0/looks/7/run/json?cache=false", "POST /api/4.0/queries/run/json?cache=false",
		"GET /api/4.0/looks/7/run/json?cache=false&limit=5000"}
	if diff := cmp.Diff(want, urls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if len(s.Unexpected()) != 0 {
		t.Errorf("the stand-in refused %v", s.Unexpected())
	}
}

func TestErrorsCarryLookersMessage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/4.0/login" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"tok-123","token_type":"Bearer","expires_in":3600}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"message":"Validation Failed","errors":[{"field":"scheduled_plan_destination","code":"invalid","message":"Slack channel is archived"}],"documentation_url":"https://cloud.google.com/looker/docs/"}`))
	}))
	t.Cleanup(srv.Close)
	c, _ := looker.NewClient(srv.URL, ownTransport(), looker.WithCredentials("id", "secret"))
	_, err := c.RunOnce(context.Background(), "42")
	var lerr *looker.Error
	if !errors.As(err, &lerr) {
		t.Fatalf("error = %v, want *looker.Error", err)
	}
	want := &looker.Error{StatusCode: 422, Method: "POST", Path: "/api/4.0/scheduled_plans/42/run_once",
		Message: "Validation Failed; scheduled_plan_destination: Slack channel is archived", FromLooker: true}
	if diff := cmp.Diff(want, lerr); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if got := err.Error(); !strings.HasPrefix(got, "looker: run scheduled plan 42: POST /api/4.0/scheduled_plans/42/run_once: 422: Validation Failed") {
		t.Errorf("error string %q", got)
	}
}

func TestLoginAnswerIsNeverQuoted(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok-very-secret", oops`))
	}))
	t.Cleanup(srv.Close)
	c, _ := looker.NewClient(srv.URL, ownTransport(), looker.WithCredentials("id", "secret"))
	err := c.Login(context.Background())
	if err == nil || strings.Contains(err.Error(), "tok-very-secret") {
		t.Fatalf("Login error = %v: want an error that does not quote the token", err)
	}
}

func TestDecodeRows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		rows    int
		wantErr string
	}{
		{in: `[]`, rows: 0},
		{in: `[{"a":1},{"a":null}]`, rows: 2},
		{in: `[{"looker_error":"SQL Error: relation does not exist"}]`, wantErr: "query failed"},
		{in: `{"looker_error":"timeout"}`, wantErr: "query failed"},
		{in: `{"data":[]}`, wantErr: "want a JSON array of rows"},
		{in: `[null]`, wantErr: "found null"},
		{in: `[1,2]`, wantErr: "row 1"},
		{in: `[{"a":1}] [{"a":2}]`, wantErr: "data after the rows"},
		{in: `[{"a":1}`, wantErr: "decode response"},
		{in: `null`, wantErr: "got null"},
		{in: ` `, wantErr: "got null or nothing"},
		{in: `"Zx81Qw27Lm54 and more"`, wantErr: "got a string"},
		{in: `12`, wantErr: "got a number"},
		{in: `true`, wantErr: "got a boolean"},
	}
	for _, tt := range tests {
		rows, err := looker.DecodeRows([]byte(tt.in))
		if err != nil && strings.Contains(err.Error(), "Zx81") {
			t.Errorf("DecodeRows(%s) error %q quotes the body", tt.in, err)
		}
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("DecodeRows(%s) error = %v, want %q", tt.in, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || len(rows) != tt.rows):
			t.Errorf("DecodeRows(%s) = %d rows, %v; want %d", tt.in, len(rows), err, tt.rows)
		}
	}
}

// behind starts a Looker that grants every login and answers every other
// call with h, and returns a client for it.
func behind(t *testing.T, h http.HandlerFunc) *looker.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/4.0/login" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"tok-123","token_type":"Bearer","expires_in":3600}`))
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := looker.NewClient(srv.URL, ownTransport(), looker.WithCredentials("id", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOnlyLookersErrorShapeIsLookers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, contentType, body string
		wantMessage             string
		wantFromLooker          bool
	}{
		{"Looker's own", "application/json", lookerJSON, "Service Unavailable", true},
		{"Looker's, with an empty documentation_url", "application/json", `{"message":"Service Unavailable","documentation_url":""}`, "Service Unavailable", true},
		{"a gateway's JSON with only a message", "application/json", envoyJSON, fmt.Sprintf("%q", envoyJSON), false},
		{"JSON with a null documentation_url", "application/json", `{"message":"x","documentation_url":null}`, `"{\"message\":\"x\",\"documentation_url\":null}"`, false},
		{"a proxy's page", "text/html", proxyPage, fmt.Sprintf("%q", proxyPage), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := behind(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(tt.body))
			})
			_, err := c.RunOnce(context.Background(), "42")
			var lerr *looker.Error
			if !errors.As(err, &lerr) {
				t.Fatalf("error = %v, want *looker.Error", err)
			}
			want := &looker.Error{StatusCode: 503, Method: "POST", Path: "/api/4.0/scheduled_plans/42/run_once",
				Message: tt.wantMessage, FromLooker: tt.wantFromLooker}
			if diff := cmp.Diff(want, lerr); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoginAnswersAreNeverQuoted(t *testing.T) {
	t.Parallel()
	const id, secret = "client-id-Kp4", "Zq9-s3cr3t-Wx7"
	// echoes are answers of a sign-in page or firewall in front of Looker
	// that shows the posted form back, and of a Looker that would: content
	// type and body.
	echoes := map[string]func(form string) (string, string){
		"html": func(form string) (string, string) {
			return "text/html", fmt.Sprintf(`<html><form><input name="client_secret" value="%s"><p>%s</p></form></html>`, secret, form)
		},
		"looker json": func(form string) (string, string) {
			return "application/json", fmt.Sprintf(`{"message":"bad login %s %s","documentation_url":"https://cloud.google.com/looker/docs/"}`, secret, form)
		},
		"malformed json": func(form string) (string, string) {
			return "application/json", fmt.Sprintf(`{"access_token": %s, "expires_in": 1%s}`, secret, form)
		},
	}
	for name, echo := range echoes {
		for _, code := range []int{200, 403, 404, 500} {
			t.Run(fmt.Sprintf("%s %d", name, code), func(t *testing.T) {
				t.Parallel()
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					form, _ := io.ReadAll(r.Body)
					contentType, body := echo(string(form))
					w.Header().Set("Content-Type", contentType)
					w.WriteHeader(code)
					_, _ = io.WriteString(w, body)
				}))
				t.Cleanup(srv.Close)
				c, err := looker.NewClient(srv.URL, ownTransport(), looker.WithCredentials(id, secret))
				if err != nil {
					t.Fatal(err)
				}
				err = c.Login(context.Background())
				if err == nil {
					t.Fatal("Login succeeded")
				}
				var lerr *looker.Error
				if code != 200 && (!errors.As(err, &lerr) || lerr.StatusCode != code) {
					t.Errorf("error = %v, want a *looker.Error %d", err, code)
				}
				for _, text := range []string{fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", lerr)} {
					for _, s := range []string{secret, "s3cr3t", id} {
						if strings.Contains(text, s) {
							t.Errorf("error shows %q: %s", s, text)
						}
					}
				}
				want := "bytes, not shown)"
				if name == "looker json" && code == 200 {
					want = "the answer has no access_token"
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q: want it to say %q", err, want)
				}
			})
		}
	}
}

func TestErrorsNeverShowTheToken(t *testing.T) {
	t.Parallel()
	const token = "Zx81Qw27Lm54Np09Rt36Vb"
	// Each answer echoes the token as a proxy's or firewall's page that shows
	// the request's headers might, some where a quote is cut short.
	tests := []struct {
		name, contentType string
		status            int
		body              string
	}{
		{"an error page", "text/html", 403, "<p>Authorization: token " + token + "</p>"},
		{"an error page cut in the token", "text/html", 502, strings.Repeat("a", 190) + token},
		{"Looker's JSON error", "application/json", 403, `{"message":"token ` + token + ` is not allowed","documentation_url":""}`},
		{"a gateway's JSON error", "application/json", 503, `{"message":"token ` + token + `"}`},
		{"a page instead of JSON", "text/html", 200, "<p>token " + token + "</p>"},
		{"a page instead of JSON, cut in the token", "text/html", 200, "<p>" + strings.Repeat("a", 106) + token + "</p>"},
		{"malformed JSON", "application/json", 200, `{"id": ` + token + `}`},
		{"malformed JSON, cut in the token", "application/json", 200, `{"x":"` + strings.Repeat("a", 104) + token + `", oops}`},
		{"the connection closed", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/4.0/login" {
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"access_token":"`+token+`","token_type":"Bearer","expires_in":3600}`)
					return
				}
				if tt.status == 0 {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						_ = conn.Close()
					}
					return
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c, err := looker.NewClient(srv.URL, ownTransport(), looker.WithCredentials("id", "secret"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.RunOnce(context.Background(), "42")
			if err == nil {
				t.Fatal("RunOnce succeeded")
			}
			for _, text := range []string{fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err)} {
				for i := 0; i+5 <= len(token); i++ {
					if part := token[i : i+5]; strings.Contains(text, part) {
						t.Fatalf("error shows %q of the token: %s", part, text)
					}
				}
			}
		})
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	// Not parallel: one case uses http.DefaultClient, whose idle connections
	// every httptest.Server.Close in a parallel test closes mid-request.
	const secret = "Zq9-s3cr3t-Wx7"
	for name, opts := range map[string][]looker.Option{
		"the default http client":               nil,
		"an http client that follows redirects": {looker.WithHTTPClient(&http.Client{}), looker.WithRunOnceHTTPClient(&http.Client{})},
	} {
		for _, target := range []string{"/api/4.0/login", "/api/4.0/scheduled_plans/42/run_once"} {
			t.Run(name+" "+target, func(t *testing.T) {
				// elsewhere is where a redirect points: a host that must see
				// neither the client secret nor the token.
				var reached atomic.Int32
				elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					reached.Add(1)
					w.WriteHeader(http.StatusNoContent)
				}))
				t.Cleanup(elsewhere.Close)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == target {
						http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
						return
					}
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"access_token":"tok-123","token_type":"Bearer","expires_in":3600}`)
				}))
				t.Cleanup(srv.Close)
				c, err := looker.NewClient(srv.URL, append(opts, looker.WithCredentials("id", secret))...)
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.RunOnce(context.Background(), "42")
				var lerr *looker.Error
				if !errors.As(err, &lerr) || lerr.StatusCode != http.StatusTemporaryRedirect || lerr.Path != target {
					t.Errorf("error = %v, want a *looker.Error 307 on %s", err, target)
				}
				if n := reached.Load(); n != 0 {
					t.Errorf("the redirect was followed: %d requests elsewhere", n)
				}
			})
		}
	}
}

// ownTransport gives a test's client a transport of its own: on
// http.DefaultTransport, every httptest.Server.Close in a parallel test
// closes the idle connections it is about to reuse.
func ownTransport() looker.Option {
	return looker.WithHTTPClient(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()})
}
