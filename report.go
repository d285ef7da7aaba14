package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/looker-rerun/looker-rerun/rerun"
)

// This file writes what a run leaves behind for Airflow: the one-line summary
// on stdout and in the result file, and the figures of the last log line.

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

// undelivered counts the re-runs waited for that failed again or still run.
func undelivered(sum *rerun.Summary) int {
	n := 0
	for _, r := range sum.Rerun {
		if r.Outcome == rerun.OutcomeFailedAgain || r.Outcome == rerun.OutcomeRunning {
			n++
		}
	}
	return n
}
