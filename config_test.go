package main

import (
	"context"
	"fmt"
	"maps"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func TestHelpListsEverySetting(t *testing.T) {
	for _, flag := range []string{"-h", "--help"} {
		r := runMain(t, context.Background(), nil, flag)
		if r.code != exitOK {
			t.Errorf("%s: exit %d, want 0", flag, r.code)
		}
		for _, s := range settings() {
			if !strings.Contains(r.stdout, s.key) {
				t.Errorf("%s does not list %s:\n%s", flag, s.key, r.stdout)
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

func TestVersionFromBuildInfo(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-11-28T22:10:00Z"}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name              string
		version, revision string // as -ldflags left them
		info              debug.BuildInfo
		want              [2]string
	}{
		{
			name: "set with -ldflags", version: "v1.2.3", revision: "abc123",
			info: debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261128221000-4d31f2e0a1b2"}, Settings: vcs("4d31f2e", "true")},
			want: [2]string{"v1.2.3", "abc123"},
		},
		{
			name: "built in a clean checkout", version: "dev", revision: "unknown",
			info: debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261128221000-4d31f2e0a1b2"}, Settings: vcs("4d31f2e0a1b2", "false")},
			want: [2]string{"v0.0.0-20261128221000-4d31f2e0a1b2", "4d31f2e0a1b2"},
		},
		{
			name: "built with changes", version: "dev", revision: "unknown",
			info: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("4d31f2e0a1b2", "true")},
			want: [2]string{"dev", "4d31f2e0a1b2-dirty"},
		},
		{
			name: "go install at a version", version: "dev", revision: "unknown",
			info: debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}},
			want: [2]string{"v1.4.0", "unknown"},
		},
		{
			name: "no git, as in the image build", version: "dev", revision: "unknown",
			info: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			want: [2]string{"dev", "unknown"},
		},
		{
			name: "only the version set with -ldflags", version: "v1.2.3", revision: "unknown",
			info: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("4d31f2e0a1b2", "false")},
			want: [2]string{"v1.2.3", "4d31f2e0a1b2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, r := fromBuildInfo(tt.version, tt.revision, &tt.info)
			if diff := cmp.Diff(tt.want, [2]string{v, r}); diff != "" {
				t.Errorf("version, revision (-want +got):\n%s", diff)
			}
		})
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
		{name: "permanent pattern matching an empty string", set: map[string]string{"RERUN_PERMANENT_PATTERN": "quota exceeded|"}, want: "RERUN_PERMANENT_PATTERN: must be a regular expression (Go syntax) such as (?i)mailbox full: it can match an empty string"},
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
		{name: "needs person exit code too big", set: map[string]string{"RERUN_NEEDS_PERSON_EXIT_CODE": "256"}, want: "RERUN_NEEDS_PERSON_EXIT_CODE=256: must be a whole number from 0 to 255"},
		{name: "needs person exit code negative", set: map[string]string{"RERUN_NEEDS_PERSON_EXIT_CODE": "-1"}, want: "RERUN_NEEDS_PERSON_EXIT_CODE=-1: must be a whole number from 0 to 255"},
		{name: "needs person exit code text", set: map[string]string{"RERUN_NEEDS_PERSON_EXIT_CODE": "x"}, want: `RERUN_NEEDS_PERSON_EXIT_CODE="x": must be a whole number from 0 to 255`},
		{name: "needs person exit code 2", set: map[string]string{"RERUN_NEEDS_PERSON_EXIT_CODE": "2"}, want: "RERUN_NEEDS_PERSON_EXIT_CODE=2: must be a whole number from 0 to 255 except 2, 3 and 4, such as 0 or 1: 2, 3 and 4 mean bad settings"},
		{name: "needs person exit code 3", set: map[string]string{"RERUN_NEEDS_PERSON_EXIT_CODE": "3"}, want: "RERUN_NEEDS_PERSON_EXIT_CODE=3: must be a whole number from 0 to 255 except 2, 3 and 4"},
		{name: "needs person exit code 4", set: map[string]string{"RERUN_NEEDS_PERSON_EXIT_CODE": "0x4"}, want: "RERUN_NEEDS_PERSON_EXIT_CODE=4: must be a whole number from 0 to 255 except 2, 3 and 4"},
		{name: "needs person exit code empty", set: map[string]string{"RERUN_NEEDS_PERSON_EXIT_CODE": ""}, want: "RERUN_NEEDS_PERSON_EXIT_CODE is set but empty"},
		{name: "confirm zero", set: map[string]string{"RERUN_CONFIRM": "0"}, want: "RERUN_CONFIRM=0s: must be at least 10s"},
		{name: "confirm 1ns", set: map[string]string{"RERUN_CONFIRM": "1ns"}, want: "RERUN_CONFIRM=1ns: must be at least 10s, a Go duration such as 15m or 1h30m (units s, m, h): it is how long System Activity may take to show a copy; below 10s a lost answer would be sent again before Looker's copy can show"},
		{name: "confirm just below the floor", set: map[string]string{"RERUN_CONFIRM": "9.999s"}, want: "RERUN_CONFIRM=9.999s: must be at least 10s"},
		{name: "confirm unparsable", set: map[string]string{"RERUN_CONFIRM": "120"}, want: `RERUN_CONFIRM="120": must be a Go duration`},
		{name: "looker time zone unknown", set: map[string]string{"RERUN_LOOKER_TIMEZONE": "Mars/Olympus"}, want: `RERUN_LOOKER_TIMEZONE="Mars/Olympus": not an IANA time zone such as Asia/Tokyo`},
		{name: "looker time zone Local", set: map[string]string{"RERUN_LOOKER_TIMEZONE": "Local"}, want: `RERUN_LOOKER_TIMEZONE="Local"`},
		{name: "looker time zone empty", set: map[string]string{"RERUN_LOOKER_TIMEZONE": ""}, want: "RERUN_LOOKER_TIMEZONE is set but empty"},
		{name: "base url with a password that does not parse", set: map[string]string{"LOOKERSDK_BASE_URL": "https://admin:pw%zz@looker.example.com"}, want: "https://REDACTED@looker.example.com"},
		{name: "base url with credentials", set: map[string]string{"LOOKERSDK_BASE_URL": "https://admin:pw@looker.example.com"}, want: "must not carry credentials: the API key goes in LOOKERSDK_CLIENT_ID and LOOKERSDK_CLIENT_SECRET"},
		{name: "plain http to a remote host", set: map[string]string{"LOOKERSDK_BASE_URL": "http://looker.example.com"}, want: `LOOKERSDK_BASE_URL="http://looker.example.com": plain http would send the client secret across the network in clear: use https://, or set RERUN_ALLOW_HTTP=true`},
		{name: "allow http", set: map[string]string{"RERUN_ALLOW_HTTP": "yes"}, want: `RERUN_ALLOW_HTTP="yes": must be true or false`},
		{name: "max window zero", set: map[string]string{"RERUN_MAX_WINDOW": "0"}, want: "RERUN_MAX_WINDOW=0s: must be positive"},
		{name: "window longer than the max", set: map[string]string{"RERUN_MAX_WINDOW": "9h"}, want: "is 10h0m0s long, more than RERUN_MAX_WINDOW=9h0m0s"},
		{name: "default window longer than the max", drop: []string{"RERUN_SINCE", "RERUN_UNTIL"}, set: map[string]string{"RERUN_LOOKBACK": "200h"}, want: "is 200h0m0s long, more than RERUN_MAX_WINDOW=168h0m0s"},
		{name: "deadline negative", set: map[string]string{"RERUN_DEADLINE": "-1h"}, want: "RERUN_DEADLINE=-1h0m0s: must be 0 (no deadline) or more"},
		{name: "deadline too short", set: map[string]string{"RERUN_DEADLINE": "40s"}, want: "RERUN_DEADLINE=40s: must be more than RERUN_CONFIRM + RERUN_WAIT + 30s = 40s"},
		{name: "deadline too short to wait", set: map[string]string{"RERUN_DEADLINE": "5m", "RERUN_WAIT": "5m"}, want: "RERUN_DEADLINE=5m0s: must be more than RERUN_CONFIRM + RERUN_WAIT + 30s = 5m40s"},
		{name: "misspelt variable", set: map[string]string{"RERUN_DRYRUN": "true"}, want: "RERUN_DRYRUN is not a setting of looker-rerun; did you mean RERUN_DRY_RUN?"},
		{name: "arguments", args: []string{"now"}, want: "settings come from the environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envWith(lookerEnv(s, since, until), tt.set, tt.drop)
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
			if strings.Contains(r.stderr, lookertest.ClientSecret) || strings.Contains(r.stderr, "pw") || strings.Contains(r.stderr, "admin:") {
				t.Errorf("a secret appears in the error:\n%s", r.stderr)
			}
		})
	}
}

// TestEveryProblemIsReportedAtOnce compares the whole error: every problem,
// each once, each naming its variable and what a valid value looks like.
func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	s := lookertest.NewServer(t)
	since, until := window()
	required := []string{"LOOKERSDK_BASE_URL", "LOOKERSDK_CLIENT_ID", "LOOKERSDK_CLIENT_SECRET"}
	tests := []struct {
		name string
		set  map[string]string
		drop []string
		want []string
	}{
		{
			name: "the example of issue 11",
			set:  map[string]string{"RERUN_SINCE": "yesterday", "RERUN_CONCURRENCY": "0", "LOG_LEVEL": "verbose", "RERUN_WAIT": "15"},
			want: []string{
				`RERUN_WAIT="15": must be a Go duration such as 15m or 1h30m (units s, m, h)`,
				`RERUN_CONCURRENCY=0: must be a whole number from 1 to 64`,
				`LOG_LEVEL="verbose": must be trace, debug, info, warn or error`,
				`RERUN_SINCE="yesterday": must be an RFC 3339 time such as 2026-11-27T16:00:00Z`,
			},
		},
		{
			name: "nothing set",
			drop: append(required, "RERUN_SINCE", "RERUN_UNTIL", "RERUN_RATE"),
			want: []string{
				"LOOKERSDK_BASE_URL is required: a URL such as https://example.looker.com",
				"LOOKERSDK_CLIENT_ID is required: the client id of a Looker API key",
				"LOOKERSDK_CLIENT_SECRET is required: the client secret of that API key",
			},
		},
		{
			name: "a range, a choice and a misspelling",
			set:  map[string]string{"RERUN_RATE": "-2", "LOG_FORMAT": "yaml", "RERUN_LOOKBAK": "2h"},
			want: []string{
				"RERUN_LOOKBAK is not a setting of looker-rerun; did you mean RERUN_LOOKBACK?",
				"RERUN_RATE=-2: must be a number of calls per second, 0 (no cap) or more, such as 5 or 0.5",
				`LOG_FORMAT="yaml": must be json or console`,
			},
		},
		{
			name: "unparsable values are not judged again",
			drop: []string{"RERUN_SINCE"},
			set:  map[string]string{"LOOKERSDK_TIMEOUT": "", "RERUN_LOOKBACK": "ten hours", "RERUN_CONCURRENCY": "0x41", "RERUN_RATE": "-1"},
			want: []string{
				"LOOKERSDK_TIMEOUT is set but empty: must be a whole number of seconds from 1 to 3600, such as 120, or unset to use the default (120)",
				`RERUN_LOOKBACK="ten hours": must be a Go duration such as 15m or 1h30m (units s, m, h)`,
				"RERUN_CONCURRENCY=65: must be a whole number from 1 to 64",
				"RERUN_RATE=-1: must be a number of calls per second, 0 (no cap) or more, such as 5 or 0.5",
			},
		},
		{
			name: "a bool",
			set:  map[string]string{"RERUN_DRY_RUN": "perhaps"},
			want: []string{`RERUN_DRY_RUN="perhaps": must be true or false`},
		},
		{
			name: "a duration",
			set:  map[string]string{"RERUN_LOOKBACK": "ten hours"},
			want: []string{`RERUN_LOOKBACK="ten hours": must be a Go duration such as 15m or 1h30m (units s, m, h)`},
		},
		{
			name: "a whole number of seconds",
			set:  map[string]string{"LOOKERSDK_TIMEOUT": "2m"},
			want: []string{`LOOKERSDK_TIMEOUT="2m": must be a whole number of seconds from 1 to 3600, such as 120`},
		},
		{
			name: "a whole number in a range, not a number",
			set:  map[string]string{"RERUN_CONCURRENCY": "many"},
			want: []string{`RERUN_CONCURRENCY="many": must be a whole number from 1 to 64`},
		},
		{
			name: "a number",
			set:  map[string]string{"RERUN_RATE": "fast"},
			want: []string{`RERUN_RATE="fast": must be a number of calls per second, 0 (no cap) or more, such as 5 or 0.5`},
		},
		{
			name: "set but empty",
			set: map[string]string{"LOOKERSDK_CLIENT_ID": "", "LOOKERSDK_VERIFY_SSL": " ", "LOG_LEVEL": "",
				"RERUN_LOOK_ID": ""},
			want: []string{
				"LOOKERSDK_CLIENT_ID is set but empty: must be the client id of a Looker API key",
				"LOOKERSDK_VERIFY_SSL is set but empty: must be true or false, or unset to use the default (true)",
				"RERUN_LOOK_ID is set but empty: must be a Look id (digits) such as 42, or unset to use the default",
				"LOG_LEVEL is set but empty: must be trace, debug, info, warn or error, or unset to use the default (info)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envWith(lookerEnv(s, since, until), tt.set, tt.drop)
			r := runMain(t, context.Background(), env)
			if r.code != exitConfig {
				t.Errorf("exit %d, want %d", r.code, exitConfig)
			}
			got := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			want := append([]string{"looker-rerun: bad settings (see -h):"}, tt.want...)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("stderr lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEverySettingSaysWhatIsValid keeps new settings honest: each has a hint
// for its errors, its default is a value it accepts, and the defaults
// together pass the checks.
func TestEverySettingSaysWhatIsValid(t *testing.T) {
	t.Parallel()
	v := defaults()
	for _, s := range settings() {
		if s.hint == "" {
			t.Errorf("%s has no hint tag, and its type implies none", s.key)
		}
		if set, _, err := v.field(s).state(); s.def != "" && (!set || err != nil) {
			t.Errorf("%s: the default %q does not decode: %v", s.key, s.def, err)
		}
		if s.desc == "" {
			t.Errorf("%s has no desc tag for -h", s.key)
		}
	}
	if _, err := newConfig(time.Now(), map[string]string{"LOOKERSDK_BASE_URL": "https://looker.example.com",
		"LOOKERSDK_CLIENT_ID": "id", "LOOKERSDK_CLIENT_SECRET": "secret"}); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}

// TestLoadConfigReadsAsNewConfig: the runs the tests make with newConfig are
// the runs envconfig loads from the same variables, problems included.
func TestLoadConfigReadsAsNewConfig(t *testing.T) {
	now := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	base := map[string]string{"LOOKERSDK_BASE_URL": "https://looker.example.com", "LOOKERSDK_CLIENT_ID": "id", "LOOKERSDK_CLIENT_SECRET": "secret"}
	for _, tt := range []struct {
		name string
		env  map[string]string
	}{
		{"the defaults", nil},
		{"every kind of value", map[string]string{"LOOKERSDK_VERIFY_SSL": "false", "LOOKERSDK_TIMEOUT": "0x10",
			"RERUN_RATE": "0.5", "RERUN_WAIT": "90s", "RERUN_SINCE": "2026-11-27T16:00:00Z", "RERUN_LOOKER_TIMEZONE": "Asia/Tokyo",
			"RERUN_DEADLINE": "1h", "RERUN_ALLOW_HTTP": "true", "RERUN_MAX_WINDOW": "24h", "RERUN_RESULT_FILE": "/tmp/r.json"}},
		{"problems", map[string]string{"LOOKERSDK_CLIENT_ID": "", "RERUN_CONCURRENCY": "many", "RERUN_WAIT": "-1s",
			"RERUN_DRYRUN": "true", "LOG_LEVEL": "loud"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := envWith(maps.Clone(base), tt.env, nil)
			clearEnv(t)
			for k, v := range env {
				t.Setenv(k, v)
			}
			loaded, lerr := loadConfig(now)
			made, merr := newConfig(now, env)
			if fmt.Sprint(lerr) != fmt.Sprint(merr) {
				t.Errorf("loadConfig's problems:\n%v\nnewConfig's:\n%v", lerr, merr)
			}
			opts := cmp.Options{cmp.AllowUnexported(Config{}, retryTiming{}), cmpopts.IgnoreFields(Config{}, "permanent", "location")}
			if diff := cmp.Diff(loaded, made, opts); diff != "" {
				t.Errorf("loadConfig (-) and newConfig (+) differ:\n%s", diff)
			}
		})
	}
}

func TestBaseURLForms(t *testing.T) {
	t.Parallel()
	s := lookertest.NewServer(t)
	since, until := window()
	s.AddFailure("1", since.Add(time.Hour), "boom")
	for i, base := range []string{s.URL, s.URL + "/", s.URL + "/api/4.0", s.URL + "/api/4.0/"} {
		env := lookerEnv(s, since, until)
		env["LOOKERSDK_BASE_URL"] = base
		env["RERUN_DRY_RUN"] = "true"
		if r := runConfig(t, context.Background(), s, env); r.code != exitOK || len(r.summary(t).Rerun) != 1 {
			t.Errorf("case %d, base url %q: exit %d\n%s", i, base, r.code, r.stderr)
		}
	}
}

// TestTimeoutBounds: LOOKERSDK_TIMEOUT is 1 to 3600 seconds. Beyond, the
// seconds overflowed time.Duration: a huge value became a few milliseconds,
// or a negative (no) timeout.
func TestTimeoutBounds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		want  time.Duration // 0: refused
	}{
		{"1", time.Second},
		{"120", 2 * time.Minute},
		{"3600", time.Hour},
		{"0x10", 16 * time.Second},
		{"0", 0},
		{"-1", 0},
		{"3601", 0},
		{"9223372037", 0},          // overflowed to a negative duration
		{"18446744074", 0},         // overflowed to about 290 ms
		{"9223372036854775807", 0}, // the largest int
	} {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			cfg, err := newConfig(time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC), map[string]string{"LOOKERSDK_BASE_URL": "https://looker.example.com",
				"LOOKERSDK_CLIENT_ID": "id", "LOOKERSDK_CLIENT_SECRET": "secret", "LOOKERSDK_TIMEOUT": tt.value})
			switch {
			case tt.want == 0 && (err == nil || !strings.Contains(err.Error(), "LOOKERSDK_TIMEOUT=")):
				t.Errorf("accepted, with a timeout of %s; want an error naming LOOKERSDK_TIMEOUT", cfg.timeout)
			case tt.want == 0 && !strings.Contains(err.Error(), "from 1 to 3600"):
				t.Errorf("error %q does not say what is valid", err)
			case tt.want != 0 && err != nil:
				t.Errorf("refused: %v", err)
			case cfg.timeout != tt.want:
				t.Errorf("timeout %s, want %s", cfg.timeout, tt.want)
			}
		})
	}
}

// TestWindow: the window loadConfig reads for a run started at now.
func TestWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	for _, tt := range []struct {
		name         string
		set          map[string]string
		since, until time.Duration // from now
		unsettled    bool          // warned of
	}{
		{"defaults: it ends RERUN_CONFIRM before now", nil, -2*time.Minute - 10*time.Hour, -2 * time.Minute, false},
		{"RERUN_CONFIRM moves the end", map[string]string{"RERUN_CONFIRM": "5m"}, -5*time.Minute - 10*time.Hour, -5 * time.Minute, false},
		{"to a whole second", map[string]string{"RERUN_CONFIRM": "10.5s", "RERUN_LOOKBACK": "1h"}, -11*time.Second - time.Hour, -11 * time.Second, false},
		{"RERUN_SINCE given", map[string]string{"RERUN_SINCE": at(-3 * time.Hour)}, -3 * time.Hour, -2 * time.Minute, false},
		{"RERUN_UNTIL given, settled", map[string]string{"RERUN_UNTIL": at(-time.Hour)}, -11 * time.Hour, -time.Hour, false},
		{"RERUN_UNTIL given, exactly RERUN_CONFIRM before now", map[string]string{"RERUN_UNTIL": at(-2 * time.Minute)}, -2*time.Minute - 10*time.Hour, -2 * time.Minute, false},
		{"RERUN_UNTIL given, later: used as given", map[string]string{"RERUN_UNTIL": at(-time.Minute)}, -time.Minute - 10*time.Hour, -time.Minute, true},
		{"RERUN_UNTIL given, in the future", map[string]string{"RERUN_UNTIL": at(time.Hour), "RERUN_SINCE": at(-time.Hour)}, -time.Hour, time.Hour, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := newConfig(now, envWith(map[string]string{"LOOKERSDK_BASE_URL": "https://looker.example.com",
				"LOOKERSDK_CLIENT_ID": "id", "LOOKERSDK_CLIENT_SECRET": "secret"}, tt.set, nil))
			if err != nil {
				t.Fatal(err)
			}
			type window struct {
				Since, Until time.Time
				Unsettled    bool
			}
			want := window{now.Add(tt.since), now.Add(tt.until), tt.unsettled}
			if diff := cmp.Diff(want, window{cfg.since, cfg.until, cfg.untilUnsettled()}); diff != "" {
				t.Errorf("window (-want +got):\n%s", diff)
			}
		})
	}
}

// envWith is env with the variables in set set and those in drop removed.
func envWith(env, set map[string]string, drop []string) map[string]string {
	for _, k := range drop {
		delete(env, k)
	}
	for k, v := range set {
		env[k] = v
	}
	return env
}

// TestPlainHTTP: a plain http:// base URL would send the client secret in
// clear: refused unless the host is loopback or RERUN_ALLOW_HTTP=true.
func TestPlainHTTP(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		base  string
		allow string
		ok    bool
	}{
		{"https://looker.example.com", "", true},
		{"http://looker.example.com", "", false},
		{"http://looker.example.com:19999/api/4.0", "false", false},
		{"http://10.0.0.7", "", false},
		{"http://looker.example.com", "true", true},
		{"http://localhost:9999", "", true},
		{"http://LOCALHOST", "", true},
		{"http://127.0.0.1:19999", "", true},
		{"http://127.8.9.10", "", true},
		{"http://[::1]:8080/api/4.0/", "", true},
	} {
		t.Run(tt.base+" RERUN_ALLOW_HTTP="+tt.allow, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"LOOKERSDK_BASE_URL": tt.base, "LOOKERSDK_CLIENT_ID": "id", "LOOKERSDK_CLIENT_SECRET": "secret"}
			if tt.allow != "" {
				env["RERUN_ALLOW_HTTP"] = tt.allow
			}
			_, err := newConfig(time.Now(), env)
			if tt.ok != (err == nil) {
				t.Errorf("accepted %v, want %v: %v", err == nil, tt.ok, err)
			}
		})
	}
}

// TestDeadline: the last re-run starts RERUN_CONFIRM + RERUN_WAIT + 30s
// before RERUN_DEADLINE, counted from the start; none is set without one.
func TestDeadline(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		set  map[string]string
		want time.Time
	}{
		{nil, time.Time{}},
		{map[string]string{"RERUN_DEADLINE": "1h"}, now.Add(time.Hour - 2*time.Minute - 30*time.Second)},
		{map[string]string{"RERUN_DEADLINE": "1h", "RERUN_WAIT": "10m", "RERUN_CONFIRM": "1m"}, now.Add(time.Hour - 11*time.Minute - 30*time.Second)},
		{map[string]string{"RERUN_DEADLINE": "2m31s"}, now.Add(time.Second)},
	} {
		t.Run(fmt.Sprint(tt.set), func(t *testing.T) {
			t.Parallel()
			cfg, err := newConfig(now, envWith(map[string]string{"LOOKERSDK_BASE_URL": "https://looker.example.com",
				"LOOKERSDK_CLIENT_ID": "id", "LOOKERSDK_CLIENT_SECRET": "secret"}, tt.set, nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.startBy(); !got.Equal(tt.want) {
				t.Errorf("start by %s, want %s", got, tt.want)
			}
		})
	}
}

// TestLookerURL: the summary's looker_url is where people open Looker: the
// base URL without the API's path, and without the API port 19999.
func TestLookerURL(t *testing.T) {
	t.Parallel()
	for base, want := range map[string]string{
		"https://example.looker.com":                        "https://example.looker.com",
		"https://example.looker.com:19999/api/4.0/":         "https://example.looker.com",
		"https://example.looker.com:19999":                  "https://example.looker.com",
		"https://looker.internal:9999/api/4.0":              "https://looker.internal:9999",
		"https://looker.internal:443/":                      "https://looker.internal:443",
		"http://127.0.0.1:8080/api/4.0":                     "http://127.0.0.1:8080",
		"https://[::1]:19999":                               "https://[::1]",
		"https://proxy.example.com/looker/api/4.0":          "https://proxy.example.com/looker",
		"https://example.looker.com:19999/api/4.0?x=secret": "",
	} {
		if got := (Config{BaseURL: base}).lookerURL(); got != want {
			t.Errorf("%s: looker_url %q, want %q", base, got, want)
		}
	}
}

// TestMisspelt: every unknown RERUN_ variable is reported; a LOOKERSDK_ one
// only when it is close to a setting here, as Looker's SDKs read others.
func TestMisspelt(t *testing.T) {
	t.Parallel()
	environ := []string{"PATH=/bin", "RERUN_FOO=1", "RERUN_DEADLIN=1h", "LOOKERSDK_CLIENTSECRET=x",
		"LOOKERSDK_REDIRECT_URI=https://x/cb", "LOOKERSDK_LOOKER_URL=https://x", "LOOKERSDK_EMBED_HOST=x", "LOOKERSDK_BASE_URL=https://x"}
	want := "RERUN_FOO is not a setting of looker-rerun\n" +
		"RERUN_DEADLIN is not a setting of looker-rerun; did you mean RERUN_DEADLINE?\n" +
		"LOOKERSDK_CLIENTSECRET is not a setting of looker-rerun; did you mean LOOKERSDK_CLIENT_SECRET?"
	if diff := cmp.Diff(want, fmt.Sprint(misspelt(environ))); diff != "" {
		t.Errorf("misspelt (-want +got):\n%s", diff)
	}
}
