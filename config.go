package main

import (
	"errors"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// Config is every setting, checked: the values of the table's variables
// (vars, in table.go), and what is derived from them. Tests of the run build
// one with the defaults and their own values, checked the same way.
type Config struct {
	BaseURL, ClientID, ClientSecret, APIVersion string
	VerifySSL, AllowHTTP                        bool
	TimeoutSec                                  int

	Since, Until        string
	Lookback, MaxWindow time.Duration
	LookID              string
	DryRun              bool

	Confirm, Wait, Deadline time.Duration
	LookerTimezone          string
	PermanentPattern        string
	RetryPermanent          bool
	MaxAttempts             int

	Concurrency         int
	Rate                float64
	ResultFile          string
	NeedsPersonExitCode int
	LogLevel, LogFormat string

	// rejected names the variables that did not decode: their fields hold
	// zero, not the user's value, and check does not judge them again.
	rejected map[string]bool

	// Derived by check.
	// start is when the run started: RERUN_DEADLINE counts from it.
	start        time.Time
	since, until time.Time
	// settled is RERUN_CONFIRM before the run started: System Activity is
	// trusted to show what happened before it. The default window ends there.
	settled          time.Time
	resultFileForced bool
	level            zerolog.Level
	timeout          time.Duration // per request; tests shorten it
	permanent        *rerun.Classifier
	location         *time.Location // RERUN_LOOKER_TIMEZONE, UTC by default

	// clock is the time the run reads; nil is the wall clock. Tests drive
	// System Activity's lag and the run's waits on it.
	clock rerun.Clock
	retry retryTiming
}

// config is the Config of these values for a run that starts at now, and
// every problem with them: the values that did not decode, the misspelt
// variables, and the values out of range or inconsistent.
func (v *vars) config(now time.Time, resultFileForced bool, misspelt error) (Config, error) {
	rejected, problems := v.problems()
	c := Config{
		BaseURL: v.BaseURL.v, ClientID: v.ClientID.v, ClientSecret: v.ClientSecret.v, APIVersion: v.APIVersion.v,
		VerifySSL: v.VerifySSL.v, AllowHTTP: v.AllowHTTP.v, TimeoutSec: v.TimeoutSec.v,
		Since: v.Since.v, Until: v.Until.v, Lookback: v.Lookback.v, MaxWindow: v.MaxWindow.v,
		LookID: v.LookID.v, DryRun: v.DryRun.v,
		Confirm: v.Confirm.v, Wait: v.Wait.v, Deadline: v.Deadline.v, LookerTimezone: v.LookerTimezone.v,
		PermanentPattern: v.PermanentPattern.v, RetryPermanent: v.RetryPermanent.v, MaxAttempts: v.MaxAttempts.v,
		Concurrency: v.Concurrency.v, Rate: v.Rate.v, ResultFile: v.ResultFile.v,
		NeedsPersonExitCode: v.NeedsPersonExitCode.v, LogLevel: v.LogLevel.v, LogFormat: v.LogFormat.v,
		rejected: rejected, resultFileForced: resultFileForced, retry: defaultRetry,
	}
	return c, errors.Join(problems, misspelt, c.check(now))
}

// retryTiming is how hard the HTTP clients retry and how long a stopped run
// lets its calls finish. Tests shorten it.
type retryTiming struct {
	max              int
	waitMin, waitMax time.Duration
	grace            time.Duration
	pollMin, pollMax time.Duration // System Activity's polls: RERUN_CONFIRM's and RERUN_WAIT's
}

// defaultRetry bounds a login against an unreachable Looker to about a
// minute of backoff (plus the request timeouts), then exit 3.
var defaultRetry = retryTiming{max: 5, waitMin: time.Second, waitMax: 30 * time.Second, grace: 5 * time.Second,
	pollMin: time.Second, pollMax: time.Minute}

// loadConfig reads and checks the settings, and reports every problem at
// once. now is when the run started: it fills the default window, and
// RERUN_DEADLINE counts from it.
func loadConfig(now time.Time) (Config, error) {
	var v vars
	// Never fails: each field decodes itself and keeps its problem.
	if err := envconfig.Process("", &v); err != nil {
		return Config{}, err
	}
	_, forced := os.LookupEnv("RERUN_RESULT_FILE")
	return v.config(now, forced, misspelt(os.Environ()))
}

// newConfig is the Config that loadConfig reads from an environment that
// holds env and no other variable: for tests of the run, which leave the
// process's environment alone and so may run in parallel.
func newConfig(now time.Time, env map[string]string) (Config, error) {
	v := defaults()
	var environ []string
	for _, s := range settings() {
		if raw, ok := env[s.key]; ok {
			_ = v.field(s).Decode(raw)
		}
	}
	for k, val := range env {
		environ = append(environ, k+"="+val)
	}
	slices.Sort(environ)
	_, forced := env["RERUN_RESULT_FILE"]
	return v.config(now, forced, misspelt(environ))
}

// processExit is the code the process exits with for a run whose outcome is
// code: RERUN_NEEDS_PERSON_EXIT_CODE when a person is needed, code otherwise.
func (c Config) processExit(code int) int {
	if code == exitPersonNeeded {
		// Airflow pushes the summary only when the task succeeds: with 0, a
		// later task fails on the summary's exit_code instead.
		return c.NeedsPersonExitCode
	}
	return code
}

// logValue is the effective config for the first log line, secret masked.
func (c Config) logValue(e *zerolog.Event) *zerolog.Event {
	secret := "unset"
	if c.ClientSecret != "" {
		secret = "set"
	}
	return e.Str("base_url", looker.RedactURL(c.BaseURL)).Str("client_id", c.ClientID).Str("client_secret", secret).
		Bool("verify_ssl", c.VerifySSL).Int("timeout_s", c.TimeoutSec).
		Time("since", c.since).Time("until", c.until).Str("look_id", c.LookID).Bool("dry_run", c.DryRun).
		Int("concurrency", c.Concurrency).Float64("rate", c.Rate).Str("result_file", c.ResultFile).
		Stringer("wait", c.Wait).Stringer("confirm", c.Confirm).Str("looker_timezone", c.location.String()).
		Int("max_attempts", c.MaxAttempts).Bool("retry_permanent", c.RetryPermanent).
		Str("permanent_pattern", c.PermanentPattern).Int("needs_person_exit_code", c.NeedsPersonExitCode).
		Str("log_level", c.LogLevel).Bool("allow_http", c.AllowHTTP).Stringer("max_window", c.MaxWindow).
		Stringer("deadline", c.Deadline)
}

// lookerURL is the web address of the Looker instance, for links: the base
// URL without the API's path, and without the API port 19999 (the web UI is
// on 443 or 9999 then), shown as looker.RedactURL does.
func (c Config) lookerURL() string {
	u, err := looker.NormalizeBaseURL(c.BaseURL)
	if err != nil {
		return ""
	}
	if u.Port() == "19999" {
		u.Host = u.Hostname()
		if strings.Contains(u.Host, ":") {
			u.Host = "[" + u.Host + "]" // an IPv6 address
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/api/"+looker.APIVersion+"/")
	u.RawPath = ""
	return looker.RedactURL(u.String())
}
