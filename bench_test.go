package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const benchLatency = 20 * time.Millisecond

// BenchmarkRerun re-runs N failed plans against the stand-in Looker running
// as its own process with 20 ms of latency per request, RERUN_RATE=0 and the
// default concurrency of 4. It reports:
//
//   - x-floor: wall time over the latency floor, the requests a run must
//     make one after another (floorRounds) x latency;
//
//   - B/op and allocs/op of the run (in process);
//
//   - peak-RSS-MiB of the built binary doing the same run.
//
//     go test -run '^$' -bench Rerun -benchtime 1x .
func BenchmarkRerun(b *testing.B) {
	bin := b.TempDir()
	for name, pkg := range map[string]string{"looker-rerun": ".", "lookertest": "./cmd/lookertest"} {
		if msg, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	for _, n := range []int{200, 5000} {
		b.Run(fmt.Sprintf("plans=%d", n), func(b *testing.B) {
			const concurrency = 4
			floor := time.Duration(floorRounds(n, concurrency)) * benchLatency
			var elapsed time.Duration
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				url, stop := startStandIn(b, bin, n)
				setBenchEnv(b, url)
				var stdout, stderr bytes.Buffer
				b.StartTimer()
				start := time.Now()
				code := realMain(context.Background(), nil, &stdout, &stderr)
				elapsed += time.Since(start)
				b.StopTimer()
				stop()
				if code != exitOK || !strings.Contains(stdout.String(), fmt.Sprintf(`"failed_plans":%d`, n)) {
					b.Fatalf("exit %d\n%s", code, tail(stderr.String()))
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(elapsed)/float64(b.N)/float64(floor), "x-floor")

			b.StopTimer()
			url, stop := startStandIn(b, bin, n)
			defer stop()
			// The binary reports its own peak RSS (VmHWM) in its last log
			// line: a child's rusage would count the benchmark's own memory,
			// which the child shares until it execs.
			cmd := exec.Command(filepath.Join(bin, "looker-rerun"))
			cmd.Env = append(append(os.Environ(), benchEnv(url)...), "LOG_LEVEL=info")
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("looker-rerun: %v\n%s", err, tail(string(out)))
			}
			var done struct {
				PeakRSS float64 `json:"peak_rss_mib"`
			}
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, `"looker-rerun done"`) {
					_ = json.Unmarshal([]byte(line), &done)
				}
			}
			if done.PeakRSS == 0 {
				b.Fatalf("no peak_rss_mib in the last log line:\n%s", tail(string(out)))
			}
			b.ReportMetric(done.PeakRSS, "peak-RSS-MiB")
		})
	}
}

// floorRounds counts the requests a run over n failed plans (each failed
// once, as the stand-in's failures:N seed makes them) must make one after
// another at the given concurrency: login; the time zone's proof (a query,
// then one plan); the running jobs, then the failed ones (a page of 5,000 or
// more is asked again as two halves, at once); their history, 500 plans a
// query, at once with the run-once copies, concurrency queries at once; the
// run_once calls, concurrency at once; one look for the copies made, 500 a
// query; logout. With no copy alike to a failed plan, no definition is read.
func floorRounds(n, concurrency int) int {
	const pageSize, idsPerQuery = 5000, 500
	ceil := func(a, b int) int { return (a + b - 1) / b }
	failures := 1
	if n >= pageSize {
		failures = 2
	}
	batches := ceil(ceil(n, idsPerQuery), concurrency)
	listing := ceil(ceil(n, idsPerQuery)+1, concurrency) // history and copies
	return 1 + 2 + 1 + failures + listing + ceil(n, concurrency) + batches + 1
}

func benchEnv(url string) []string {
	return []string{
		"LOOKERSDK_BASE_URL=" + url, "LOOKERSDK_CLIENT_ID=demo-id", "LOOKERSDK_CLIENT_SECRET=demo-secret",
		"RERUN_RATE=0", "RERUN_CONCURRENCY=4", "LOG_LEVEL=warn", "RERUN_RESULT_FILE=" + os.DevNull,
	}
}

func setBenchEnv(b *testing.B, url string) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "RERUN_") || strings.HasPrefix(name, "LOOKERSDK_") || strings.HasPrefix(name, "LOG_") {
			b.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	for _, kv := range benchEnv(url) {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
}

// startStandIn runs cmd/lookertest with n failed plans and 20 ms latency.
func startStandIn(b *testing.B, bin string, n int) (url string, stop func()) {
	b.Helper()
	urlFile := filepath.Join(b.TempDir(), "url")
	cmd := exec.Command(filepath.Join(bin, "lookertest"), "-addr", "127.0.0.1:0", "-url-file", urlFile,
		"-seed", fmt.Sprintf("failures:%d", n), "-latency", benchLatency.String(),
		// No System Activity lag: the benchmark measures the tool, not a wait.
		"-activity-lag", "0s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	for range 200 {
		if raw, err := os.ReadFile(urlFile); err == nil && len(raw) > 0 {
			return strings.TrimSpace(string(raw)), stop
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	b.Fatalf("the stand-in did not start:\n%s", stderr.String())
	return "", nil
}

func tail(s string) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
