package main

// This file ends a run: it judges how the run went (outcome, the one place a
// result becomes an exit code) and writes what it leaves behind for
// Airflow: the one-line summary in the result file and on stdout, and the
// last log line.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/rerun"
)

// runError is a run that did not fully succeed, with its exit code.
type runError struct {
	code int
	err  error
}

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// exitCode is the code of a run's outcome: 0 for nil, the runError's code,
// 1 (a person is needed) for any other error.
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

// outcome judges how the run went, from ctx, the summary and the error of
// the login or the listing; it is the one place the exit code of a run is
// decided (RERUN_NEEDS_PERSON_EXIT_CODE aside). It completes the summary's
// error for a stopped run.
func outcome(ctx context.Context, cfg Config, sum *rerun.Summary, err error) *runError {
	switch {
	case ctx.Err() != nil:
		// Cut short, whatever else went wrong: not a Looker that cannot be
		// reached. Airflow's retry finishes the job, and System Activity
		// keeps it from sending anything twice.
		why := "stopped before the end: " + context.Cause(ctx).Error()
		switch {
		case err != nil:
			sum.Error = why + ": " + err.Error()
		case sum.Error == "":
			// The stop came after rerun.Run's last look at ctx.
			sum.Error = why
		}
		return &runError{exitStopped, fmt.Errorf("%s; %d plans not attempted", sum.Error, len(sum.NotAttempted))}
	case errors.Is(err, rerun.ErrOutOfTime):
		sum.Error = fmt.Sprintf("stopped before the end: %v: no re-run starts later than RERUN_CONFIRM + RERUN_WAIT + %s before RERUN_DEADLINE=%s; the plans not attempted are left to a retry",
			err, endMargin, cfg.Deadline)
		return &runError{exitStopped, fmt.Errorf("%s; %d plans not attempted", sum.Error, len(sum.NotAttempted))}
	case err != nil:
		return &runError{exitCannotStart, err}
	case !sum.OK():
		return &runError{exitPersonNeeded, fmt.Errorf("%d re-runs failed, %d not attempted, %d plans need a person, %d re-runs not delivered",
			len(sum.Failed), len(sum.NotAttempted), len(sum.NeedsPerson), len(sum.Undelivered()))}
	}
	return nil
}

// report leaves the run's outcome end behind, in this order: the result
// file, then the last log line, then the summary on stdout. The summary is
// the last line of stdout and stderr together, which is the line
// DockerOperator keeps as the task's XCom. It returns end, or a person
// needed when the report itself failed on a run that had succeeded.
func report(cfg Config, sum *rerun.Summary, end *runError, stdout io.Writer, log zerolog.Logger, rd *redactor) error {
	var err error
	if end != nil {
		err = end
	}
	sum.ExitCode = exitCode(err)
	sum.LookerURL = cfg.lookerURL()
	line, ferr := summaryLine(sum)
	if ferr == nil {
		ferr = writeResult(cfg, rd.redact(line))
	}
	if ferr != nil {
		log.Error().Err(ferr).Msg("could not write the summary")
		if err == nil {
			err = ferr
			// The summary on stdout tells it too.
			sum.ExitCode = exitCode(err)
			line, _ = summaryLine(sum)
		}
	}
	logDone(log, sum, err, cfg.processExit(exitCode(err)))
	if _, werr := stdout.Write(line); werr != nil && err == nil {
		// Nothing may follow the summary, not even this complaint: the
		// exit code tells it.
		err = werr
	}
	return err
}

// logDone writes the last log line: the counts of the summary, the peak
// memory, and the code the process exits with, the one Airflow shows beside
// it (the summary's exit_code is the outcome).
func logDone(log zerolog.Logger, sum *rerun.Summary, err error, code int) {
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
	}
	if kib, ok := peakRSS(); ok {
		ev = ev.Float64("peak_rss_mib", math.Round(float64(kib)/1024*100)/100)
	}
	ev.Int("rerun", len(sum.Rerun)).Int("skipped", len(sum.Skipped)).Int("failed", len(sum.Failed)).
		Int("not_attempted", len(sum.NotAttempted)).Int("needs_person", len(sum.NeedsPerson)).
		// What RERUN_CONFIRM must cover, measured on this Looker.
		Float64("max_activity_lag_seconds", sum.MaxActivityLag).
		Int("exit_code", code).Msg("looker-rerun done")
}

// summaryLine is the summary as one line of JSON.
func summaryLine(sum *rerun.Summary) ([]byte, error) {
	line, err := json.Marshal(sum)
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// writeResult writes the summary line to the result file when its folder
// exists or RERUN_RESULT_FILE was set.
func writeResult(cfg Config, line []byte) error {
	if _, err := os.Stat(filepath.Dir(cfg.ResultFile)); err != nil && !cfg.resultFileForced {
		return nil
	}
	return writeFileAtomic(cfg.ResultFile, line)
}

// writeFileAtomic writes through a temporary file in the same folder, so a
// reader (Airflow's XCom sidecar) never sees half a summary.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".looker-rerun-*")
	if err != nil {
		return fmt.Errorf("result file: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("result file: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("result file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("result file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("result file: %w", err)
	}
	return nil
}

// peakRSS reads the process's peak resident memory (VmHWM, KiB) on Linux,
// for sizing the pod's memory request from the real footprint.
func peakRSS() (int, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kib, err == nil
		}
	}
	return 0, false
}
