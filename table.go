package main

// This file is the one table of settings: the variables looker-rerun reads,
// each with its default, its meaning and what a valid value looks like. -h,
// the loading, the validation and the misspelling check all read it.

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// vars is the environment as envconfig loads it, one field per variable.
// The tags are the table: the variable (envconfig), its default (default,
// applied by envconfig), whether it must be set (must; not envconfig's
// required, whose Process stops at the first missing variable and hides the
// others), its meaning for -h (desc), and what a valid value looks like for
// errors (hint; durations and bools have one by type). The LOOKERSDK_ names
// are the ones Looker's own SDKs read, so existing secrets and env files
// work unchanged.
type vars struct {
	BaseURL      value[string] `envconfig:"LOOKERSDK_BASE_URL" must:"set" hint:"a URL such as https://example.looker.com" desc:"Looker URL: https://example.looker.com, with or without :19999 and /api/4.0"`
	ClientID     value[string] `envconfig:"LOOKERSDK_CLIENT_ID" must:"set" hint:"the client id of a Looker API key" desc:"API client id of the Looker user that re-runs the plans"`
	ClientSecret value[string] `envconfig:"LOOKERSDK_CLIENT_SECRET" must:"set" hint:"the client secret of that API key" desc:"API client secret (never logged)"`
	APIVersion   value[string] `envconfig:"LOOKERSDK_API_VERSION" default:"4.0" hint:"4.0" desc:"Looker API version; only 4.0 exists since Looker 23.18"`
	VerifySSL    value[bool]   `envconfig:"LOOKERSDK_VERIFY_SSL" default:"true" desc:"verify Looker's TLS certificate"`
	TimeoutSec   value[int]    `envconfig:"LOOKERSDK_TIMEOUT" default:"120" hint:"a whole number of seconds from 1 to 3600, such as 120" desc:"seconds each HTTP request to Looker may take (1 to 3600)"`
	AllowHTTP    value[bool]   `envconfig:"RERUN_ALLOW_HTTP" default:"false" desc:"accept a plain http:// LOOKERSDK_BASE_URL to a host that is not loopback, which sends the client secret in clear"`

	Since     value[string]        `envconfig:"RERUN_SINCE" hint:"an RFC 3339 time such as 2026-11-27T16:00:00Z" desc:"start of the window of failed deliveries, RFC 3339 (default: RERUN_UNTIL minus RERUN_LOOKBACK)"`
	Until     value[string]        `envconfig:"RERUN_UNTIL" hint:"an RFC 3339 time such as 2026-11-28T01:00:00Z" desc:"end of the window, RFC 3339, excluded (default: now minus RERUN_CONFIRM, which System Activity may take to show a failure)"`
	Lookback  value[time.Duration] `envconfig:"RERUN_LOOKBACK" default:"10h" desc:"window length when RERUN_SINCE is not set"`
	MaxWindow value[time.Duration] `envconfig:"RERUN_MAX_WINDOW" default:"168h" desc:"longest window accepted (RERUN_UNTIL minus RERUN_SINCE); a longer one is refused as a likely mistake"`
	LookID    value[string]        `envconfig:"RERUN_LOOK_ID" hint:"a Look id (digits) such as 42" desc:"take the failed plans from this saved Look (rows with scheduled_plan.id) instead of querying System Activity"`
	DryRun    value[bool]          `envconfig:"RERUN_DRY_RUN" default:"false" desc:"decide and report everything, re-run nothing"`

	Confirm          value[time.Duration] `envconfig:"RERUN_CONFIRM" default:"2m" desc:"after a lost run_once answer, look this long (at least 10s) for its copy in System Activity before sending again; every copy made must show there within it"`
	LookerTimezone   value[string]        `envconfig:"RERUN_LOOKER_TIMEZONE" hint:"an IANA time zone such as Asia/Tokyo or America/New_York" desc:"IANA time zone Looker's queries answer in, when not UTC (its Query Time Zone, with user-specific time zones off), e.g. Asia/Tokyo"`
	Wait             value[time.Duration] `envconfig:"RERUN_WAIT" default:"0" desc:"wait this long for the re-runs to be delivered and report each outcome; 0 = do not wait"`
	Deadline         value[time.Duration] `envconfig:"RERUN_DEADLINE" default:"0" desc:"stop this long after the start, as on SIGTERM (exit 4), starting no re-run later than RERUN_CONFIRM + RERUN_WAIT + 30s before it; 0 = no deadline"`
	PermanentPattern value[string]        `envconfig:"RERUN_PERMANENT_PATTERN" hint:"a regular expression (Go syntax) such as (?i)mailbox full" desc:"regular expression of more failure details (status_detail) that a re-run cannot fix"`
	RetryPermanent   value[bool]          `envconfig:"RERUN_RETRY_PERMANENT" default:"false" desc:"re-run permanent failures anyway"`
	MaxAttempts      value[int]           `envconfig:"RERUN_MAX_ATTEMPTS" default:"2" hint:"a whole number, 0 (no cap) or more, such as 2" desc:"failed re-runs of one failure before it is left to a person; 0 = no cap"`

	Concurrency value[int]     `envconfig:"RERUN_CONCURRENCY" default:"4" hint:"a whole number from 1 to 64" desc:"plans re-run at once"`
	Rate        value[float64] `envconfig:"RERUN_RATE" default:"5" hint:"a number of calls per second, 0 (no cap) or more, such as 5 or 0.5" desc:"most run_once calls per second; 0 = no cap"`
	ResultFile  value[string]  `envconfig:"RERUN_RESULT_FILE" default:"/airflow/xcom/return.json" hint:"a file path such as /airflow/xcom/return.json" desc:"where the summary is written too: when its folder exists, or always when set"`

	NeedsPersonExitCode value[int] `envconfig:"RERUN_NEEDS_PERSON_EXIT_CODE" default:"1" hint:"a whole number from 0 to 255 except 2, 3 and 4, such as 0 or 1" desc:"exit code when a person is needed (not 2, 3 or 4); 0 lets Airflow keep the summary, whose exit_code still says 1"`

	LogLevel  value[string] `envconfig:"LOG_LEVEL" default:"info" hint:"trace, debug, info, warn or error" desc:"trace, debug, info, warn or error"`
	LogFormat value[string] `envconfig:"LOG_FORMAT" default:"json" hint:"json or console" desc:"json, or console for people"`
}

// value is one variable as decoded from its text: set by envconfig, which
// calls Decode with the variable's value or, when it is unset, its default.
// Decode never fails: it keeps the problem for vars.problems to report with
// every other one, where envconfig.Process would stop at the first.
type value[T string | bool | int | float64 | time.Duration] struct {
	v   T
	set bool // Decode was called: the variable is set, or has a default
	raw string
	err error
}

// errEmpty is the problem of a variable set to nothing but spaces: a
// template that rendered empty must not quietly become "use the default".
var errEmpty = errors.New("set but empty")

// Decode implements envconfig.Decoder. Whole numbers are read in Go's
// syntax (0x10 is 16), as envconfig reads them.
func (x *value[T]) Decode(raw string) error {
	x.set, x.raw, x.err = true, raw, nil
	if strings.TrimSpace(raw) == "" {
		x.err = errEmpty
		return nil
	}
	var err error
	switch p := any(&x.v).(type) {
	case *string:
		*p = raw
	case *bool:
		*p, err = strconv.ParseBool(raw)
	case *int:
		var n int64
		n, err = strconv.ParseInt(raw, 0, strconv.IntSize)
		*p = int(n)
	case *float64:
		*p, err = strconv.ParseFloat(raw, 64)
	case *time.Duration:
		*p, err = time.ParseDuration(raw)
	}
	x.err = err
	return nil
}

// typeHint says what a valid value is for the types that need no more words.
func (x *value[T]) typeHint() string {
	switch any(x.v).(type) {
	case time.Duration:
		return durationHint
	case bool:
		return boolHint
	}
	return ""
}

func (x *value[T]) state() (set bool, raw string, err error) { return x.set, x.raw, x.err }

// Hints for the types whose valid values need no more words.
const (
	durationHint = "a Go duration such as 15m or 1h30m (units s, m, h)"
	boolHint     = "true or false"
)

// field is what the table needs of a value, whatever its type.
type field interface {
	Decode(string) error
	typeHint() string
	state() (set bool, raw string, err error)
}

// setting is one row of the table.
type setting struct {
	key, def, desc, hint string
	required             bool
	index                int // of the field in vars
}

// settings lists the rows of the table, in the order of vars' fields.
func settings() []setting {
	var out []setting
	t := reflect.TypeFor[vars]()
	var zero vars
	v := reflect.ValueOf(&zero).Elem()
	for i := range t.NumField() {
		tag := t.Field(i).Tag
		s := setting{key: tag.Get("envconfig"), def: tag.Get("default"), desc: tag.Get("desc"),
			hint: tag.Get("hint"), required: tag.Get("must") == "set", index: i}
		if s.hint == "" {
			s.hint = v.Field(i).Addr().Interface().(field).typeHint()
		}
		out = append(out, s)
	}
	return out
}

// field returns the value of s in v.
func (v *vars) field(s setting) field {
	return reflect.ValueOf(v).Elem().Field(s.index).Addr().Interface().(field)
}

// hint says what a valid value of the variable key looks like.
func hint(key string) string {
	for _, s := range settings() {
		if s.key == key {
			return s.hint
		}
	}
	return ""
}

// defaults returns vars as envconfig loads them from an environment that
// sets none of the variables: each with its default.
func defaults() vars {
	var v vars
	for _, s := range settings() {
		if s.def != "" {
			_ = v.field(s).Decode(s.def)
		}
	}
	return v
}

// problems reports every variable that is required but unset, set but
// empty, or does not decode, naming each with what a valid value looks
// like, and the keys of those it rejected: their fields hold no value to
// judge further.
func (v *vars) problems() (map[string]bool, error) {
	var errs []error
	rejected := map[string]bool{}
	for _, s := range settings() {
		set, raw, err := v.field(s).state()
		switch {
		case !set && s.required:
			errs = append(errs, fmt.Errorf("%s is required: %s", s.key, s.hint))
		case errors.Is(err, errEmpty):
			msg := fmt.Sprintf("%s is set but empty: must be %s", s.key, s.hint)
			if !s.required {
				msg += ", or unset to use the default"
			}
			if s.def != "" {
				msg += " (" + s.def + ")"
			}
			errs = append(errs, errors.New(msg))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s=%q: must be %s", s.key, raw, s.hint))
		default:
			continue
		}
		rejected[s.key] = true
	}
	return rejected, errors.Join(errs...)
}

// misspelt reports the variables in environ (KEY=value) that look like
// settings of looker-rerun and are not: every unknown RERUN_ variable, and an
// unknown LOOKERSDK_ variable close to a known one. Looker's SDKs read other
// LOOKERSDK_ variables (LOOKERSDK_REDIRECT_URI, ...), which a shared env
// file may hold: those far from every setting here are left alone.
func misspelt(environ []string) error {
	var known []string
	for _, s := range settings() {
		known = append(known, s.key)
	}
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(known, name) {
			continue
		}
		near := nearest(name, known)
		switch {
		case strings.HasPrefix(name, "RERUN_") && near != "":
			errs = append(errs, fmt.Errorf("%s is not a setting of looker-rerun; did you mean %s?", name, near))
		case strings.HasPrefix(name, "RERUN_"):
			errs = append(errs, fmt.Errorf("%s is not a setting of looker-rerun", name))
		case strings.HasPrefix(name, "LOOKERSDK_") && near != "":
			errs = append(errs, fmt.Errorf("%s is not a setting of looker-rerun; did you mean %s?", name, near))
		}
	}
	return errors.Join(errs...)
}

// nearest returns the known name closest to name, if it is close.
func nearest(name string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		if d := distance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
