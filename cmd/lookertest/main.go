// Command lookertest runs the stand-in Looker of package lookertest as a
// process, for the README's demo and the container tests. It is a fake: see
// the package doc for how it differs from Looker.
//
//	lookertest -addr 127.0.0.1:8080 -seed demo
//
// GET /lookertest/reruns answers how many times each plan was re-run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/looker-rerun/looker-rerun/looker/lookertest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "host:port to listen on (port 0 picks one)")
	urlFile := flag.String("url-file", "", "write the base URL to this file once listening")
	seed := flag.String("seed", "demo", "System Activity to start with: demo, empty, or failures:N (N plans that failed once in the last 10 hours)")
	clientID := flag.String("client-id", "demo-id", "API client id to accept")
	secret := flag.String("client-secret", "demo-secret", "API client secret to accept")
	latency := flag.Duration("latency", 0, "delay every answer by this much")
	flag.Parse()

	s := lookertest.New()
	s.SetCredentials(*clientID, *secret)
	s.SetLatency(*latency)
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
	l, err := s.Listen(*addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lookertest: %v\n", err)
		os.Exit(1)
	}
	defer l.Close()
	if *urlFile != "" {
		// Written whole, then renamed: a script polling for it never reads half a URL.
		err := os.WriteFile(*urlFile+".tmp", []byte(s.URL+"\n"), 0o644)
		if err == nil {
			err = os.Rename(*urlFile+".tmp", *urlFile)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "lookertest: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "lookertest: a fake Looker listening on %s (client id %q)\n", s.URL, *clientID)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	for _, u := range s.Unexpected() {
		fmt.Fprintln(os.Stderr, u)
	}
}
