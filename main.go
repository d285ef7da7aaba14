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

// realMain parses flags and settings, runs, and returns the exit code.
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
	cfg, err := loadConfig(time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "looker-rerun: bad settings (see -h):\n%v\n", err)
		return exitConfig
	}
	return cfg.processExit(exitCode(run(ctx, cfg, stdout, stderr)))
}

// run does the job with a checked config: log in, list, re-run, report. Its
// error says why the run did not fully succeed; exitCode reads its code.
// Everything it writes, to stdout, stderr and the result file, is redacted
// of the client secret.
func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	rd := newRedactor(cfg.ClientSecret)
	stdout, stderr = rd.writer(stdout), rd.writer(stderr)
	log := newLogger(cfg, stderr)
	logStart(cfg, log)

	ctx, cancel := cfg.withDeadline(ctx)
	defer cancel()
	lk, err := newLookerClient(cfg, log)
	if err != nil {
		return &runError{exitConfig, err}
	}
	opts := cfg.options(log)
	sum, err := rerunWindow(ctx, lk, opts, cfg)
	// Judged before the logout, which outlives a stop: a stop while
	// logging in, listing or re-running cut the run short.
	end := outcome(ctx, cfg, sum, err)
	logout(ctx, lk, log)
	return report(cfg, sum, end, stdout, log, rd)
}

// logStart logs the effective config, and what in it may go wrong unseen.
func logStart(cfg Config, log zerolog.Logger) {
	cfg.logValue(log.Info().Str("version", version).Str("revision", revision)).Msg("looker-rerun starting")
	if len(strings.TrimSpace(cfg.ClientSecret)) < minSecretLen {
		log.Warn().Int("min_length", minSecretLen).
			Msg("LOOKERSDK_CLIENT_SECRET is too short to be filtered out of the output (it would garble it); Looker's client secrets are longer")
	}
	if cfg.untilUnsettled() {
		log.Warn().Time("until", cfg.until).Time("settled", cfg.settled).Stringer("confirm", cfg.Confirm).
			Msg("RERUN_UNTIL is less than RERUN_CONFIRM before the run started: System Activity may not show the window's last failures yet, and a next window that starts at RERUN_UNTIL will not look for them again; end windows at least RERUN_CONFIRM before the run starts")
	}
}

// options are the run's settings, as package rerun takes them.
func (c Config) options(log zerolog.Logger) rerun.Options {
	opts := rerun.Options{
		Since: c.since, Until: c.until, LookID: c.LookID, DryRun: c.DryRun,
		Concurrency: c.Concurrency, Grace: c.retry.grace, Log: log,
		MaxFailedReruns: c.MaxAttempts, Permanent: c.permanent, RetryPermanent: c.RetryPermanent,
		Wait: c.Wait, PollMin: c.retry.pollMin, PollMax: c.retry.pollMax,
		Confirm: c.Confirm, Location: c.location,
	}
	opts.StartBy = c.startBy()
	opts.Clock = c.clock
	return opts
}

// withDeadline ends ctx RERUN_DEADLINE after the start, as a SIGTERM would,
// with a cause that names it.
func (c Config) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.Deadline <= 0 {
		return ctx, func() {}
	}
	at := c.start.Add(c.Deadline)
	return context.WithDeadlineCause(ctx, at,
		fmt.Errorf("RERUN_DEADLINE=%s passed at %s", c.Deadline, at.UTC().Format(time.RFC3339)))
}

// rerunWindow logs in and runs. When the login fails, the summary says so
// and nothing is run.
func rerunWindow(ctx context.Context, lk *looker.Client, opts rerun.Options, cfg Config) (*rerun.Summary, error) {
	start := time.Now()
	if err := lk.Login(ctx); err != nil {
		err = loginError(lk.BaseURL(), err, cfg.retry.max+1, time.Since(start))
		return rerun.NotRun(opts, err), err
	}
	sum, err := rerun.Run(ctx, lk, opts)
	if err != nil {
		err = withHint(err)
		sum.Error = err.Error()
	}
	return sum, err
}

// hints name the settings to check for the run errors whose cause main
// recognises: package rerun does not know the variables.
var hints = []struct {
	cause error
	hint  string
}{
	{rerun.ErrZone, "check RERUN_LOOKER_TIMEZONE: the IANA zone Looker's queries answer in (or turn on user-specific time zones, or set Looker's Query Time Zone to UTC)"},
	{rerun.ErrRepeatedHour, "check RERUN_SINCE and RERUN_UNTIL (or RERUN_LOOKBACK): move the window's bounds out of that hour"},
	{rerun.ErrLookCut, "narrow the Look, or leave RERUN_LOOK_ID unset to query System Activity"},
}

// withHint is err with the settings to check, when main knows them.
func withHint(err error) error {
	for _, h := range hints {
		if errors.Is(err, h.cause) {
			return fmt.Errorf("%w: %s", err, h.hint)
		}
	}
	return err
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
