package main

// This file prints -h: the table of settings and the exit codes.

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// usage prints every setting with its default and meaning.
func usage(w io.Writer) {
	fmt.Fprintf(w, `looker-rerun re-runs, once each, the Looker scheduled deliveries that failed in a time window.

Usage: looker-rerun [-h] [--version]

Settings come from the environment:

`)
	// Read from the struct tags directly: envconfig's Usagef renders through
	// text/template, whose reflection keeps every exported method of every
	// type in the binary (1.7 MB of the image for this one table).
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range settings() {
		def := v.def
		if v.required {
			def = "required"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.key, def, v.desc)
	}
	_ = tw.Flush()
	fmt.Fprint(w, `
Exit codes: 0 every plan that needed a re-run got one (or none needed one);
1 (or RERUN_NEEDS_PERSON_EXIT_CODE) some re-runs failed, were not attempted,
failed again or were still running at the end of RERUN_WAIT, a delivery in
the window was still running unwatched (no RERUN_WAIT), or a failure needs a
person; 2 bad settings; 3 could not log in or list the failed
deliveries (nothing was re-run); 4 stopped (SIGTERM, SIGINT, or
RERUN_DEADLINE) before the end: safe to retry.

The summary is the last line of stdout, and is written to RERUN_RESULT_FILE;
its exit_code is 0, 1, 3 or 4, whatever code the process exits with.
`)
}
