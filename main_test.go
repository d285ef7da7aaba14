package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

func TestMain(m *testing.M) {
	// Millisecond backoffs: no real sleeps in tests.
	defaultRetry = retryTiming{max: 4, waitMin: time.Millisecond, waitMax: 20 * time.Millisecond, grace: 2 * time.Second,
		pollMin: 5 * time.Millisecond, pollMax: 40 * time.Millisecond}
	os.Exit(m.Run())
}

// result is what one run of the binary left behind.
type result struct {
	code           int
	stdout, stderr string
	file           string // the result file's content
}

// summary decodes the last line of stdout.
func (r result) summary(t *testing.T) rerun.Summary {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	var s rerun.Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("last stdout line is not the JSON summary: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return s
}

// clearEnv unsets every variable the binary reads, for this test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "LOOKERSDK_") || strings.HasPrefix(name, "RERUN_") || strings.HasPrefix(name, "LOG_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// runMain runs the binary in process with env (on top of a cleared
// environment), writing the result file into a fresh folder.
func runMain(t *testing.T, ctx context.Context, env map[string]string, args ...string) result {
	t.Helper()
	clearEnv(t)
	resultFile := filepath.Join(t.TempDir(), "return.json")
	t.Setenv("RERUN_RESULT_FILE", resultFile)
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := realMain(ctx, args, &stdout, &stderr)
	b, _ := os.ReadFile(resultFile)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), file: string(b)}
}

// lookerEnv is the settings that reach the stand-in, with a window that
// holds the test's failures.
func lookerEnv(s *lookertest.Server, since, until time.Time) map[string]string {
	return map[string]string{
		"LOOKERSDK_BASE_URL":      s.URL,
		"LOOKERSDK_CLIENT_ID":     lookertest.ClientID,
		"LOOKERSDK_CLIENT_SECRET": lookertest.ClientSecret,
		"RERUN_SINCE":             since.Format(time.RFC3339),
		"RERUN_UNTIL":             until.Format(time.RFC3339),
		"RERUN_RATE":              "0",
	}
}

func window() (since, until time.Time) {
	until = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	return until.Add(-10 * time.Hour), until
}

func TestHelpListsEverySetting(t *testing.T) {
	for _, flag := range []string{"-h", "--help"} {
		r := runMain(t, context.Background(), nil, flag)
		if r.code != exitOK {
			t.Errorf("%s: exit %d, want 0", flag, r.code)
		}
		for _, name := range knownVars() {
			if !strings.Contains(r.stdout, name) {
				t.Errorf("%s does not list %s:\n%s", flag, name, r.stdout)
			}
		}
		for _, want := range []string{"/airflow/xcom/return.json", "10h", "120", "Exit codes"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s does not show %q", flag, want)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	version, revision = "1.2.3", "abc123"
	t.Cleanup(func() { version, revision = "dev", "unknown" })
	r := runMain(t, context.Background(), nil, "--version")
	if r.code != exitOK || !strings.Contains(r.stdout, "1.2.3") || !strings.Contains(r.stdout, "abc123") {
		t.Errorf("--version: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestBadSettingsExit2BeforeAnyCall(t *testing.T) {
	s := lookertest.NewServer(t)
	since, until := window()
	tests := []struct {
		name string
		set  map[string]string
		drop []string
		args []string
		want string // named in the message
	}{
		{name: "base url missing", drop: []string{"LOOKERSDK_BASE_URL"}, want: "LOOKERSDK_BASE_URL is required"},
		{name: "base url empty", set: map[string]string{"LOOKERSDK_BASE_URL": ""}, want: "LOOKERSDK_BASE_URL is set but empty"},
		{name: "base url not http", set: map[string]string{"LOOKERSDK_BASE_URL": "ftp://looker.example.com"}, want: "LOOKERSDK_BASE_URL"},
		{name: "base url of api 3.1", set: map[string]string{"LOOKERSDK_BASE_URL": "https://looker.example.com/api/3.1"}, want: "LOOKERSDK_BASE_URL"},
		{name: "base url with credentials", set: map[string]string{"LOOKERSDK_BASE_URL": "https://u:pw@looker.example.com"}, want: "LOOKERSDK_BASE_URL"},
		{name: "client id missing", drop: []string{"LOOKERSDK_CLIENT_ID"}, want: "LOOKERSDK_CLIENT_ID is required"},
		{name: "client id empty", set: map[string]string{"LOOKERSDK_CLIENT_ID": " "}, want: "LOOKERSDK_CLIENT_ID is set but empty"},
		{name: "secret missing", drop: []string{"LOOKERSDK_CLIENT_SECRET"}, want: "LOOKERSDK_CLIENT_SECRET is required"},
		{name: "secret empty", set: map[string]string{"LOOKERSDK_CLIENT_SECRET": ""}, want: "LOOKERSDK_CLIENT_SECRET is set but empty"},
		{name: "api 3.1", set: map[string]string{"LOOKERSDK_API_VERSION": "3.1"}, want: "LOOKERSDK_API_VERSION"},
		{name: "api version empty", set: map[string]string{"LOOKERSDK_API_VERSION": ""}, want: "LOOKERSDK_API_VERSION"},
		{name: "verify ssl", set: map[string]string{"LOOKERSDK_VERIFY_SSL": "maybe"}, want: "LOOKERSDK_VERIFY_SSL"},
		{name: "verify ssl empty", set: map[string]string{"LOOKERSDK_VERIFY_SSL": ""}, want: "LOOKERSDK_VERIFY_SSL"},
		{name: "timeout text", set: map[string]string{"LOOKERSDK_TIMEOUT": "2m"}, want: "LOOKERSDK_TIMEOUT"},
		{name: "timeout zero", set: map[string]string{"LOOKERSDK_TIMEOUT": "0"}, want: "LOOKERSDK_TIMEOUT"},
		{name: "since unparsable", set: map[string]string{"RERUN_SINCE": "yesterday"}, want: "RERUN_SINCE"},
		{name: "since empty", set: map[string]string{"RERUN_SINCE": ""}, want: "RERUN_SINCE is set but empty"},
		{name: "until empty", set: map[string]string{"RERUN_UNTIL": " "}, want: "RERUN_UNTIL is set but empty"},
		{name: "look id empty", set: map[string]string{"RERUN_LOOK_ID": ""}, want: "RERUN_LOOK_ID is set but empty"},
		{name: "permanent pattern empty", set: map[string]string{"RERUN_PERMANENT_PATTERN": ""}, want: "RERUN_PERMANENT_PATTERN is set but empty"},
		{name: "wait negative", set: map[string]string{"RERUN_WAIT": "-1m"}, want: "RERUN_WAIT"},
		{name: "wait unparsable", set: map[string]string{"RERUN_WAIT": "soon"}, want: "RERUN_WAIT"},
		{name: "max attempts negative", set: map[string]string{"RERUN_MAX_ATTEMPTS": "-1"}, want: "RERUN_MAX_ATTEMPTS"},
		{name: "retry permanent", set: map[string]string{"RERUN_RETRY_PERMANENT": "sometimes"}, want: "RERUN_RETRY_PERMANENT"},
		{name: "since without zone", set: map[string]string{"RERUN_SINCE": "2026-11-27T16:00:00"}, want: "RERUN_SINCE"},
		{name: "until unparsable", set: map[string]string{"RERUN_UNTIL": "2026-13-01T00:00:00Z"}, want: "RERUN_UNTIL"},
		{name: "since after until", set: map[string]string{"RERUN_SINCE": until.Format(time.RFC3339), "RERUN_UNTIL": since.Format(time.RFC3339)}, want: "RERUN_SINCE"},
		{name: "since equals until", set: map[string]string{"RERUN_SINCE": since.Format(time.RFC3339), "RERUN_UNTIL": since.Format(time.RFC3339)}, want: "the window is empty"},
		{name: "lookback negative", set: map[string]string{"RERUN_LOOKBACK": "-1h"}, want: "RERUN_LOOKBACK"},
		{name: "lookback unparsable", set: map[string]string{"RERUN_LOOKBACK": "ten hours"}, want: "RERUN_LOOKBACK"},
		{name: "look id", set: map[string]string{"RERUN_LOOK_ID": "sales"}, want: "RERUN_LOOK_ID"},
		{name: "dry run", set: map[string]string{"RERUN_DRY_RUN": "perhaps"}, want: "RERUN_DRY_RUN"},
		{name: "concurrency zero", set: map[string]string{"RERUN_CONCURRENCY": "0"}, want: "RERUN_CONCURRENCY"},
		{name: "concurrency text", set: map[string]string{"RERUN_CONCURRENCY": "many"}, want: "RERUN_CONCURRENCY"},
		{name: "rate negative", set: map[string]string{"RERUN_RATE": "-1"}, want: "RERUN_RATE"},
		{name: "rate NaN", set: map[string]string{"RERUN_RATE": "NaN"}, want: "RERUN_RATE"},
		{name: "rate text", set: map[string]string{"RERUN_RATE": "fast"}, want: "RERUN_RATE"},
		{name: "result file empty", set: map[string]string{"RERUN_RESULT_FILE": ""}, want: "RERUN_RESULT_FILE"},
		{name: "log level empty", set: map[string]string{"LOG_LEVEL": ""}, want: "LOG_LEVEL"},
		{name: "log level unknown", set: map[string]string{"LOG_LEVEL": "loud"}, want: "LOG_LEVEL"},
		{name: "log format", set: map[string]string{"LOG_FORMAT": "xml"}, want: "LOG_FORMAT"},
		{name: "misspelt variable", set: map[string]string{"RERUN_DRYRUN": "true"}, want: "RERUN_DRYRUN is not a setting of looker-rerun; did you mean RERUN_DRY_RUN?"},
		{name: "arguments", args: []string{"now"}, want: "settings come from the environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := lookerEnv(s, since, until)
			for _, k := range tt.drop {
				delete(env, k)
			}
			for k, v := range tt.set {
				env[k] = v
			}
			before := len(s.Calls())
			r := runMain(t, context.Background(), env, tt.args...)
			if r.code != exitConfig {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, exitConfig, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr does not name the problem %q:\n%s", tt.want, r.stderr)
			}
			if n := len(s.Calls()) - before; n != 0 {
				t.Errorf("%d calls to Looker with bad settings, want none", n)
			}
			if strings.Contains(r.stderr, lookertest.ClientSecret) || strings.Contains(r.stderr, ":pw@") {
				t.Errorf("a secret appears in the error:\n%s", r.stderr)
			}
		})
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	s := lookertest.NewServer(t)
	since, until := window()
	env := lookerEnv(s, since, until)
	env["RERUN_RATE"] = "-2"
	env["LOG_FORMAT"] = "yaml"
	env["RERUN_LOOKBAK"] = "2h"
	r := runMain(t, context.Background(), env)
	for _, want := range []string{"RERUN_RATE", "LOG_FORMAT", "RERUN_LOOKBAK"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not report %s:\n%s", want, r.stderr)
		}
	}
}

func TestBaseURLForms(t *testing.T) {
	s := lookertest.NewServer(t)
	since, until := window()
	s.AddFailure("1", since.Add(time.Hour), "boom")
	for i, base := range []string{s.URL, s.URL + "/", s.URL + "/api/4.0", s.URL + "/api/4.0/"} {
		env := lookerEnv(s, since, until)
		env["LOOKERSDK_BASE_URL"] = base
		env["RERUN_DRY_RUN"] = "true"
		if r := runMain(t, context.Background(), env); r.code != exitOK || len(r.summary(t).Rerun) != 1 {
			t.Errorf("case %d, base url %q: exit %d\n%s", i, base, r.code, r.stderr)
		}
	}
}

func TestExitCodes(t *testing.T) {
	since, until := window()
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	tests := []struct {
		name string
		seed func(s *lookertest.Server, env map[string]string)
		want int
	}{
		{"nothing failed", func(*lookertest.Server, map[string]string) {}, exitOK},
		{"every re-run made", func(s *lookertest.Server, _ map[string]string) {
			s.AddFailure("1", since.Add(time.Hour), "boom")
		}, exitOK},
		{"a re-run failed", func(s *lookertest.Server, _ map[string]string) {
			s.AddFailure("1", since.Add(time.Hour), "boom")
			s.AddFailure("2", since.Add(time.Hour), "boom")
			s.DeletePlan("2")
		}, exitFailures},
		{"wrong credentials", func(_ *lookertest.Server, env map[string]string) {
			env["LOOKERSDK_CLIENT_SECRET"] = "not-the-secret"
		}, exitNoList},
		{"looker down", func(_ *lookertest.Server, env map[string]string) {
			env["LOOKERSDK_BASE_URL"] = closed()
		}, exitNoList},
		{"system activity refuses", func(s *lookertest.Server, _ map[string]string) {
			s.Inject(lookertest.Fault{Op: lookertest.OpRunInlineQuery, Status: 403, Times: -1})
		}, exitNoList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := lookertest.NewServer(t)
			env := lookerEnv(s, since, until)
			tt.seed(s, env)
			r := runMain(t, context.Background(), env)
			if r.code != tt.want {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tt.want, r.stderr)
			}
			sum := r.summary(t)
			if tt.name == "wrong credentials" && !strings.Contains(sum.Error, "check LOOKERSDK_CLIENT_ID") {
				t.Errorf("summary error %q: want it to say what to check", sum.Error)
			}
			if tt.want == exitNoList && (sum.Error == "" || len(s.Reruns()) != 0) {
				t.Errorf("exit 3 with summary error %q and deliveries %v", sum.Error, s.Reruns())
			}
		})
	}
}

func TestSummaryOnStdoutAndInResultFile(t *testing.T) {
	s := lookertest.NewServer(t)
	since, until := window()
	s.AddFailure("1", since.Add(time.Hour), "boom")
	s.AddFailure("2", since.Add(time.Hour), "boom")
	s.AddSuccess("2", since.Add(2*time.Hour))
	r := runMain(t, context.Background(), lookerEnv(s, since, until))
	if r.code != exitOK {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if got := lines[len(lines)-1] + "\n"; got != r.file {
		t.Errorf("result file differs from the last stdout line:\nfile:   %q\nstdout: %q", r.file, got)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.file), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"dry_run", "failed", "failed_jobs", "failed_plans", "needs_person", "not_attempted", "rerun", "skipped", "source", "window"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("summary fields (-want +got):\n%s", diff)
	}
	sum := r.summary(t)
	if !sum.Window.Since.Equal(since) || !sum.Window.Until.Equal(until) || len(sum.Rerun) != 1 || sum.Rerun[0].NewPlanID == "" {
		t.Errorf("summary = %+v", sum)
	}
}

func TestResultFileOnlyWhenFolderExistsOrSet(t *testing.T) {
	s := lookertest.NewServer(t)
	since, until := window()
	env := lookerEnv(s, since, until)

	// Set explicitly to a missing folder: writing is required, and fails.
	env["RERUN_RESULT_FILE"] = filepath.Join(t.TempDir(), "missing", "return.json")
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	if code := realMain(context.Background(), nil, &stdout, &stderr); code != exitFailures {
		t.Errorf("unwritable RERUN_RESULT_FILE: exit %d, want 1\n%s", code, stderr.String())
	}

	// Not set, and the default folder /airflow/xcom is absent here: stdout only.
	if _, err := os.Stat("/airflow/xcom"); err == nil {
		t.Skip("/airflow/xcom exists on this machine")
	}
	os.Unsetenv("RERUN_RESULT_FILE")
	stdout.Reset()
	if code := realMain(context.Background(), nil, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), `"window"`) {
		t.Errorf("default result file without its folder: exit %d, stdout %q", code, stdout.String())
	}
}

func TestDefaultWindowIsTheLookback(t *testing.T) {
	s := lookertest.NewServer(t)
	now := time.Now().UTC()
	s.AddFailure("1", now.Add(-3*time.Hour), "in the last 4h")
	s.AddFailure("2", now.Add(-5*time.Hour), "before it")
	env := lookerEnv(s, now, now)
	delete(env, "RERUN_SINCE")
	delete(env, "RERUN_UNTIL")
	env["RERUN_LOOKBACK"] = "4h"
	r := runMain(t, context.Background(), env)
	sum := r.summary(t)
	if r.code != exitOK || len(sum.Rerun) != 1 || sum.Rerun[0].PlanID != "1" {
		t.Errorf("exit %d, rerun %+v; want plan 1 only", r.code, sum.Rerun)
	}
	if d := sum.Window.Until.Sub(sum.Window.Since); d != 4*time.Hour {
		t.Errorf("window is %s long, want 4h", d)
	}
}

func TestSecretsNeverAppear(t *testing.T) {
	s := lookertest.NewServer(t)
	since, until := window()
	for _, id := range []string{"1", "2", "3"} {
		s.AddFailure(id, since.Add(time.Hour), "boom")
	}
	s.DeletePlan("3")
	// A login that fails once, a flaky answer, a token expiring midway.
	s.Inject(lookertest.Fault{Op: lookertest.OpLogin, Status: 503})
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "2", Status: 503})
	s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "1", ExpireTokens: true})
	env := lookerEnv(s, since, until)
	env["LOG_LEVEL"] = "trace"
	env["RERUN_CONCURRENCY"] = "1"
	r := runMain(t, context.Background(), env)
	if r.code != exitFailures {
		t.Fatalf("exit %d, want 1 (plan 3 is deleted)\n%s", r.code, r.stderr)
	}
	if diff := cmp.Diff(map[string]int{"1": 1, "2": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	secrets := append([]string{lookertest.ClientSecret}, s.Issued()...)
	if len(secrets) < 3 {
		t.Errorf("issued %d tokens, want a second login after the 401", len(secrets)-1)
	}
	for _, secret := range secrets {
		for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "result file": r.file} {
			if strings.Contains(out, secret) {
				t.Errorf("%s contains a secret or token", name)
			}
		}
		for _, c := range s.Calls() {
			if strings.Contains(c.URL, secret) {
				t.Errorf("%s %s carries a secret or token in its URL", c.Method, c.URL)
			}
		}
	}
	for _, c := range s.Calls() {
		if c.Op == lookertest.OpLogin {
			if c.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || !strings.Contains(c.Body, "client_secret=") {
				t.Errorf("login without a form-encoded body: %q %q", c.Header.Get("Content-Type"), c.URL)
			}
			continue
		}
		if !strings.HasPrefix(c.Header.Get("Authorization"), "token ") {
			t.Errorf("%s %s: Authorization %q, want token ...", c.Method, c.URL, c.Header.Get("Authorization"))
		}
	}
	if s.LiveTokens() != 0 {
		t.Errorf("%d tokens still live after the run: no logout", s.LiveTokens())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
