package main

// Stand-ins until package rerun has what is being added to it: swap each at
// the merge, then delete this file.
//
//	errOutOfTime             -> rerun.ErrOutOfTime
//	setStartBy(&opts, t)     -> opts.StartBy = t
//	clock, setClock          -> rerun.Clock, opts.Clock = cfg.clock
//	withLookerURL(sum, u)    -> sum.LookerURL = u (in run), and marshal sum
//	errZone, errRepeatedHour -> rerun's typed errors for the zone check and
//	                            a window bound in a repeated hour

import (
	"errors"
	"time"

	"github.com/looker-rerun/looker-rerun/rerun"
)

// errOutOfTime: rerun.Run left plans not started because Options.StartBy
// passed.
var errOutOfTime = errors.New("rerun: out of time to start a re-run")

func setStartBy(*rerun.Options, time.Time) {}

// clock is the time the run reads and waits on.
type clock = rerun.Clock

func setClock(o *rerun.Options, c clock) {
	if c != nil {
		o.Clock = c
	}
}

// withLookerURL is sum with looker_url.
func withLookerURL(sum *rerun.Summary, u string) any {
	return struct {
		*rerun.Summary
		LookerURL string `json:"looker_url"`
	}{sum, u}
}

var (
	errZone         = errors.New("placeholder: rerun's zone check failed")
	errRepeatedHour = errors.New("placeholder: a window bound in a repeated hour")
)
