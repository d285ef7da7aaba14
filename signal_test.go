package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
	"github.com/looker-rerun/looker-rerun/rerun"
)

// TestSIGTERM stops the real binary as Kubernetes does on a timeout: the call
// in flight finishes and is reported, nothing new starts, the summary is
// written, the token is revoked, and the exit code is 4 (safe to retry), even
// with RERUN_NEEDS_PERSON_EXIT_CODE=0.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "looker-rerun")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s := lookertest.NewServer(t)
	since, until := window()
	for _, id := range []string{"1", "2", "3"} {
		s.AddFailure(id, since.Add(time.Hour), "boom")
	}
	s.Inject(lookertest.Fault{Op: "run_once", PlanID: "1", AfterAction: true, Delay: 500 * time.Millisecond})

	resultFile := filepath.Join(t.TempDir(), "return.json")
	cmd := exec.Command(bin)
	cmd.Env = []string{"RERUN_CONCURRENCY=1", "RERUN_RESULT_FILE=" + resultFile, "RERUN_NEEDS_PERSON_EXIT_CODE=0"}
	for k, v := range lookerEnv(s, since, until) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for len(s.Copies("1")) == 0 { // plan 1's run_once is in flight
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitStopped {
		t.Fatalf("exit %d (%v), want 4\n%s", code, err, stderr.String())
	}
	if diff := cmp.Diff(map[string]int{"1": 1}, s.Reruns()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var sum rerun.Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("no summary on stdout: %v\n%s", err, stdout.String())
	}
	if len(sum.Rerun) != 1 || sum.Rerun[0].NewPlanID != s.Copies("1")[0] {
		t.Errorf("rerun = %+v, want plan 1 with its copy", sum.Rerun)
	}
	if diff := cmp.Diff([]string{"2", "3"}, sum.NotAttempted); diff != "" {
		t.Errorf("not_attempted (-want +got):\n%s", diff)
	}
	if sum.ExitCode != exitStopped || !strings.Contains(sum.Error, "stopped before the end") {
		t.Errorf("summary exit_code %d, error %q; want 4, saying the run was stopped", sum.ExitCode, sum.Error)
	}
	if file, _ := os.ReadFile(resultFile); string(file) != lines[len(lines)-1]+"\n" {
		t.Errorf("result file %q, want the summary", file)
	}
	if s.LiveTokens() != 0 {
		t.Error("token not revoked after SIGTERM")
	}
}
