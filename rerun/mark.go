package rerun

import (
	"cmp"
	"strconv"
	"time"
)

// This file orders what System Activity shows: jobs by their ids, the rest
// by time, minding the hour the clocks show twice.

// mark is a point in System Activity's history: when a job started, and the
// job's id. Looker numbers jobs in the order it starts them, so two jobs are
// ordered by their ids, whatever the clocks, the time zone or the hour
// repeated when daylight saving ends. A time decides only where one side is
// no job: a copy not started yet (or not shown yet), a window's bound.
type mark struct {
	at  time.Time
	job string
	// repeated is the wall time when at was read in the hour repeated when
	// daylight saving ends: an hour early or not, it cannot be told.
	repeated string
}

func (j job) mark() mark { return mark{j.Created, j.JobID, j.Ambiguous} }

// madeMark is when a copy was made: its job's start when it has one, else
// its creation.
func (j job) madeMark() mark {
	if j.JobID != "" {
		return j.mark()
	}
	return mark{j.made(), "", j.Ambiguous}
}

func (m mark) IsZero() bool { return m.at.IsZero() && m.job == "" }

// cmpMark orders two marks: by job id when both are jobs, else by time.
func cmpMark(a, b mark) int {
	if a.job != "" && b.job != "" {
		return compareIDs(a.job, b.job)
	}
	return a.at.Compare(b.at)
}

// misreadable returns the repeated wall time that may swap a and b when they
// are compared by time, "" when their order is sure.
func misreadable(a, b mark) string {
	if a.job != "" && b.job != "" {
		return ""
	}
	if a.at.Sub(b.at).Abs() > nearRepeat {
		return ""
	}
	return cmp.Or(a.repeated, b.repeated)
}

// nearRepeat is how close two times must be for a repeated hour to swap
// them: the clocks go back an hour (or less) at a time.
const nearRepeat = 2 * time.Hour

// later reports whether job a started after b.
func later(a, b job) bool {
	if !b.hasJob() {
		return true
	}
	if c := cmpMark(a.mark(), b.mark()); c != 0 {
		return c > 0
	}
	return compareIDs(a.JobID, b.JobID) > 0
}

// compareIDs orders numeric ids as numbers, anything else as text.
func compareIDs(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}
