package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// Config is every setting, read from the environment. The LOOKERSDK_ names
// are the ones Looker's own SDKs read, so existing secrets and env files work
// unchanged. Each field's tags give its variable (envconfig), default,
// whether it is required, its meaning for -h (desc), and what a valid value
// looks like for error messages (hint; durations and bools have one by
// type).
type Config struct {
	BaseURL      string `envconfig:"LOOKERSDK_BASE_URL" required:"true" hint:"a URL such as https://example.looker.com" desc:"Looker URL: https://example.looker.com, with or without :19999 and /api/4.0"`
	ClientID     string `envconfig:"LOOKERSDK_CLIENT_ID" required:"true" hint:"the client id of a Looker API key" desc:"API client id of the Looker user that re-runs the plans"`
	ClientSecret string `envconfig:"LOOKERSDK_CLIENT_SECRET" required:"true" hint:"the client secret of that API key" desc:"API client secret (never logged)"`
	APIVersion   string `envconfig:"LOOKERSDK_API_VERSION" default:"4.0" hint:"4.0" desc:"Looker API version; only 4.0 exists since Looker 23.18"`
	VerifySSL    bool   `envconfig:"LOOKERSDK_VERIFY_SSL" default:"true" desc:"verify Looker's TLS certificate"`
	TimeoutSec   int    `envconfig:"LOOKERSDK_TIMEOUT" default:"120" hint:"a whole number of seconds from 1 to 3600, such as 120" desc:"seconds each HTTP request to Looker may take (1 to 3600)"`

	Since    string        `envconfig:"RERUN_SINCE" hint:"an RFC 3339 time such as 2026-11-27T16:00:00Z" desc:"start of the window of failed deliveries, RFC 3339 (default: RERUN_UNTIL minus RERUN_LOOKBACK)"`
	Until    string        `envconfig:"RERUN_UNTIL" hint:"an RFC 3339 time such as 2026-11-28T01:00:00Z" desc:"end of the window, RFC 3339, excluded (default: now minus RERUN_CONFIRM, which System Activity may take to show a failure)"`
	Lookback time.Duration `envconfig:"RERUN_LOOKBACK" default:"10h" desc:"window length when RERUN_SINCE is not set"`
	LookID   string        `envconfig:"RERUN_LOOK_ID" hint:"a Look id (digits) such as 42" desc:"take the failed plans from this saved Look (rows with scheduled_plan.id) instead of querying System Activity"`
	DryRun   bool          `envconfig:"RERUN_DRY_RUN" default:"false" desc:"decide and report everything, re-run nothing"`

	Confirm          time.Duration `envconfig:"RERUN_CONFIRM" default:"2m" desc:"after a lost run_once answer, look this long (at least 10s) for its copy in System Activity before sending again; every copy made must show there within it"`
	LookerTimezone   string        `envconfig:"RERUN_LOOKER_TIMEZONE" hint:"an IANA time zone such as Asia/Tokyo or America/New_York" desc:"IANA time zone Looker's queries answer in, when not UTC (its Query Time Zone, with user-specific time zones off), e.g. Asia/Tokyo"`
	Wait             time.Duration `envconfig:"RERUN_WAIT" default:"0" desc:"wait this long for the re-runs to be delivered and report each outcome; 0 = do not wait"`
	PermanentPattern string        `envconfig:"RERUN_PERMANENT_PATTERN" hint:"a regular expression (Go syntax) such as (?i)mailbox full" desc:"regular expression of more failure details (status_detail) that a re-run cannot fix"`
	RetryPermanent   bool          `envconfig:"RERUN_RETRY_PERMANENT" default:"false" desc:"re-run permanent failures anyway"`
	MaxAttempts      int           `envconfig:"RERUN_MAX_ATTEMPTS" default:"2" hint:"a whole number, 0 (no cap) or more, such as 2" desc:"failed re-runs of one failure before it is left to a person; 0 = no cap"`

	Concurrency int     `envconfig:"RERUN_CONCURRENCY" default:"4" hint:"a whole number from 1 to 64" desc:"plans re-run at once"`
	Rate        float64 `envconfig:"RERUN_RATE" default:"5" hint:"a number of calls per second, 0 (no cap) or more, such as 5 or 0.5" desc:"most run_once calls per second; 0 = no cap"`
	ResultFile  string  `envconfig:"RERUN_RESULT_FILE" default:"/airflow/xcom/return.json" hint:"a file path such as /airflow/xcom/return.json" desc:"where the summary is written too: when its folder exists, or always when set"`

	NeedsPersonExitCode int `envconfig:"RERUN_NEEDS_PERSON_EXIT_CODE" default:"1" hint:"a whole number from 0 to 255 except 2, 3 and 4, such as 0 or 1" desc:"exit code when a person is needed (not 2, 3 or 4); 0 lets Airflow keep the summary, whose exit_code still says 1"`

	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" hint:"trace, debug, info, warn or error" desc:"trace, debug, info, warn or error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"json" hint:"json or console" desc:"json, or console for people"`

	// rejected names the variables precheck reported: envconfig did not load
	// their fields, so check does not judge their zero values.
	rejected map[string]bool

	// Derived by resolve.
	since, until time.Time
	// settled is RERUN_CONFIRM before the run started: System Activity is
	// trusted to show what happened before it. The default window ends there.
	settled          time.Time
	resultFileForced bool
	level            zerolog.Level
	timeout          time.Duration // per request; tests shorten it
	permanent        *rerun.Classifier
	location         *time.Location // RERUN_LOOKER_TIMEZONE, UTC by default

	retry retryTiming
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

// minConfirm is the least RERUN_CONFIRM accepted. After a lost run_once
// answer the run looks this long for the copy before sending again; System
// Activity takes seconds to show a copy, so a shorter look finds nothing and
// delivers twice.
const minConfirm = 10 * time.Second

// maxTimeoutSec bounds LOOKERSDK_TIMEOUT: an hour is already far longer than
// any answer worth waiting for, and keeps the request timeout well within a
// time.Duration.
const maxTimeoutSec = 3600

func timeoutInRange(sec int) bool { return sec >= 1 && sec <= maxTimeoutSec }

// knownPrefix is the prefix of this tool's own variables: any other variable
// with it is a misspelling, reported rather than ignored.
const knownPrefix = "RERUN_"

// loadConfig reads and checks the settings, and reports every problem at
// once. now fills the default window.
func loadConfig(now time.Time) (Config, error) {
	cfg := Config{retry: defaultRetry}
	_, cfg.resultFileForced = os.LookupEnv("RERUN_RESULT_FILE")
	rejected, problems := precheck()
	cfg.rejected = rejected
	return cfg, errors.Join(problems, misspelt(), cfg.load(), cfg.check(now))
}

// precheck reports every variable that is required but unset, set but
// empty, or does not parse as its field's type, and names them.
// envconfig.Process loads the settings, but stops at the first such
// problem, hiding the others, and takes a set-but-empty variable as its
// value: a template that rendered empty must not quietly become "use the
// default window", nor an empty URL. precheck assigns nothing; parses
// accepts exactly what Process does.
func precheck() (map[string]bool, error) {
	var errs []error
	rejected := map[string]bool{}
	t := reflect.TypeFor[Config]()
	for _, s := range settings() {
		raw, set := os.LookupEnv(s.key)
		switch {
		case !set && s.required:
			errs = append(errs, fmt.Errorf("%s is required: %s", s.key, s.hint))
		case set && strings.TrimSpace(raw) == "":
			msg := fmt.Sprintf("%s is set but empty: must be %s", s.key, s.hint)
			if !s.required {
				msg += ", or unset to use the default"
			}
			if s.def != "" {
				msg += " (" + s.def + ")"
			}
			errs = append(errs, errors.New(msg))
		case set && parses(t.Field(s.index).Type, raw) != nil:
			errs = append(errs, fmt.Errorf("%s=%q: must be %s", s.key, raw, s.hint))
		default:
			continue
		}
		rejected[s.key] = true
	}
	return rejected, errors.Join(errs...)
}

// parses reports whether envconfig.Process can assign s to a field of type
// t, testing it the way Process converts it: whole numbers with
// strconv.ParseInt(s, 0, ...), so 0x10 is 16 and 010 is octal 8. Kinds it
// does not know are left to Process to judge.
func parses(t reflect.Type, s string) error {
	var err error
	if t == reflect.TypeFor[time.Duration]() {
		_, err = time.ParseDuration(s)
		return err
	}
	switch t.Kind() {
	case reflect.Bool:
		_, err = strconv.ParseBool(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(s, 0, t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		_, err = strconv.ParseUint(s, 0, t.Bits())
	case reflect.Float32, reflect.Float64:
		_, err = strconv.ParseFloat(s, t.Bits())
	}
	return err
}

// load has envconfig.Process fill the fields: each from its variable, or
// from its default when the variable is unset. When precheck rejected some
// variables, Process is given a view of the others instead of c (it would
// stop at the first rejected one): a struct of pointers to c's fields with
// the same tags, which Process follows and writes through. The rejected
// fields stay zero, and check does not judge them.
func (c *Config) load() error {
	if len(c.rejected) == 0 {
		return envconfig.Process("", c)
	}
	v := reflect.ValueOf(c).Elem()
	var (
		fields []reflect.StructField
		ptrs   []reflect.Value
	)
	for _, s := range settings() {
		if c.rejected[s.key] {
			continue
		}
		f := v.Type().Field(s.index)
		fields = append(fields, reflect.StructField{Name: f.Name, Type: reflect.PointerTo(f.Type), Tag: f.Tag})
		ptrs = append(ptrs, v.Field(s.index).Addr())
	}
	view := reflect.New(reflect.StructOf(fields)).Elem()
	for i, p := range ptrs {
		view.Field(i).Set(p)
	}
	return envconfig.Process("", view.Addr().Interface())
}

// check validates every value and resolves the settings parsed from them,
// joining every problem.
func (c *Config) check(now time.Time) error { return errors.Join(c.validate(), c.resolve(now)) }

// validate checks the values that need no parsing beyond envconfig's, and
// joins every problem, each saying what a valid value looks like.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// mustBe reports a value outside the range its hint gives.
	mustBe := func(key string, value any) { bad("%s=%v: must be %s", key, value, hint(key)) }
	// A field precheck rejected holds zero, not the user's value, and its
	// problem is reported already: the string checks skip "", the number
	// checks ask loaded.
	loaded := func(key string) bool { return !c.rejected[key] }

	if c.BaseURL != "" {
		if _, err := looker.NormalizeBaseURL(c.BaseURL); err != nil {
			bad("LOOKERSDK_BASE_URL: %v", err)
		}
	}
	if c.APIVersion != "" && c.APIVersion != looker.APIVersion {
		bad("LOOKERSDK_API_VERSION=%q: only %s is supported (Looker removed 3.x in 23.18)", c.APIVersion, looker.APIVersion)
	}
	if loaded("LOOKERSDK_TIMEOUT") && !timeoutInRange(c.TimeoutSec) {
		mustBe("LOOKERSDK_TIMEOUT", c.TimeoutSec)
	}
	if loaded("RERUN_LOOKBACK") && c.Lookback <= 0 {
		bad("RERUN_LOOKBACK=%s: must be positive, %s", c.Lookback, durationHint)
	}
	if loaded("RERUN_CONCURRENCY") && (c.Concurrency < 1 || c.Concurrency > 64) {
		mustBe("RERUN_CONCURRENCY", c.Concurrency)
	}
	if loaded("RERUN_RATE") && (c.Rate < 0 || c.Rate != c.Rate) {
		mustBe("RERUN_RATE", c.Rate)
	}
	if loaded("RERUN_WAIT") && c.Wait < 0 {
		bad("RERUN_WAIT=%s: must be 0 (do not wait) or more, %s", c.Wait, durationHint)
	}
	if loaded("RERUN_CONFIRM") && c.Confirm < minConfirm {
		bad("RERUN_CONFIRM=%s: must be at least %s, %s: it is how long System Activity may take to show a copy; below %s a lost answer would be sent again before Looker's copy can show",
			c.Confirm, minConfirm, durationHint, minConfirm)
	}
	if loaded("RERUN_MAX_ATTEMPTS") && c.MaxAttempts < 0 {
		mustBe("RERUN_MAX_ATTEMPTS", c.MaxAttempts)
	}
	if loaded("RERUN_NEEDS_PERSON_EXIT_CODE") {
		switch code := c.NeedsPersonExitCode; code {
		case exitConfig, exitCannotStart, exitStopped:
			// Airflow, or whoever reads the code, would take a person
			// needed for bad settings, an unreachable Looker or a stop.
			bad("RERUN_NEEDS_PERSON_EXIT_CODE=%d: must be %s: 2, 3 and 4 mean bad settings, a Looker that cannot be reached and a stopped run", code, hint("RERUN_NEEDS_PERSON_EXIT_CODE"))
		default:
			if code < 0 || code > 255 {
				mustBe("RERUN_NEEDS_PERSON_EXIT_CODE", code)
			}
		}
	}
	if c.LookID != "" && strings.Trim(c.LookID, "0123456789") != "" {
		mustBe("RERUN_LOOK_ID", strconv.Quote(c.LookID))
	}
	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "console" {
		mustBe("LOG_FORMAT", strconv.Quote(c.LogFormat))
	}
	return errors.Join(errs...)
}

// resolve computes the settings that are parsed from the raw values (the
// window, the log level, the permanent-failure patterns, the request
// timeout) and reports every value that does not parse. now ends the default
// window.
func (c *Config) resolve(now time.Time) error {
	var (
		errs []error
		err  error
	)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if timeoutInRange(c.TimeoutSec) {
		// In range only: a huge value would overflow the multiplication
		// into a few milliseconds, or a negative (no) timeout.
		c.timeout = time.Duration(c.TimeoutSec) * time.Second
	}
	if c.permanent, err = rerun.NewClassifier(c.PermanentPattern); err != nil {
		bad("RERUN_PERMANENT_PATTERN: must be %s: %v", hint("RERUN_PERMANENT_PATTERN"), err)
	}
	if c.level, err = zerolog.ParseLevel(c.LogLevel); c.LogLevel != "" && (err != nil || c.level == zerolog.NoLevel) {
		bad("LOG_LEVEL=%q: must be %s", c.LogLevel, hint("LOG_LEVEL"))
	}

	c.location = time.UTC
	if c.LookerTimezone != "" {
		if c.location, err = time.LoadLocation(c.LookerTimezone); err != nil || c.LookerTimezone == "Local" {
			c.location = time.UTC
			bad("RERUN_LOOKER_TIMEZONE=%q: not an IANA time zone such as Asia/Tokyo or America/New_York", c.LookerTimezone)
		}
	}

	// System Activity is trusted to show within RERUN_CONFIRM what Looker
	// did (the run waits that long for its own copies): a failure later
	// than this may not be listed yet. Without RERUN_UNTIL the window ends
	// here, so that it never reports as examined what could not be seen;
	// the next window starts here and sees it. An explicit RERUN_UNTIL is
	// the caller's, used as given: pulling it back would open a gap before
	// the next window. run warns when it is later.
	c.settled = now.UTC().Add(-c.Confirm).Truncate(time.Second)
	c.until = c.settled
	// Without RERUN_UNTIL the window ends RERUN_CONFIRM before now, and
	// without RERUN_SINCE it is RERUN_LOOKBACK long: unknown when precheck
	// rejected them.
	untilOK := c.Until != "" || !c.rejected["RERUN_CONFIRM"]
	sinceOK := c.Since != "" || !c.rejected["RERUN_LOOKBACK"]
	if c.Until != "" {
		if c.until, err = time.Parse(time.RFC3339, c.Until); err != nil {
			untilOK = false
			bad("RERUN_UNTIL=%q: must be %s", c.Until, hint("RERUN_UNTIL"))
		}
	}
	c.since = c.until.Add(-c.Lookback)
	if c.Since != "" {
		if c.since, err = time.Parse(time.RFC3339, c.Since); err != nil {
			sinceOK = false
			bad("RERUN_SINCE=%q: must be %s", c.Since, hint("RERUN_SINCE"))
		}
	}
	if untilOK && sinceOK && !c.since.Before(c.until) {
		bad("RERUN_SINCE=%s is not before RERUN_UNTIL=%s: the window is empty", c.since.Format(time.RFC3339), c.until.Format(time.RFC3339))
	}
	c.since, c.until = c.since.UTC(), c.until.UTC()
	return errors.Join(errs...)
}

// untilUnsettled reports an explicit RERUN_UNTIL later than settled: System
// Activity may not show the window's last failures yet, and a next window
// that starts at RERUN_UNTIL will not look for them again.
func (c Config) untilUnsettled() bool { return c.Until != "" && c.until.After(c.settled) }

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
		Str("log_level", c.LogLevel)
}
