package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// trickySecret has a character that each encoding rewrites: / # ? for a URL,
// & < > " for HTML and encoding/json, \ and " for every quoting, a space and
// % for a query, and é, which %q keeps and a query escapes.
const trickySecret = `s3cr/t#x?y=1&z<"q\w> +é%41`

// TestRedactorCatchesEveryEncoding writes the secret as each path out of the
// program would, through the redacting writer, then reads the output back
// as its reader would (JSON, %q, a query, HTML): the secret is gone, and
// REDACTED stands in its place.
func TestRedactorCatchesEveryEncoding(t *testing.T) {
	t.Parallel()
	secret := trickySecret + "\x7f" // zerolog writes \u007f, %q \x7f, encoding/json the byte itself
	jsonField := func(out, key string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			return fmt.Sprintf("not JSON (%v): %s", err, out)
		}
		s, _ := m[key].(string)
		return s
	}
	unquote := func(s string) string {
		u, err := strconv.Unquote(s)
		if err != nil {
			return fmt.Sprintf("not quoted (%v): %s", err, s)
		}
		return u
	}
	query := func(s, key string) string {
		v, err := url.ParseQuery(s)
		if err != nil {
			return fmt.Sprintf("not a query (%v): %s", err, s)
		}
		return v.Get(key)
	}
	form := url.Values{"client_id": {"id"}, "client_secret": {secret}}.Encode()
	page := "<p>" + html.EscapeString(secret) + "</p>"
	tests := []struct {
		name  string
		write func(w io.Writer)
		read  func(out string) string // what the output's reader sees
	}{
		{
			name:  "as it is",
			write: func(w io.Writer) { fmt.Fprintf(w, "looker-rerun: %s\n", secret) },
			read:  func(out string) string { return out },
		},
		{
			name:  "a zerolog field",
			write: func(w io.Writer) { l := zerolog.New(w); l.Info().Str("detail", secret).Send() },
			read:  func(out string) string { return jsonField(out, "detail") },
		},
		{
			name:  "quoted with %q in an error that zerolog logs",
			write: func(w io.Writer) { l := zerolog.New(w); l.Error().Err(errors.New(strconv.Quote(secret))).Send() },
			read:  func(out string) string { return unquote(jsonField(out, "error")) },
		},
		{
			name: "a field of zerolog's console writer",
			write: func(w io.Writer) {
				l := zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true})
				l.Info().Str("detail", secret).Send()
			},
			read: func(out string) string {
				_, v, _ := strings.Cut(strings.TrimSpace(out), "detail=")
				return unquote(v)
			},
		},
		{
			name: "encoding/json, as the summary is written",
			write: func(w io.Writer) {
				b, _ := json.Marshal(map[string]string{"error": secret})
				_, _ = w.Write(b)
			},
			read: func(out string) string { return jsonField(out, "error") },
		},
		{
			name: "the login form",
			write: func(w io.Writer) {
				_, _ = io.WriteString(w, form)
			},
			read: func(out string) string { return query(out, "client_secret") },
		},
		{
			name:  "a page echoing the form, quoted in Looker's error",
			write: func(w io.Writer) { fmt.Fprintf(w, "%q", form) },
			read:  func(out string) string { return query(unquote(out), "client_secret") },
		},
		{
			name:  "a page showing the secret, quoted in Looker's error, logged by zerolog",
			write: func(w io.Writer) { l := zerolog.New(w); l.Error().Err(errors.New(strconv.Quote(page))).Send() },
			read:  func(out string) string { return html.UnescapeString(unquote(jsonField(out, "error"))) },
		},
		{
			name: "a page showing the secret, quoted in Looker's error, in the summary",
			write: func(w io.Writer) {
				b, _ := json.Marshal(map[string]string{"error": strconv.Quote(page)})
				_, _ = w.Write(b)
			},
			read: func(out string) string { return html.UnescapeString(unquote(jsonField(out, "error"))) },
		},
	}
	rd := newRedactor(secret)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var plain, out bytes.Buffer
			tt.write(&plain)
			if got := tt.read(plain.String()); !strings.Contains(got, secret) {
				t.Fatalf("the case does not carry the secret: its reader sees %q", got)
			}
			tt.write(rd.writer(&out))
			if got := tt.read(out.String()); strings.Contains(got, secret) || !strings.Contains(got, redacted) {
				t.Errorf("its reader sees %q, want REDACTED for the secret\noutput: %s", got, out.String())
			}
		})
	}
}

func TestRedactingWriter(t *testing.T) {
	t.Parallel()
	t.Run("reports all of p written", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		p := []byte("the secret is " + trickySecret)
		n, err := newRedactor(trickySecret).writer(&out).Write(p)
		if n != len(p) || err != nil || out.String() != "the secret is REDACTED" {
			t.Errorf("Write = %d, %v, wrote %q; want %d, nil, the secret redacted", n, err, out.String(), len(p))
		}
	})
	t.Run("passes on the writer's error", func(t *testing.T) {
		t.Parallel()
		if _, err := newRedactor(trickySecret).writer(failingWriter{}).Write([]byte("x")); err == nil {
			t.Error("no error from a writer that fails")
		}
	})
	t.Run("a trimmed secret too", func(t *testing.T) {
		t.Parallel()
		// A secret mounted from a file often ends in a newline; a page may
		// show it without.
		if got := string(newRedactor(" abcdefgh12345678\n").redact([]byte("<p>abcdefgh12345678</p>"))); got != "<p>REDACTED</p>" {
			t.Errorf("redact = %q", got)
		}
	})
	t.Run("wrapped once", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		rd := newRedactor(trickySecret)
		w := rd.writer(&out)
		if again := newRedactor(trickySecret).writer(w); again != w {
			t.Error("a writer that redacts the secret is wrapped again")
		}
		if other := newRedactor("another secret").writer(w); other == w {
			t.Error("a writer that redacts another secret is not wrapped")
		}
	})
	t.Run("short secrets are left alone", func(t *testing.T) {
		t.Parallel()
		// Redacting "exit" would garble the summary; no Looker secret is
		// this short.
		line := `{"exit_code":1,"source":"system_activity"}`
		if got := string(newRedactor("exit").redact([]byte(line))); got != line {
			t.Errorf("redact = %q, want the line unchanged", got)
		}
	})
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestSecretNeverInOutput plants the client secret in every error path that
// main can reach, and looks for it, as it is and as JSON, %q, a query or HTML
// would write it, in stdout, stderr and the result file.
func TestSecretNeverInOutput(t *testing.T) {
	secret := trickySecret
	jsonForm, _ := json.Marshal(secret)
	forms := []string{secret, string(jsonForm[1 : len(jsonForm)-1]), strconv.Quote(secret), url.QueryEscape(secret), html.EscapeString(secret)}
	since, until := window()

	// loginPage answers every login with status and a body that echoes the
	// form, as a proxy's error page or a misconfigured Looker might.
	loginPage := func(status int, contentType string, body func(form string) string) func(*testing.T, map[string]string) {
		return func(t *testing.T, env map[string]string) {
			hts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/4.0/login" {
					t.Errorf("%s %s: only login was expected", r.Method, r.URL.Path)
					http.NotFound(w, r)
					return
				}
				form, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", contentType)
				w.WriteHeader(status)
				_, _ = io.WriteString(w, body(string(form)))
			}))
			t.Cleanup(hts.Close)
			env["LOOKERSDK_BASE_URL"] = hts.URL
		}
	}
	standIn := func(seed func(*lookertest.Server)) func(*testing.T, map[string]string) {
		return func(t *testing.T, env map[string]string) {
			s := lookertest.NewServer(t)
			s.SetCredentials(lookertest.ClientID, secret)
			seed(s)
			env["LOOKERSDK_BASE_URL"] = s.URL
		}
	}
	lookerError, _ := json.Marshal([]map[string]string{{"looker_error": "SQL error near '" + secret + "'"}})

	tests := []struct {
		name   string
		setup  func(*testing.T, map[string]string)
		args   []string
		code   int
		echoed bool // the path carried the secret to the output: REDACTED shows
	}{
		{
			name: "a login refused with an HTML page echoing the form",
			setup: loginPage(http.StatusForbidden, "text/html", func(form string) string {
				return "<p>" + html.EscapeString(secret) + "</p><p>" + form + "</p>"
			}),
			// The looker client never quotes a login answer: the secret
			// does not even reach the writer.
			code: exitCannotStart,
		},
		{
			name: "a login refused with Looker's JSON error quoting the secret",
			setup: loginPage(http.StatusUnauthorized, "application/json", func(string) string {
				b, _ := json.Marshal(map[string]string{"message": "invalid client_secret " + secret})
				return string(b)
			}),
			code: exitCannotStart,
		},
		{
			name: "a login answered with a page where Looker's JSON was due",
			setup: loginPage(http.StatusOK, "text/html", func(form string) string {
				return "<html>" + form + " " + html.EscapeString(secret) + "</html>"
			}),
			code: exitCannotStart,
		},
		{
			name: "a base URL whose password holds / # and ?",
			setup: func(_ *testing.T, env map[string]string) {
				env["LOOKERSDK_BASE_URL"] = "https://admin:" + secret + "@looker.example.com"
			},
			code: exitConfig,
		},
		{
			name: "a base URL with ?access_token=",
			setup: func(_ *testing.T, env map[string]string) {
				env["LOOKERSDK_BASE_URL"] = "https://looker.example.com/?access_token=" + secret
			},
			code: exitConfig,
		},
		{
			name:  "a bad setting that quotes its value",
			setup: func(_ *testing.T, env map[string]string) { env["RERUN_SINCE"] = secret; env["RERUN_LOOK_ID"] = secret },
			code:  exitConfig, echoed: true,
		},
		{
			name:  "the secret as an argument",
			setup: func(*testing.T, map[string]string) {},
			args:  []string{secret},
			code:  exitConfig, echoed: true,
		},
		{
			name: "a query whose looker_error echoes it",
			setup: standIn(func(s *lookertest.Server) {
				s.AddFailure("1", since.Add(time.Hour), "boom")
				s.Inject(lookertest.Fault{Op: lookertest.OpRunInlineQuery, Status: http.StatusOK, ContentType: "application/json", Body: string(lookerError)})
			}),
			code: exitCannotStart, echoed: true,
		},
		{
			name: "the summary: a plan named with it",
			setup: standIn(func(s *lookertest.Server) {
				s.AddPlan(lookertest.Plan{ID: "1", Name: "Sales " + secret})
				s.AddFailure("1", since.Add(time.Hour), "failed for "+secret)
			}),
			code: exitOK, echoed: true,
		},
		{
			name: "the summary, console logs",
			setup: func(t *testing.T, env map[string]string) {
				standIn(func(s *lookertest.Server) {
					s.AddPlan(lookertest.Plan{ID: "1", Name: "Sales " + secret})
					s.AddFailure("1", since.Add(time.Hour), "Slack API error: channel_not_found "+secret)
				})(t, env)
				env["LOG_FORMAT"] = "console"
			},
			code: exitPersonNeeded, echoed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := lookerEnv(lookertest.NewServer(t), since, until)
			env["LOOKERSDK_CLIENT_SECRET"] = secret
			env["LOG_LEVEL"] = "trace"
			tt.setup(t, env)
			r := runMain(t, context.Background(), env, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "the result file": r.file} {
				for _, f := range forms {
					if strings.Contains(out, f) {
						t.Errorf("%s shows the secret as %q:\n%s", name, f, out)
					}
				}
			}
			if tt.echoed && !strings.Contains(r.stdout+r.stderr, redacted) {
				t.Errorf("no REDACTED in the output: the secret did not reach it, and the test shows nothing\n%s", r.stderr)
			}
			if tt.code != exitConfig {
				if lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n"); lines[len(lines)-1]+"\n" != r.file {
					t.Errorf("the result file is not the summary on stdout:\nfile:   %q\nstdout: %q", r.file, lines[len(lines)-1])
				}
			}
		})
	}
}

// TestBaseURLShownRedacted: the startup line and loginError show the base
// URL as looker.RedactURL does. A URL with credentials or a query is refused
// before either, so this calls them directly.
func TestBaseURLShownRedacted(t *testing.T) {
	t.Parallel()
	const base = "https://admin:pw@looker.example.com/?access_token=tok"
	const shown = "https://REDACTED@looker.example.com/?REDACTED"
	var buf bytes.Buffer
	l := zerolog.New(&buf)
	Config{BaseURL: base, location: time.UTC}.logValue(l.Info()).Send()
	err := loginError(base, errors.New("refused"), 5, time.Second)
	for name, out := range map[string]string{"the startup line": buf.String(), "loginError": err.Error()} {
		if strings.Contains(out, "pw") || strings.Contains(out, "tok") || !strings.Contains(out, shown) {
			t.Errorf("%s = %s, want the URL as %s", name, out, shown)
		}
	}
}
