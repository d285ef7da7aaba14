// Command looker-rerun re-runs, exactly once each, the Looker scheduled
// deliveries that failed in a time window, and reports what it did so that
// Airflow can alert. Settings come from the environment; run it with -h.
//
// The main package only wires: settings (config.go), HTTP clients
// (transport.go), the run (package rerun) and its report (report.go). It
// alone reads the environment, writes stdout and exits; the rules live in
// rerun and the HTTP knowledge in looker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // RERUN_LOOKER_TIMEZONE: the image has no zoneinfo

	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/looker"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// Set at build time with -ldflags "-X main.version=... -X main.revision=...",
// as the image build does; main falls back to what Go recorded in the binary.
var (
	version  = "dev"
	revision = "unknown"
)

// Exit codes: a public interface, documented in the README.
const (
	exitOK           = 0
	exitPersonNeeded = 1
	exitConfig       = 2
	exitCannotStart  = 3
	// exitStopped: SIGTERM or SIGINT ended the run before it finished. It is
	// neither a Looker that cannot be reached nor a person needed: a retry
	// finishes the job, and System Activity keeps it from sending anything
	// twice. RERUN_NEEDS_PERSON_EXIT_CODE never replaces it, so that
	// Airflow's task retry runs.
	exitStopped = 4
)

// memoryLimit is the soft limit the Go runtime keeps its memory under unless
// GOMEMLIMIT says otherwise: near it the GC works harder instead of growing
// the heap, which keeps 5,000 re-runs under 20 MiB of RSS. It is soft: a
// bigger live heap still gets the memory it needs.
const memoryLimit = 12 << 20

func main() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(memoryLimit)
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		version, revision = fromBuildInfo(version, revision, info)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// fromBuildInfo returns the version and revision to report: the ones set
// with -ldflags when they were, else what Go records in every binary: the
// module version (go install ...@v1.2.3, or a pseudo-version of the commit),
// and for a build in a git checkout the commit, "-dirty" when the tree had
// changes.
func fromBuildInfo(version, revision string, info *debug.BuildInfo) (string, string) {
	if version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
	if revision != "unknown" {
		return version, revision
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	switch {
	case rev == "":
		return version, revision
	case modified == "true":
		return version, rev + "-dirty"
	}
	return version, rev
}

// realMain parses flags and settings, runs, and maps the outcome to an exit
// code.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// Before anything is written: even a stray argument or a bad setting
	// may quote the secret. run redacts with the same secret, from cfg.
	rd := newRedactor(os.Getenv("LOOKERSDK_CLIENT_SECRET"))
	stdout, stderr = rd.writer(stdout), rd.writer(stderr)
	fs := flag.NewFlagSet("looker-rerun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stdout) }
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "looker-rerun: unexpected arguments %q: settings come from the environment (see -h)\n", fs.Args())
		return exitConfig
	}
	if *showVersion {
		fmt.Fprintf(stdout, "looker-rerun %s (revision %s)\n", version, revision)
		return exitOK
	}
	cfg, err := loadConfig(time.Now().Truncate(time.Second))
	if err != nil {
		fmt.Fprintf(stderr, "looker-rerun: bad settings (see -h):\n%v\n", err)
		return exitConfig
	}
	return cfg.processExit(exitCode(run(ctx, cfg, stdout, stderr)))
}

// runError carries the exit code of a run that did not fully succeed.
type runError struct {
	code int
	err  error
}

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var re *runError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &re):
		return re.code
	}
	return exitPersonNeeded
}

// run does the job with a checked config: log in, list, re-run, report.
// Everything it writes, to stdout, stderr and the result file, is redacted
// of the client secret.
func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	rd := newRedactor(cfg.ClientSecret)
	stdout, stderr = rd.writer(stdout), rd.writer(stderr)
	log := newLogger(cfg, stderr)
	cfg.logValue(log.Info().Str("version", version).Str("revision", revision)).Msg("looker-rerun starting")
	if len(strings.TrimSpace(cfg.ClientSecret)) < minSecretLen {
		log.Warn().Int("min_length", minSecretLen).
			Msg("LOOKERSDK_CLIENT_SECRET is too short to be filtered out of the output (it would garble it); Looker's client secrets are longer")
	}
	if cfg.untilUnsettled() {
		log.Warn().Time("until", cfg.until).Time("settled", cfg.settled).Stringer("confirm", cfg.Confirm).
			Msg("RERUN_UNTIL is less than RERUN_CONFIRM before the run started: System Activity may not show the window's last failures yet, and a next window that starts at RERUN_UNTIL will not look for them again; end windows at least RERUN_CONFIRM before the run starts")
	}

	lk, err := newLookerClient(cfg, log)
	if err != nil {
		return &runError{exitConfig, err}
	}
	opts := rerun.Options{
		Since: cfg.since, Until: cfg.until, LookID: cfg.LookID, DryRun: cfg.DryRun,
		Concurrency: cfg.Concurrency, Grace: cfg.retry.grace, Log: log,
		MaxFailedReruns: cfg.MaxAttempts, Permanent: cfg.permanent, RetryPermanent: cfg.RetryPermanent,
		Wait: cfg.Wait, PollMin: cfg.retry.pollMin, PollMax: cfg.retry.pollMax,
		Confirm: cfg.Confirm, Location: cfg.location,
	}

	var sum *rerun.Summary
	var runErr error
	start := time.Now()
	loggedIn := false
	if err := lk.Login(ctx); err != nil {
		err = loginError(lk.BaseURL(), err, cfg.retry.max+1, time.Since(start))
		sum, runErr = rerun.NotRun(opts, err), &runError{exitCannotStart, err}
	} else {
		loggedIn = true
		sum, err = rerun.Run(ctx, lk, opts)
		if err != nil {
			runErr = &runError{exitCannotStart, err}
		}
	}
	// Read before the logout, which outlives a stop: a stop while logging
	// in, listing or re-running cut the run short, whatever else went wrong.
	stopped := ctx.Err() != nil
	if loggedIn {
		logout(ctx, lk, log)
	}
	switch {
	case stopped:
		cause := "stopped before the end: " + context.Cause(ctx).Error()
		switch {
		case runErr != nil:
			// Not a Looker that cannot be reached: the login or listing
			// was cut short.
			sum.Error = cause + ": " + errors.Unwrap(runErr).Error()
		case sum.Error == "":
			// The stop came after rerun.Run's last look at ctx.
			sum.Error = cause
		}
		runErr = &runError{exitStopped, fmt.Errorf("%s; %d plans not attempted", sum.Error, len(sum.NotAttempted))}
	case runErr == nil && !sum.OK():
		runErr = &runError{exitPersonNeeded, fmt.Errorf("%d re-runs failed, %d not attempted, %d plans need a person, %d re-runs not delivered",
			len(sum.Failed), len(sum.NotAttempted), len(sum.NeedsPerson), undelivered(sum))}
	}
	// The result file first, then the last log line, then the summary: the
	// summary is the last line of stdout and stderr together, which is the
	// line DockerOperator keeps as the task's XCom.
	sum.ExitCode = exitCode(runErr)
	line, err := summaryLine(sum)
	if err == nil {
		err = writeResult(cfg, rd.redact(line))
	}
	if err != nil {
		log.Error().Err(err).Msg("could not write the summary")
		if runErr == nil {
			runErr = &runError{exitPersonNeeded, err}
			// The summary on stdout tells it too.
			sum.ExitCode = exitPersonNeeded
			line, _ = summaryLine(sum)
		}
	}
	ev := log.Info()
	if runErr != nil {
		ev = log.Error().Err(runErr)
	}
	if kib, ok := peakRSS(); ok {
		ev = ev.Float64("peak_rss_mib", math.Round(float64(kib)/1024*100)/100)
	}
	// The summary's exit_code is the outcome; the log's is the code the
	// process exits with, the one Airflow shows beside it.
	ev.Int("rerun", len(sum.Rerun)).Int("skipped", len(sum.Skipped)).Int("failed", len(sum.Failed)).
		Int("not_attempted", len(sum.NotAttempted)).Int("needs_person", len(sum.NeedsPerson)).
		// What RERUN_CONFIRM must cover, measured on this Looker.
		Float64("max_activity_lag_seconds", sum.MaxActivityLag).
		Int("exit_code", cfg.processExit(exitCode(runErr))).Msg("looker-rerun done")
	if _, err := stdout.Write(line); err != nil && runErr == nil {
		// Nothing may follow the summary, not even this complaint: the
		// exit code tells it.
		runErr = &runError{exitPersonNeeded, err}
	}
	return runErr
}

// loginError says what a failed login tried, and what to check. It shows
// base as looker.RedactURL does.
func loginError(base string, err error, attempts int, took time.Duration) error {
	base = looker.RedactURL(base)
	var lerr *looker.Error
	switch {
	case errors.As(err, &lerr) && lerr.StatusCode == http.StatusNotFound:
		return fmt.Errorf("could not log in to %s: Looker answers 404 to unknown credentials: check LOOKERSDK_CLIENT_ID, LOOKERSDK_CLIENT_SECRET and that the API key is enabled: %w", base, err)
	case errors.As(err, &lerr) && lerr.StatusCode < 500 && lerr.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("could not log in to %s: %w", base, err)
	}
	return fmt.Errorf("could not log in to %s (tried for %s, up to %d attempts): %w", base, took.Round(time.Millisecond), attempts, err)
}

// logout revokes the token even when the run was stopped, within a short
// deadline of its own.
func logout(ctx context.Context, lk *looker.Client, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := lk.Logout(ctx); err != nil {
		log.Warn().Err(err).Msg("logout failed; the token expires by itself")
	}
}

// newLogger logs to stderr; workers log at once, so writes are serialised.
func newLogger(cfg Config, stderr io.Writer) zerolog.Logger {
	w := zerolog.SyncWriter(stderr)
	if cfg.LogFormat == "console" {
		// Airflow's log view shows colour codes raw.
		w = zerolog.SyncWriter(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.RFC3339})
	}
	return zerolog.New(w).Level(cfg.level).With().Timestamp().Logger()
}
