package main

// This file knows the variables Config reads, from its struct tags: the -h
// table, and the RERUN_ names that are misspellings of them.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// misspelt reports RERUN_ variables this tool does not read.
func misspelt() error {
	known := knownVars()
	var errs []error
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, knownPrefix) && !slices.Contains(known, name) {
			msg := fmt.Sprintf("%s is not a setting of looker-rerun", name)
			if near := nearest(name, known); near != "" {
				msg += "; did you mean " + near + "?"
			}
			errs = append(errs, errors.New(msg))
		}
	}
	return errors.Join(errs...)
}

// setting is one variable Config reads, as its struct tags describe it.
type setting struct {
	key, def, desc string
	required       bool
	// hint is what a valid value looks like, for error messages: the hint
	// tag, or one that the field's type implies.
	hint  string
	index int // of the field in Config
}

// Hints for the types whose valid values need no more words.
const (
	durationHint = "a Go duration such as 15m or 1h30m (units s, m, h)"
	boolHint     = "true or false"
)

// settings lists the variables Config reads, in the order of its fields.
func settings() []setting {
	var out []setting
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("envconfig")
		if key == "" {
			continue
		}
		s := setting{key: key, def: f.Tag.Get("default"), desc: f.Tag.Get("desc"),
			required: f.Tag.Get("required") == "true", hint: f.Tag.Get("hint"), index: i}
		switch {
		case s.hint != "":
		case f.Type == reflect.TypeFor[time.Duration]():
			s.hint = durationHint
		case f.Type.Kind() == reflect.Bool:
			s.hint = boolHint
		}
		out = append(out, s)
	}
	return out
}

// hint says what a valid value of the variable key looks like.
func hint(key string) string {
	for _, s := range settings() {
		if s.key == key {
			return s.hint
		}
	}
	return ""
}

// knownVars lists the names of the variables Config reads.
func knownVars() []string {
	var names []string
	for _, s := range settings() {
		names = append(names, s.key)
	}
	return names
}

// nearest returns the known name closest to name, if it is close.
func nearest(name string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		if d := distance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

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
deliveries (nothing was re-run); 4 stopped (SIGTERM, SIGINT) before the
end: safe to retry.

The summary is the last line of stdout, and is written to RERUN_RESULT_FILE;
its exit_code is 0, 1, 3 or 4, whatever code the process exits with.
`)
}
