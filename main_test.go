package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// runConfig runs in process against s, on s's clock (testConfig), with the
// Config that newConfig builds from env, leaving the process's environment
// alone, and writes the result file into a fresh folder unless env names
// one.
func runConfig(t *testing.T, ctx context.Context, s *lookertest.Server, env map[string]string) result {
	t.Helper()
	return runCfg(ctx, testConfig(t, s, env))
}

// testConfig is newConfig of env for a run against s on s's clock: a fake
// clock (lookertest.Clock) that the run and the stand-in share, so that
// System Activity's lag, RERUN_CONFIRM and RERUN_WAIT take no wall-clock
// time. The run starts at the clock's time: the first run against s sets
// it to the wall clock's now (or the test sets its own first), a later one
// goes on where the last left it, as an Airflow retry does. The result
// file is in a fresh folder unless env names one.
func testConfig(t *testing.T, s *lookertest.Server, env map[string]string) Config {
	t.Helper()
	clock := s.Clock()
	if clock == nil {
		clock = lookertest.NewClock(time.Now().UTC())
		s.SetClock(clock)
	}
	cfg := wallConfig(t, clock.Now(), env)
	cfg.clock = clock
	return cfg
}

// wallConfig is newConfig of env for a run that starts at now on the wall
// clock, the result file in a fresh folder unless env names one: for the
// tests that stop a run while a call is in flight, whose grace period and
// slow answer must pass on the same clock (a fake one would end the grace
// at once).
func wallConfig(t *testing.T, now time.Time, env map[string]string) Config {
	t.Helper()
	env = maps.Clone(env)
	if _, ok := env["RERUN_RESULT_FILE"]; !ok {
		env["RERUN_RESULT_FILE"] = filepath.Join(t.TempDir(), "return.json")
	}
	cfg, err := newConfig(now, env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runCfg runs with cfg and returns what it left behind, with the code the
// process would exit with.
func runCfg(ctx context.Context, cfg Config) result {
	var stdout, stderr bytes.Buffer
	code := cfg.processExit(exitCode(run(ctx, cfg, &stdout, &stderr)))
	b, _ := os.ReadFile(cfg.ResultFile)
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
		// The least accepted. A copy shows in the stand-in's System
		// Activity at once unless a test sets a lag, so no test waits it
		// out unless a copy never shows.
		"RERUN_CONFIRM": "10s",
	}
}

func window() (since, until time.Time) {
	until = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	return until.Add(-10 * time.Hour), until
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
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
		}, exitPersonNeeded},
		{"wrong credentials", func(_ *lookertest.Server, env map[string]string) {
			env["LOOKERSDK_CLIENT_SECRET"] = "not-the-secret"
		}, exitCannotStart},
		{"looker down", func(_ *lookertest.Server, env map[string]string) {
			env["LOOKERSDK_BASE_URL"] = closed()
		}, exitCannotStart},
		{"system activity refuses", func(s *lookertest.Server, _ map[string]string) {
			s.Inject(lookertest.Fault{Op: lookertest.OpRunInlineQuery, Status: 403, Times: -1})
		}, exitCannotStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			env := lookerEnv(s, since, until)
			tt.seed(s, env)
			r := runConfig(t, context.Background(), s, env)
			if r.code != tt.want {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tt.want, r.stderr)
			}
			sum := r.summary(t)
			if sum.ExitCode != tt.want {
				t.Errorf("summary exit_code %d, want %d", sum.ExitCode, tt.want)
			}
			if tt.name == "wrong credentials" && !strings.Contains(sum.Error, "check LOOKERSDK_CLIENT_ID") {
				t.Errorf("summary error %q: want it to say what to check", sum.Error)
			}
			if tt.want == exitCannotStart && (sum.Error == "" || len(s.Reruns()) != 0) {
				t.Errorf("exit 3 with summary error %q and deliveries %v", sum.Error, s.Reruns())
			}
		})
	}
}

// TestNeedsPersonExitCode: with RERUN_NEEDS_PERSON_EXIT_CODE=0 a run that
// needs a person succeeds as a process, so Airflow keeps its summary, and the
// summary says exit_code 1 for the next task to fail on. Exit 3 stays 3. The
// last log line says the code the process exits with.
func TestNeedsPersonExitCode(t *testing.T) {
	t.Parallel()
	since, until := window()
	refused := func(s *lookertest.Server, _ map[string]string) {
		s.AddFailure("1", since.Add(time.Hour), "boom")
		s.Inject(lookertest.Fault{Op: lookertest.OpRunOnce, PlanID: "1", Status: http.StatusForbidden})
	}
	tests := []struct {
		name    string
		setting string // "" = unset
		seed    func(s *lookertest.Server, env map[string]string)
		code    int // the process's
		summary int // the summary's exit_code
	}{
		{"default, a re-run refused", "", refused, 1, 1},
		{"0, a re-run refused", "0", refused, 0, 1},
		{"42, a re-run refused", "42", refused, 42, 1},
		{"0, every re-run made", "0", func(s *lookertest.Server, _ map[string]string) {
			s.AddFailure("1", since.Add(time.Hour), "boom")
		}, 0, 0},
		{"0, login refused", "0", func(_ *lookertest.Server, env map[string]string) {
			env["LOOKERSDK_CLIENT_SECRET"] = "not-the-secret"
		}, 3, 3},
		{"0, the result file cannot be written", "0", func(_ *lookertest.Server, env map[string]string) {
			env["RERUN_RESULT_FILE"] = filepath.Join(t.TempDir(), "missing", "return.json")
		}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			env := lookerEnv(s, since, until)
			if tt.setting != "" {
				env["RERUN_NEEDS_PERSON_EXIT_CODE"] = tt.setting
			}
			tt.seed(s, env)
			r := runConfig(t, context.Background(), s, env)
			got := [3]int{r.code, r.summary(t).ExitCode, lastExitCode(t, r.stderr)}
			if diff := cmp.Diff([3]int{tt.code, tt.summary, tt.code}, got); diff != "" {
				t.Errorf("process exit code, summary exit_code, log exit_code (-want +got):\n%s\nstderr:\n%s", diff, r.stderr)
			}
		})
	}
}

func TestSummaryOnStdoutAndInResultFile(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	since, until := window()
	s.AddFailure("1", since.Add(time.Hour), "boom")
	s.AddFailure("2", since.Add(time.Hour), "boom")
	s.AddSuccess("2", since.Add(2*time.Hour))
	r := runConfig(t, context.Background(), s, lookerEnv(s, since, until))
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
	want := []string{"dry_run", "exit_code", "failed", "failed_jobs", "failed_plans", "in_progress", "looker_url", "max_activity_lag_seconds", "needs_person", "not_attempted", "rerun", "skipped", "source", "window"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("summary fields (-want +got):\n%s", diff)
	}
	if raw["looker_url"] != s.URL {
		t.Errorf("looker_url %v, want the stand-in's %s", raw["looker_url"], s.URL)
	}
	sum := r.summary(t)
	if !sum.Window.Since.Equal(since) || !sum.Window.Until.Equal(until) || len(sum.Rerun) != 1 || sum.Rerun[0].NewPlanID == "" {
		t.Errorf("summary = %+v", sum)
	}
	// The lag the copy took to show is in the summary and the last log
	// line alike, to size RERUN_CONFIRM from real runs.
	if !strings.Contains(r.stderr, fmt.Sprintf(`"max_activity_lag_seconds":%v`, sum.MaxActivityLag)) || sum.MaxActivityLag <= 0 {
		t.Errorf("summary's max_activity_lag_seconds %v, not the same in the last log line:\n%s", sum.MaxActivityLag, lastLines(r.stderr, 2))
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
	if code := realMain(context.Background(), nil, &stdout, &stderr); code != exitPersonNeeded {
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

// TestDefaultWindow: without RERUN_SINCE and RERUN_UNTIL the window is
// RERUN_LOOKBACK long and ends RERUN_CONFIRM before the run, so a failure
// seconds before it, which System Activity may not show yet, is left to the
// next window rather than reported as examined.
func TestDefaultWindow(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	start := time.Now().UTC()
	s.AddFailure("1", start.Add(-3*time.Hour), "in the last 4h")
	s.AddFailure("2", start.Add(-5*time.Hour), "before it")
	s.AddFailure("3", start.Add(-2*time.Second), "seconds before the run")
	env := lookerEnv(s, start, start)
	delete(env, "RERUN_SINCE")
	delete(env, "RERUN_UNTIL")
	env["RERUN_LOOKBACK"] = "4h"
	r := runConfig(t, context.Background(), s, env)
	sum := r.summary(t)
	if r.code != exitOK || len(sum.Rerun) != 1 || sum.Rerun[0].PlanID != "1" || sum.FailedPlans != 1 {
		t.Errorf("exit %d, %d failed plans, rerun %+v; want plan 1 only", r.code, sum.FailedPlans, sum.Rerun)
	}
	if d := sum.Window.Until.Sub(sum.Window.Since); d != 4*time.Hour {
		t.Errorf("window is %s long, want 4h", d)
	}
	// RERUN_CONFIRM (10s) before the run, which started after start.
	if end := sum.Window.Until; end.After(start.Add(-9*time.Second)) || end.Before(start.Add(-11*time.Second)) {
		t.Errorf("window ends at %s, %s before the test started; want RERUN_CONFIRM (10s) before the run", end, start.Sub(end))
	}
	if strings.Contains(r.stderr, "RERUN_UNTIL is less than RERUN_CONFIRM") {
		t.Errorf("a warning about RERUN_UNTIL, which is not set:\n%s", r.stderr)
	}
}

// TestRecentUntilWarns: an explicit RERUN_UNTIL is used as given, but one
// later than RERUN_CONFIRM before the run gets a warning, once.
func TestRecentUntilWarns(t *testing.T) {
	t.Parallel()
	const warning = "RERUN_UNTIL is less than RERUN_CONFIRM before the run started"
	start := time.Now().UTC().Truncate(time.Second)
	for _, tt := range []struct {
		name  string
		until time.Time
		warns int
	}{
		{"now", start, 1},
		{"5s ago", start.Add(-5 * time.Second), 1},
		{"an hour ago", start.Add(-time.Hour), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			// The run starts at start, however long the test waited for its turn.
			s.SetClock(lookertest.NewClock(start))
			r := runConfig(t, context.Background(), s, lookerEnv(s, tt.until.Add(-time.Hour), tt.until))
			if got := strings.Count(r.stderr, warning); got != tt.warns {
				t.Errorf("%d warnings, want %d:\n%s", got, tt.warns, r.stderr)
			}
			if tt.warns > 0 && !strings.Contains(r.stderr, "end windows at least RERUN_CONFIRM before the run starts") {
				t.Errorf("the warning does not say what to do:\n%s", r.stderr)
			}
			if sum := r.summary(t); r.code != exitOK || !sum.Window.Until.Equal(tt.until) {
				t.Errorf("exit %d, window ends %s; want 0 and RERUN_UNTIL as given, %s", r.code, sum.Window.Until, tt.until)
			}
		})
	}
}

func TestSecretsNeverAppear(t *testing.T) {
	t.Parallel()
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
	r := runConfig(t, context.Background(), s, env)
	if r.code != exitPersonNeeded {
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

// TestSummaryIsTheLastLine checks what DockerOperator keeps as XCom: the last
// line of stdout and stderr read together. The final log line comes before
// the summary, whatever the outcome and the log format.
func TestSummaryIsTheLastLine(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		format string
		fail   bool
		want   int
	}{
		{"clean run, json logs", "json", false, exitOK},
		{"clean run, console logs", "console", false, exitOK},
		{"a re-run refused", "json", true, exitPersonNeeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			since, until := window()
			s.AddFailure("1", since.Add(time.Hour), "boom")
			if tt.fail {
				s.Inject(lookertest.Fault{Op: "run_once", PlanID: "1", Status: http.StatusForbidden})
			}
			env := lookerEnv(s, since, until)
			env["LOG_FORMAT"] = tt.format
			cfg := testConfig(t, s, env)
			var both bytes.Buffer // one writer, as a container's log is
			code := exitCode(run(context.Background(), cfg, &both, &both))
			if code != tt.want {
				t.Fatalf("exit %d, want %d\n%s", code, tt.want, both.String())
			}
			lines := strings.Split(strings.TrimRight(both.String(), "\n"), "\n")
			var sum rerun.Summary
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Window.Until.IsZero() {
				t.Fatalf("last line is not the summary (%v): %q", err, lines[len(lines)-1])
			}
			if prev := lines[len(lines)-2]; !strings.Contains(prev, "looker-rerun done") {
				t.Errorf("line before the summary = %q, want the final log line", prev)
			}
		})
	}
}

// TestLookerInAnotherTimeZone: a Looker whose Query Time Zone overrides
// query_timezone would answer for a window shifted by hours. The run stops
// with exit 3, its summary naming the setting to check, unless
// RERUN_LOOKER_TIMEZONE names the zone.
func TestLookerInAnotherTimeZone(t *testing.T) {
	t.Parallel()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		zone     string
		wantCode int
		wantLog  string
	}{
		{"", exitCannotStart, "User Specific Time Zones"},
		{"Asia/Tokyo", exitOK, `"looker_timezone":"Asia/Tokyo"`},
		{"America/New_York", exitCannotStart, "UTC+09:00"},
	} {
		t.Run("RERUN_LOOKER_TIMEZONE="+tt.zone, func(t *testing.T) {
			t.Parallel()
			s := lookertest.NewServer(t)
			s.SetQueryTimezone(tokyo)
			since, until := window()
			s.AddFailure("1", since.Add(time.Hour), "boom")
			env := lookerEnv(s, since, until)
			if tt.zone != "" {
				env["RERUN_LOOKER_TIMEZONE"] = tt.zone
			}
			r := runWith(t, context.Background(), s, env, 0)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantLog) {
				t.Fatalf("exit %d (want %d), log without %q:\n%s", r.code, tt.wantCode, tt.wantLog, r.stderr)
			}
			want := map[string]int{}
			if tt.wantCode == exitOK {
				want["1"] = 1
			}
			if diff := cmp.Diff(want, s.Reruns()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			const hint = "check RERUN_LOOKER_TIMEZONE"
			if sum := r.summary(t); tt.wantCode == exitCannotStart && !strings.Contains(sum.Error, hint) {
				t.Errorf("summary error %q, want it to say %q", sum.Error, hint)
			}
		})
	}
}

// TestStopIsExit4: a stop (SIGTERM) while logging in, listing or re-running
// is a run cut short, which Airflow's retry finishes: exit 4, whatever
// RERUN_NEEDS_PERSON_EXIT_CODE says, never 3 (a Looker that cannot be
// reached) nor 0. The summary says so and lists what was not attempted.
func TestStopIsExit4(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		where   string
		path    string // the request during which the run is stopped
		fault   lookertest.Fault
		reruns  map[string]int
		skipped []string // not_attempted
	}{
		{"logging in", "/api/4.0/login", lookertest.Fault{Op: lookertest.OpLogin, Delay: time.Minute}, map[string]int{}, []string{}},
		{"listing", "/api/4.0/queries/run/json", lookertest.Fault{Op: lookertest.OpRunInlineQuery, Delay: time.Minute}, map[string]int{}, []string{}},
		{"re-running", "/api/4.0/scheduled_plans/1/run_once", lookertest.Fault{}, map[string]int{"1": 1}, []string{"2", "3"}},
	} {
		for _, setting := range []string{"", "0"} {
			t.Run(tt.where+", RERUN_NEEDS_PERSON_EXIT_CODE="+setting, func(t *testing.T) {
				t.Parallel()
				s := lookertest.NewServer(t)
				since, until := window()
				for _, id := range []string{"1", "2", "3"} {
					s.AddFailure(id, since.Add(time.Hour), "boom")
				}
				if tt.fault.Op != "" {
					s.Inject(tt.fault)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				env := lookerEnv(s, since, until)
				env["LOOKERSDK_BASE_URL"] = stopOn(t, s, tt.path, cancel)
				env["RERUN_CONCURRENCY"] = "1"
				if setting != "" {
					env["RERUN_NEEDS_PERSON_EXIT_CODE"] = setting
				}
				// The wall clock: a fake one would end the grace period,
				// and cut the call in flight, at once.
				r := runCfg(ctx, wallConfig(t, time.Now(), env))
				sum := r.summary(t)
				if got := [3]int{r.code, sum.ExitCode, lastExitCode(t, r.stderr)}; got != [3]int{exitStopped, exitStopped, exitStopped} {
					t.Fatalf("exit code, summary exit_code, log exit_code = %v, want 4 each\n%s", got, r.stderr)
				}
				if !strings.Contains(sum.Error, "stopped before the end") {
					t.Errorf("summary error %q, want it to say the run was stopped", sum.Error)
				}
				if diff := cmp.Diff(tt.reruns, s.Reruns()); diff != "" {
					t.Errorf("deliveries (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.skipped, sum.NotAttempted); diff != "" {
					t.Errorf("not_attempted (-want +got):\n%s", diff)
				}
				if s.LiveTokens() != 0 {
					t.Error("token not revoked after a stop")
				}
			})
		}
	}
}

// stopOn serves s through a handler that calls stop when the first request
// for path arrives, before s sees it, and returns its URL.
func stopOn(t *testing.T, s *lookertest.Server, path string, stop func()) string {
	t.Helper()
	var once sync.Once
	hts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			once.Do(stop)
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(hts.Close)
	return hts.URL
}

// lastExitCode reads exit_code from the last log line, "looker-rerun done".
func lastExitCode(t *testing.T, stderr string) int {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	var done struct {
		Message  string `json:"message"`
		ExitCode *int   `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &done); err != nil || done.Message != "looker-rerun done" || done.ExitCode == nil {
		t.Fatalf("the last log line is not looker-rerun done with an exit_code (%v): %q", err, lines[len(lines)-1])
	}
	return *done.ExitCode
}

// TestDeadlineStopsLikeSIGTERM: at RERUN_DEADLINE the run stops as on a
// SIGTERM: exit 4, the summary written and naming the deadline, the token
// revoked. The deadline is set below what the checks accept (RERUN_CONFIRM
// + RERUN_WAIT + 30s), so that the test does not wait that long.
func TestDeadlineStopsLikeSIGTERM(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	since, until := window()
	s.AddFailure("1", since.Add(time.Hour), "boom")
	s.Inject(lookertest.Fault{Op: lookertest.OpRunInlineQuery, Delay: time.Minute})
	// The wall clock: the deadline ends the context, as a SIGTERM would.
	cfg := wallConfig(t, time.Now(), lookerEnv(s, since, until))
	cfg.Deadline = 100 * time.Millisecond
	r := runCfg(context.Background(), cfg)
	sum := r.summary(t)
	if got := [3]int{r.code, sum.ExitCode, lastExitCode(t, r.stderr)}; got != [3]int{exitStopped, exitStopped, exitStopped} {
		t.Fatalf("exit code, summary exit_code, log exit_code = %v, want 4 each\n%s", got, r.stderr)
	}
	if !strings.Contains(sum.Error, "stopped before the end: RERUN_DEADLINE=100ms passed") {
		t.Errorf("summary error %q, want it to name RERUN_DEADLINE", sum.Error)
	}
	if len(s.Reruns()) != 0 || s.LiveTokens() != 0 {
		t.Errorf("deliveries %v, %d live tokens; want none", s.Reruns(), s.LiveTokens())
	}
}

// TestOutOfTimeIsExit4: plans left because the last moment to start a
// re-run passed are a stopped run, which Airflow's retry finishes, and the
// summary names RERUN_DEADLINE.
func TestOutOfTimeIsExit4(t *testing.T) {
	t.Parallel()
	sum := &rerun.Summary{NotAttempted: []string{"7"}}
	end := outcome(context.Background(), Config{Deadline: time.Hour}, sum, fmt.Errorf("plan 7: %w", rerun.ErrOutOfTime))
	if code := exitCode(end); code != exitStopped {
		t.Errorf("exit code %d, want 4", code)
	}
	for _, want := range []string{"stopped before the end", "RERUN_DEADLINE=1h0m0s"} {
		if !strings.Contains(sum.Error, want) {
			t.Errorf("summary error %q, want it to say %q", sum.Error, want)
		}
	}
	if cfg := (Config{NeedsPersonExitCode: 0}); cfg.processExit(exitCode(end)) != exitStopped {
		t.Error("RERUN_NEEDS_PERSON_EXIT_CODE replaced exit 4")
	}
}

// TestDeadlineLeavesTheRestToTheRetry: seven failed plans, Looker taking a
// minute of its clock per run_once (as a low RERUN_RATE or a slow Looker
// would), and a RERUN_DEADLINE whose last moment to start a re-run,
// RERUN_CONFIRM + 30s before it, comes three and a half minutes in. The run
// re-runs the first four, lists the other three as not attempted and exits
// 4, naming RERUN_DEADLINE; Airflow's retry of the same window re-runs
// exactly those three. No plan is re-run twice, nor both re-run and left.
func TestDeadlineLeavesTheRestToTheRetry(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	s.SetClock(lookertest.NewClock(time.Now().UTC()))
	since, until := window()
	ids := []string{"1", "2", "3", "4", "5", "6", "7"}
	for i, id := range ids {
		s.AddFailure(id, since.Add(time.Hour+time.Duration(i)*time.Minute), "Slack API error: ratelimited")
	}
	env := lookerEnv(s, since, until)
	env["LOOKERSDK_BASE_URL"] = minutePerRunOnce(t, s)
	env["RERUN_CONCURRENCY"] = "1"
	// RERUN_CONFIRM (10s) + 30s before the deadline: 3m30s in.
	env["RERUN_DEADLINE"] = "4m10s"

	first := runConfig(t, context.Background(), s, env)
	sum := first.summary(t)
	if got := [3]int{first.code, sum.ExitCode, lastExitCode(t, first.stderr)}; got != [3]int{exitStopped, exitStopped, exitStopped} {
		t.Fatalf("exit code, summary exit_code, log exit_code = %v, want 4 each\n%s", got, lastLines(first.stderr, 10))
	}
	if !strings.Contains(sum.Error, "RERUN_DEADLINE=4m10s") {
		t.Errorf("summary error %q, want it to name RERUN_DEADLINE", sum.Error)
	}
	if diff := cmp.Diff(map[string]int{"1": 1, "2": 1, "3": 1, "4": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries by the first run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4"}, rerunIDs(sum)); diff != "" {
		t.Errorf("the first run's rerun (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"5", "6", "7"}, sum.NotAttempted); diff != "" {
		t.Errorf("the first run's not_attempted (-want +got):\n%s", diff)
	}

	retry := runConfig(t, context.Background(), s, env)
	sum = retry.summary(t)
	if retry.code != exitOK || len(sum.NotAttempted) != 0 {
		t.Errorf("the retry: exit %d, not_attempted %v; want 0 and none\n%s", retry.code, sum.NotAttempted, lastLines(retry.stderr, 10))
	}
	if diff := cmp.Diff([]string{"5", "6", "7"}, rerunIDs(sum)); diff != "" {
		t.Errorf("the retry's rerun (-want +got):\n%s", diff)
	}
	want := map[string]int{}
	for _, id := range ids {
		want[id] = 1
	}
	if diff := cmp.Diff(want, s.Reruns()); diff != "" {
		t.Errorf("deliveries after the retry (-want +got):\n%s", diff)
	}
}

// minutePerRunOnce serves s through a handler that moves s's clock a minute
// forward as each run_once arrives, before s sees it: Looker's run_once
// takes a minute of the clock the run reads. It returns its URL.
func minutePerRunOnce(t *testing.T, s *lookertest.Server) string {
	t.Helper()
	hts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/run_once") {
			s.Clock().Advance(time.Minute)
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(hts.Close)
	return hts.URL
}

// rerunIDs lists the plans the summary says were re-run, in its order.
func rerunIDs(sum rerun.Summary) []string {
	ids := []string{}
	for _, r := range sum.Rerun {
		ids = append(ids, r.PlanID)
	}
	return ids
}
