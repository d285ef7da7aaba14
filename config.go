package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// Config is every setting, read from the environment. The LOOKERSDK_ names
// are the ones Looker's own SDKs read, so existing secrets and env files work
// unchanged.
type Config struct {
	BaseURL      string `envconfig:"LOOKERSDK_BASE_URL" required:"true" desc:"Looker URL: https://example.looker.com, with or without :19999 and /api/4.0"`
	ClientID     string `envconfig:"LOOKERSDK_CLIENT_ID" required:"true" desc:"API client id of the Looker user that re-runs the plans"`
	ClientSecret string `envconfig:"LOOKERSDK_CLIENT_SECRET" required:"true" desc:"API client secret (never logged)"`
	APIVersion   string `envconfig:"LOOKERSDK_API_VERSION" default:"4.0" desc:"Looker API version; only 4.0 exists since Looker 23.18"`
	VerifySSL    bool   `envconfig:"LOOKERSDK_VERIFY_SSL" default:"true" desc:"verify Looker's TLS certificate"`
	TimeoutSec   int    `envconfig:"LOOKERSDK_TIMEOUT" default:"120" desc:"seconds each HTTP request to Looker may take"`

	Since    string        `envconfig:"RERUN_SINCE" desc:"start of the window of failed deliveries, RFC 3339 (default: RERUN_UNTIL minus RERUN_LOOKBACK)"`
	Until    string        `envconfig:"RERUN_UNTIL" desc:"end of the window, RFC 3339, excluded (default: now)"`
	Lookback time.Duration `envconfig:"RERUN_LOOKBACK" default:"10h" desc:"window length when RERUN_SINCE is not set"`
	LookID   string        `envconfig:"RERUN_LOOK_ID" desc:"take the failed plans from this saved Look (rows with scheduled_plan.id) instead of querying System Activity"`
	DryRun   bool          `envconfig:"RERUN_DRY_RUN" default:"false" desc:"decide and report everything, re-run nothing"`

	Wait             time.Duration `envconfig:"RERUN_WAIT" default:"0" desc:"wait this long for the re-runs to be delivered and report each outcome; 0 = do not wait"`
	Confirm          time.Duration `envconfig:"RERUN_CONFIRM" default:"2m" desc:"after a lost run_once answer, look this long for its copy in System Activity before sending again; every copy made must show there within it"`
	LookerTimezone   string        `envconfig:"RERUN_LOOKER_TIMEZONE" desc:"IANA time zone Looker's queries answer in, when not UTC (its Query Time Zone, with user-specific time zones off), e.g. Asia/Tokyo"`
	PermanentPattern string        `envconfig:"RERUN_PERMANENT_PATTERN" desc:"regular expression of more failure details (status_detail) that a re-run cannot fix"`
	RetryPermanent   bool          `envconfig:"RERUN_RETRY_PERMANENT" default:"false" desc:"re-run permanent failures anyway"`
	MaxAttempts      int           `envconfig:"RERUN_MAX_ATTEMPTS" default:"2" desc:"failed re-runs of one failure before it is left to a person; 0 = no cap"`

	Concurrency int     `envconfig:"RERUN_CONCURRENCY" default:"4" desc:"plans re-run at once"`
	Rate        float64 `envconfig:"RERUN_RATE" default:"5" desc:"most run_once calls per second; 0 = no cap"`
	ResultFile  string  `envconfig:"RERUN_RESULT_FILE" default:"/airflow/xcom/return.json" desc:"where the summary is written too: when its folder exists, or always when set"`

	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"trace, debug, info, warn or error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"json" desc:"json, or console for people"`

	// Derived by resolve.
	since, until     time.Time
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
	pollMin, pollMax time.Duration // RERUN_WAIT's polls
	confirmPoll      time.Duration // RERUN_CONFIRM's first interval
}

// defaultRetry bounds a login against an unreachable Looker to about a
// minute of backoff (plus the request timeouts), then exit 3.
var defaultRetry = retryTiming{max: 5, waitMin: time.Second, waitMax: 30 * time.Second, grace: 5 * time.Second,
	pollMin: 5 * time.Second, pollMax: time.Minute, confirmPoll: time.Second}

// knownPrefix is the prefix of this tool's own variables: any other variable
// with it is a misspelling, reported rather than ignored.
const knownPrefix = "RERUN_"

// loadConfig reads and checks the settings. now fills the default window.
func loadConfig(now time.Time) (Config, error) {
	var cfg Config
	if err := envconfig.Process("", &cfg); err != nil {
		return cfg, errors.Join(envError(err), misspelt())
	}
	cfg.retry = defaultRetry
	_, cfg.resultFileForced = os.LookupEnv("RERUN_RESULT_FILE")
	return cfg, errors.Join(misspelt(), setButEmpty(), cfg.check(now))
}

// setButEmpty reports the optional variables without a default that are set
// to nothing: a template that rendered empty must not quietly become "use
// the default window". (validate sees the others: empty is not a valid
// value for any of them.)
func setButEmpty() error {
	var errs []error
	for _, name := range []string{"RERUN_SINCE", "RERUN_UNTIL", "RERUN_LOOK_ID", "RERUN_PERMANENT_PATTERN", "RERUN_LOOKER_TIMEZONE"} {
		if v, ok := os.LookupEnv(name); ok && strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s is set but empty; unset it to use the default", name))
		}
	}
	return errors.Join(errs...)
}

// envError rewrites envconfig's errors to name the variable plainly.
func envError(err error) error {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s=%q: not a valid %s", pe.KeyName, pe.Value, pe.TypeName)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "required key "); ok {
		return fmt.Errorf("%s is required", strings.TrimSuffix(msg, " missing value"))
	}
	return err
}

// check validates every value and resolves the settings parsed from them,
// joining every problem.
func (c *Config) check(now time.Time) error { return errors.Join(c.validate(), c.resolve(now)) }

// validate checks the values that need no parsing beyond envconfig's, and
// joins every problem.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, v := range []struct{ name, value string }{
		{"LOOKERSDK_BASE_URL", c.BaseURL}, {"LOOKERSDK_CLIENT_ID", c.ClientID}, {"LOOKERSDK_CLIENT_SECRET", c.ClientSecret},
		{"LOOKERSDK_API_VERSION", c.APIVersion}, {"RERUN_RESULT_FILE", c.ResultFile}, {"LOG_LEVEL", c.LogLevel}, {"LOG_FORMAT", c.LogFormat},
	} {
		if strings.TrimSpace(v.value) == "" {
			bad("%s is set but empty", v.name)
		}
	}
	if c.BaseURL != "" {
		if _, err := looker.NormalizeBaseURL(c.BaseURL); err != nil {
			bad("LOOKERSDK_BASE_URL: %v", err)
		}
	}
	if c.APIVersion != "" && c.APIVersion != looker.APIVersion {
		bad("LOOKERSDK_API_VERSION=%q: only %s is supported (Looker removed 3.x in 23.18)", c.APIVersion, looker.APIVersion)
	}
	if c.TimeoutSec <= 0 {
		bad("LOOKERSDK_TIMEOUT=%d: must be a positive number of seconds", c.TimeoutSec)
	}
	if c.Lookback <= 0 {
		bad("RERUN_LOOKBACK=%s: must be positive", c.Lookback)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		bad("RERUN_CONCURRENCY=%d: must be 1 to 64", c.Concurrency)
	}
	if c.Rate < 0 || c.Rate != c.Rate {
		bad("RERUN_RATE=%v: must be 0 (no cap) or more", c.Rate)
	}
	if c.Wait < 0 {
		bad("RERUN_WAIT=%s: must be 0 (do not wait) or more", c.Wait)
	}
	if c.Confirm <= 0 {
		bad("RERUN_CONFIRM=%s: must be positive, such as 2m: it is how long System Activity may take to show a copy", c.Confirm)
	}
	if c.MaxAttempts < 0 {
		bad("RERUN_MAX_ATTEMPTS=%d: must be 0 (no cap) or more", c.MaxAttempts)
	}
	if c.LookID != "" && strings.Trim(c.LookID, "0123456789") != "" {
		bad("RERUN_LOOK_ID=%q: must be a Look id (digits)", c.LookID)
	}
	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "console" {
		bad("LOG_FORMAT=%q: must be json or console", c.LogFormat)
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

	c.timeout = time.Duration(c.TimeoutSec) * time.Second
	if c.permanent, err = rerun.NewClassifier(c.PermanentPattern); err != nil {
		bad("RERUN_PERMANENT_PATTERN: not a regular expression: %v", err)
	}
	if c.level, err = zerolog.ParseLevel(c.LogLevel); c.LogLevel != "" && (err != nil || c.level == zerolog.NoLevel) {
		bad("LOG_LEVEL=%q: must be trace, debug, info, warn or error", c.LogLevel)
	}

	c.location = time.UTC
	if c.LookerTimezone != "" {
		if c.location, err = time.LoadLocation(c.LookerTimezone); err != nil || c.LookerTimezone == "Local" {
			c.location = time.UTC
			bad("RERUN_LOOKER_TIMEZONE=%q: not an IANA time zone such as Asia/Tokyo or America/New_York", c.LookerTimezone)
		}
	}

	c.until = now.UTC()
	untilOK, sinceOK := true, true
	if c.Until != "" {
		if c.until, err = time.Parse(time.RFC3339, c.Until); err != nil {
			untilOK = false
			bad("RERUN_UNTIL=%q: not an RFC 3339 time such as 2026-11-28T01:00:00Z", c.Until)
		}
	}
	c.since = c.until.Add(-c.Lookback)
	if c.Since != "" {
		if c.since, err = time.Parse(time.RFC3339, c.Since); err != nil {
			sinceOK = false
			bad("RERUN_SINCE=%q: not an RFC 3339 time such as 2026-11-27T16:00:00Z", c.Since)
		}
	}
	if untilOK && sinceOK && !c.since.Before(c.until) {
		bad("RERUN_SINCE=%s is not before RERUN_UNTIL=%s: the window is empty", c.since.Format(time.RFC3339), c.until.Format(time.RFC3339))
	}
	c.since, c.until = c.since.UTC(), c.until.UTC()
	return errors.Join(errs...)
}

// logValue is the effective config for the first log line, secret masked.
func (c Config) logValue(e *zerolog.Event) *zerolog.Event {
	secret := "unset"
	if c.ClientSecret != "" {
		secret = "set"
	}
	return e.Str("base_url", c.BaseURL).Str("client_id", c.ClientID).Str("client_secret", secret).
		Bool("verify_ssl", c.VerifySSL).Int("timeout_s", c.TimeoutSec).
		Time("since", c.since).Time("until", c.until).Str("look_id", c.LookID).Bool("dry_run", c.DryRun).
		Int("concurrency", c.Concurrency).Float64("rate", c.Rate).Str("result_file", c.ResultFile).
		Dur("wait", c.Wait).Dur("confirm", c.Confirm).Str("looker_timezone", c.location.String()).
		Int("max_attempts", c.MaxAttempts).Bool("retry_permanent", c.RetryPermanent).
		Str("permanent_pattern", c.PermanentPattern).
		Str("log_level", c.LogLevel)
}
