package main

import (
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

// TestMain runs the command itself when a test starts this binary with
// LOOKERTEST_MAIN=1, so the tests can watch it as a process.
func TestMain(m *testing.M) {
	if os.Getenv("LOOKERTEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestURLFileNamesAReachableAddress(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			if strings.HasPrefix(addr, "[::]") {
				if l, err := net.Listen("tcp", addr); err != nil {
					t.Skipf("no IPv6 here: %v", err)
				} else {
					l.Close()
				}
			}
			urlFile := filepath.Join(t.TempDir(), "url")
			cmd := exec.Command(os.Args[0], "-addr", addr, "-url-file", urlFile, "-seed", "empty", "-activity-lag", "0s")
			cmd.Env = append(os.Environ(), "LOOKERTEST_MAIN=1")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
			var u string
			for deadline := time.Now().Add(5 * time.Second); u == ""; time.Sleep(10 * time.Millisecond) {
				if raw, _ := os.ReadFile(urlFile); len(raw) > 0 {
					u = strings.TrimSpace(string(raw))
				} else if time.Now().After(deadline) {
					t.Fatalf("no URL file after 5s:\n%s", stderr.String())
				}
			}
			if !strings.HasPrefix(u, "http://127.0.0.1:") {
				t.Errorf("URL file says %q, want http://127.0.0.1:PORT", u)
			}
			resp, err := http.Get(u + "/lookertest/reruns")
			if err != nil {
				t.Fatalf("the URL file's %s is not reachable: %v", u, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s/lookertest/reruns: %d", u, resp.StatusCode)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ip   string
		want string
	}{
		{"0.0.0.0", "http://127.0.0.1:8080"},
		{"::", "http://127.0.0.1:8080"},
		{"127.0.0.1", "http://127.0.0.1:8080"},
		{"::1", "http://[::1]:8080"},
		{"192.0.2.7", "http://192.0.2.7:8080"},
	} {
		if got := baseURL(&net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 8080}); got != tc.want {
			t.Errorf("baseURL(%s:8080) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

func TestActivityLagFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		arg      string
		min, max time.Duration
		bad      bool
	}{
		{arg: "", min: time.Second, max: 3 * time.Second}, // the default
		{arg: "0s-3s", max: 3 * time.Second},
		{arg: "500ms-2s", min: 500 * time.Millisecond, max: 2 * time.Second},
		{arg: "3s", max: 3 * time.Second},
		{arg: "0s"},
		{arg: "2s-2s", min: 2 * time.Second, max: 2 * time.Second},
		{arg: "3s-1s", bad: true},
		{arg: "-1s", bad: true},
		{arg: "1s-", bad: true},
		{arg: "soon", bad: true},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("lookertest", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			lag := activityLag{min: time.Second, max: 3 * time.Second}
			fs.Var(&lag, "activity-lag", "")
			var args []string
			if tc.arg != "" {
				args = []string{"-activity-lag", tc.arg}
			}
			err := fs.Parse(args)
			if tc.bad {
				if err == nil {
					t.Errorf("-activity-lag %q accepted as %v", tc.arg, &lag)
				}
				return
			}
			if err != nil || lag.min != tc.min || lag.max != tc.max {
				t.Errorf("-activity-lag %q: %v-%v, %v; want %v-%v", tc.arg, lag.min, lag.max, err, tc.min, tc.max)
			}
		})
	}
}

func TestRerunsBesideTheFake(t *testing.T) {
	t.Parallel()
	s := lookertest.New()
	s.AddPlan(lookertest.Plan{ID: "42"})
	hts := httptest.NewServer(withReruns(s))
	t.Cleanup(hts.Close)

	do := func(method, u, token, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "token "+token)
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp, string(raw)
	}

	// Looker's API passes through to the fake.
	form := url.Values{"client_id": {lookertest.ClientID}, "client_secret": {lookertest.ClientSecret}}.Encode()
	resp, body := do(http.MethodPost, hts.URL+"/api/4.0/login", "", form)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &login); resp.StatusCode != 200 || err != nil {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(http.MethodPost, hts.URL+"/api/4.0/scheduled_plans/42/run_once", login.AccessToken, ""); resp.StatusCode != 200 {
		t.Fatalf("run_once: %d %s", resp.StatusCode, body)
	}

	// The side door answers what the fake counted.
	resp, body = do(http.MethodGet, hts.URL+"/lookertest/reruns", "", "")
	var reruns map[string]int
	if err := json.Unmarshal([]byte(body), &reruns); resp.StatusCode != 200 || err != nil {
		t.Fatalf("reruns: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("reruns Content-Type %q, want application/json", ct)
	}
	if diff := cmp.Diff(map[string]int{"42": 1}, reruns); diff != "" {
		t.Errorf("reruns (-want +got):\n%s", diff)
	}

	// Only GET: anything else on that path is the fake's to refuse, and the
	// fake alone has no side door.
	if resp, _ := do(http.MethodPost, hts.URL+"/lookertest/reruns", "", ""); resp.StatusCode != 404 {
		t.Errorf("POST /lookertest/reruns: %d, want 404", resp.StatusCode)
	}
	bare := httptest.NewServer(s)
	t.Cleanup(bare.Close)
	if resp, _ := do(http.MethodGet, bare.URL+"/lookertest/reruns", "", ""); resp.StatusCode != 404 {
		t.Errorf("the fake alone answered GET /lookertest/reruns: %d, want 404", resp.StatusCode)
	}
	if got := len(s.Unexpected()); got != 2 {
		t.Errorf("%d requests refused, want 2: %v", got, s.Unexpected())
	}
}
