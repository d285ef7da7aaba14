// Command contractshim stands in, for the DAG tests only, for the part of the
// looker-rerun binary that the DAGs rely on and that the binary does not have
// yet: the setting RERUN_NEEDS_PERSON_EXIT_CODE (the exit code of a run that
// needs a person, default 1) and the summary field "exit_code" (the outcome's
// own code: 0, 1 or 3).
//
// tests/dags builds it into an image on top of the real one, as its
// entrypoint, only when the real image's -h does not list the setting. It runs
// the real /looker-rerun with the setting removed from its environment (the
// binary refuses unknown RERUN_ variables), passes stderr through, adds
// "exit_code" to the summary (the last stdout line) and to the result file,
// and exits with the setting's code where the binary exited 1. Delete it once
// the binary does this itself.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

const (
	setting    = "RERUN_NEEDS_PERSON_EXIT_CODE"
	binary     = "/looker-rerun"
	resultFile = "/airflow/xcom/return.json" // the binary's default RERUN_RESULT_FILE
)

func main() {
	needsPerson := 1
	if v, ok := os.LookupEnv(setting); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 255 {
			fmt.Fprintf(os.Stderr, "contractshim: %s=%q: not an exit code 0-255\n", setting, v)
			os.Exit(2)
		}
		needsPerson = n
		os.Unsetenv(setting)
	}

	var stdout bytes.Buffer
	cmd := exec.Command(binary, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, &stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "contractshim: %v\n", err)
		os.Exit(1)
	}
	// As PID 1 the shim gets Kubernetes' and Docker's SIGTERM: pass it on.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintf(os.Stderr, "contractshim: %v\n", err)
		os.Exit(1)
	}
	code := cmd.ProcessState.ExitCode()

	out := stdout.Bytes()
	body := bytes.TrimRight(out, "\n")
	start := bytes.LastIndexByte(body, '\n') + 1
	if line, ok := withExitCode(body[start:], code); ok {
		out = append(append(append([]byte{}, body[:start]...), line...), '\n')
		path := resultFile
		if v, ok := os.LookupEnv("RERUN_RESULT_FILE"); ok {
			path = v
		}
		if old, err := os.ReadFile(path); err == nil {
			if fixed, ok := withExitCode(bytes.TrimRight(old, "\n"), code); ok {
				if err := writeAtomic(path, append(fixed, '\n')); err != nil {
					fmt.Fprintf(os.Stderr, "contractshim: %v\n", err)
				}
			}
		}
	}
	os.Stdout.Write(out)
	if code == 1 {
		code = needsPerson
	}
	os.Exit(code)
}

// withExitCode appends "exit_code" to a one-line JSON object, keeping the
// binary's field order.
func withExitCode(line []byte, code int) ([]byte, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) != nil || obj == nil {
		return nil, false
	}
	if _, ok := obj["exit_code"]; ok {
		return line, true
	}
	if len(obj) == 0 {
		return fmt.Appendf(nil, `{"exit_code":%d}`, code), true
	}
	return fmt.Appendf(bytes.TrimSuffix(line, []byte("}")), `,"exit_code":%d}`, code), true
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".contractshim-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
