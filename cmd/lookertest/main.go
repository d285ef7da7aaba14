// Command lookertest runs the stand-in Looker of package lookertest as a
// process, for the README's demo and the container tests. It is a fake: see
// the package doc for how it differs from Looker.
//
//	lookertest -addr 127.0.0.1:8080 -seed demo -activity-lag 1s-3s
//
// By default System Activity trails run_once by one to three seconds, as a
// production Looker's does; -activity-lag 0s turns that off.
//
// Besides Looker's API it answers GET /lookertest/reruns: how many times
// each plan was re-run, as JSON ({"101": 1}), for scripts that cannot ask
// the Server itself.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`host:port` to listen on (port 0 picks one); the URL of an unspecified host (0.0.0.0, [::]) names 127.0.0.1")
	urlFile := flag.String("url-file", "", "write the base URL to this file once listening")
	seed := flag.String("seed", "demo", "System Activity to start with: demo, empty, or failures:N (N plans that failed once in the last 10 hours)")
	clientID := flag.String("client-id", "demo-id", "API client id to accept")
	secret := flag.String("client-secret", "demo-secret", "API client secret to accept")
	latency := flag.Duration("latency", 0, "delay every answer by this much")
	lag := activityLag{min: time.Second, max: 3 * time.Second}
	flag.Var(&lag, "activity-lag", "how long System Activity takes to show a run-once copy, drawn at random in `MIN-MAX`; MAX alone means 0-MAX, 0s none")
	flag.Parse()

	s := lookertest.New()
	s.SetCredentials(*clientID, *secret)
	s.SetLatency(*latency)
	s.SetActivityLag(lag.min, lag.max)
	switch n, err := strconv.Atoi(strings.TrimPrefix(*seed, "failures:")); {
	case *seed == "demo":
		lookertest.SeedDemo(s, time.Now().UTC())
	case *seed == "empty":
	case strings.HasPrefix(*seed, "failures:") && err == nil && n >= 0:
		lookertest.SeedFailures(s, time.Now().UTC(), n)
	default:
		fmt.Fprintf(os.Stderr, "lookertest: unknown -seed %q (demo, empty or failures:N)\n", *seed)
		os.Exit(2)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lookertest: %v\n", err)
		os.Exit(1)
	}
	defer l.Close()
	go http.Serve(l, withReruns(s)) //nolint:errcheck // ends when the listener closes
	url := baseURL(l.Addr())
	if *urlFile != "" {
		// Written whole, then renamed: a script polling for it never reads half a URL.
		err := os.WriteFile(*urlFile+".tmp", []byte(url+"\n"), 0o644)
		if err == nil {
			err = os.Rename(*urlFile+".tmp", *urlFile)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "lookertest: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "lookertest: a fake Looker listening on %s (client id %q, System Activity lag %s)\n", url, *clientID, &lag)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	for _, u := range s.Unexpected() {
		fmt.Fprintln(os.Stderr, u)
	}
}

// baseURL is the URL a client on this host reaches the listener at: an
// unspecified host (0.0.0.0, [::]) accepts loopback too, and is no address
// to send a request to.
func baseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// activityLag is the -activity-lag flag: "MIN-MAX", or "MAX" for 0-MAX.
type activityLag struct{ min, max time.Duration }

func (l *activityLag) String() string {
	if l.min == 0 {
		return l.max.String()
	}
	return l.min.String() + "-" + l.max.String()
}

func (l *activityLag) Set(v string) error {
	lo, hi, ranged := strings.Cut(v, "-")
	if !ranged {
		lo, hi = "0s", v
	}
	min, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return fmt.Errorf("want MIN-MAX or MAX, such as 1s-3s: %w", err)
	}
	max, err := time.ParseDuration(strings.TrimSpace(hi))
	if err != nil {
		return fmt.Errorf("want MIN-MAX or MAX, such as 1s-3s: %w", err)
	}
	if min < 0 || max < min {
		return fmt.Errorf("%q: want 0 <= MIN <= MAX", v)
	}
	l.min, l.max = min, max
	return nil
}

// withReruns serves GET /lookertest/reruns with s.Reruns() and hands every
// other request to s. It is a plain handler, not an http.ServeMux, so that
// the fake sees every other request as sent: a mux would answer unclean
// paths with redirects and other methods on /lookertest/reruns with 405,
// where the fake refuses them loudly.
func withReruns(s *lookertest.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/lookertest/reruns" {
			s.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Reruns())
	})
}
