package main

// This file checks a Config: every value in its range, and the settings
// derived from them (the window, the log level, the time zone, the
// deadline), reporting every problem at once.

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/rerun"
)

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

// endMargin is the time RERUN_DEADLINE keeps, beyond RERUN_CONFIRM and
// RERUN_WAIT, for the logout and the report after the last re-run.
const endMargin = 30 * time.Second

// check validates every value and resolves the settings parsed from them,
// joining every problem.
func (c *Config) check(now time.Time) error { return errors.Join(c.validate(), c.resolve(now)) }

// validate checks the values that need nothing beyond their decoding, and
// joins every problem, each saying what a valid value looks like.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// mustBe reports a value outside the range its hint gives.
	mustBe := func(key string, value any) { bad("%s=%v: must be %s", key, value, hint(key)) }
	// A field that did not decode holds zero, not the user's value, and its
	// problem is reported already: the string checks skip "", the number
	// checks ask loaded.
	loaded := func(key string) bool { return !c.rejected[key] }

	if c.BaseURL != "" {
		u, err := looker.NormalizeBaseURL(c.BaseURL)
		switch {
		case errors.Is(err, looker.ErrURLCredentials):
			bad("LOOKERSDK_BASE_URL: %v: the API key goes in LOOKERSDK_CLIENT_ID and LOOKERSDK_CLIENT_SECRET", err)
		case err != nil:
			bad("LOOKERSDK_BASE_URL: %v", err)
		case u.Scheme == "http" && !loopback(u.Hostname()) && loaded("RERUN_ALLOW_HTTP") && !c.AllowHTTP:
			bad("LOOKERSDK_BASE_URL=%q: plain http would send the client secret across the network in clear: use https://, or set RERUN_ALLOW_HTTP=true to accept it (a loopback host such as localhost or 127.0.0.1 needs neither)",
				looker.RedactURL(c.BaseURL))
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
	if loaded("RERUN_MAX_WINDOW") && c.MaxWindow <= 0 {
		bad("RERUN_MAX_WINDOW=%s: must be positive, %s", c.MaxWindow, durationHint)
	}
	if loaded("RERUN_DEADLINE") && c.Deadline < 0 {
		bad("RERUN_DEADLINE=%s: must be 0 (no deadline) or more, %s", c.Deadline, durationHint)
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
	// without RERUN_SINCE it is RERUN_LOOKBACK long: unknown when those did
	// not decode.
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
	switch long := c.until.Sub(c.since); {
	case !untilOK || !sinceOK:
	case long <= 0:
		bad("RERUN_SINCE=%s is not before RERUN_UNTIL=%s: the window is empty", c.since.Format(time.RFC3339), c.until.Format(time.RFC3339))
	case long > c.MaxWindow && c.MaxWindow > 0:
		// A window of months is a typo more often than a plan: it would
		// re-run every failure since, however stale.
		bad("the window %s to %s is %s long, more than RERUN_MAX_WINDOW=%s: shorten it (RERUN_SINCE, RERUN_UNTIL, RERUN_LOOKBACK) or raise RERUN_MAX_WINDOW",
			c.since.Format(time.RFC3339), c.until.Format(time.RFC3339), long, c.MaxWindow)
	}
	c.start = now
	if need := c.Confirm + c.Wait + endMargin; c.Deadline > 0 && c.Deadline <= need && !c.rejected["RERUN_CONFIRM"] && !c.rejected["RERUN_WAIT"] {
		bad("RERUN_DEADLINE=%s: must be more than RERUN_CONFIRM + RERUN_WAIT + %s = %s, the time the last re-runs take to be confirmed and waited for, then the logout and the report; or 0 for no deadline",
			c.Deadline, endMargin, need)
	}
	c.since, c.until = c.since.UTC(), c.until.UTC()
	return errors.Join(errs...)
}

// untilUnsettled reports an explicit RERUN_UNTIL later than settled: System
// Activity may not show the window's last failures yet, and a next window
// that starts at RERUN_UNTIL will not look for them again.
func (c Config) untilUnsettled() bool { return c.Until != "" && c.until.After(c.settled) }

// startBy is when the last re-run may start: RERUN_DEADLINE after the
// start, less the time it takes to confirm and wait for it, log out and
// report. Zero without a deadline.
func (c Config) startBy() time.Time {
	if c.Deadline <= 0 {
		return time.Time{}
	}
	return c.start.Add(c.Deadline - c.Confirm - c.Wait - endMargin)
}

// loopback reports a host name or address that never leaves the machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
