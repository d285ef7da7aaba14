package rerun

// This file reads the rows of Looker's json results into jobs, and their
// cells: ids, text and times, whichever JSON type the database gave them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/looker-rerun/looker-rerun/looker"
)

// timeLayouts are how Looker's json results show a time, in the time zone
// the query ran in, with or without the zone.
var timeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04", time.RFC3339Nano, "2006-01-02"}

// errNoPlanID marks a row whose plan id is null: a job whose plan is gone.
var errNoPlanID = errors.New("row has no " + fPlanID)

// rowString reads a text or number cell; ok is false for null or absent.
func rowString(r looker.Row, field string) (s string, ok bool, err error) {
	raw, present := r[field]
	if !present {
		return "", false, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", false, nil
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fmt.Errorf("%s: %w", field, err)
		}
		return s, s != "", nil
	case '{', '[':
		return "", false, fmt.Errorf("%s: want a text or number, got %.40s", field, raw)
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", false, fmt.Errorf("%s: %w", field, err)
		}
		return strconv.FormatBool(b), true, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false, fmt.Errorf("%s: %w", field, err)
	}
	return n.String(), true, nil
}

// rowID reads an id cell (number or numeric text) as Looker 4.0's string id.
// Whole numbers are read as integers first: an id past 2^53 read as a float
// would become another id.
func rowID(r looker.Row, field string) (string, bool, error) {
	s, ok, err := rowString(r, field)
	if err != nil || !ok {
		return "", ok, err
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > 0 {
		return strconv.FormatUint(n, 10), true, nil
	}
	// Some dialects answer 42.0; only a float that is exactly a whole
	// number an integer can hold is an id.
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 1<<53 && f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10), true, nil
	}
	return "", false, fmt.Errorf("%s: %q is not an id", field, s)
}

// rowTime reads a time cell, shown in loc unless it says its zone.
// ambiguous is set when the cell is a wall-clock time loc shows twice (the
// hour repeated when daylight saving ends): which of the two instants it
// is cannot be known, and it is read as the first.
func rowTime(r looker.Row, field string, loc *time.Location) (t time.Time, ambiguous, ok bool, err error) {
	s, ok, err := rowString(r, field)
	if err != nil || !ok {
		return time.Time{}, false, ok, err
	}
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			zoned := layout == time.RFC3339Nano // says its offset: never ambiguous
			return t.UTC(), !zoned && repeated(t.In(loc)), true, nil
		}
	}
	return time.Time{}, false, false, fmt.Errorf("%s: %q is not a time", field, s)
}

// repeated reports whether the wall clock of t occurs twice in t's
// location: t falls in the hour (or so) repeated when the clocks go back.
func repeated(t time.Time) bool {
	_, off := t.Zone()
	start, end := t.ZoneBounds()
	var others []int
	if !start.IsZero() {
		_, o := start.Add(-time.Second).Zone()
		others = append(others, o)
	}
	if !end.IsZero() {
		_, o := end.Zone()
		others = append(others, o)
	}
	for _, o := range others {
		if o == off {
			continue
		}
		twin := t.Add(time.Duration(off-o) * time.Second).In(t.Location())
		if twin.Hour() == t.Hour() && twin.Minute() == t.Minute() && twin.Second() == t.Second() && twin.Day() == t.Day() {
			return true
		}
	}
	return false
}

// errMissingField marks a row without a field its query selected.
var errMissingField = errors.New("System Activity answered without a field the query selected")

// decodeJob reads a row of a query that selected fields, times in loc. The
// plan id is required. Every selected field must be in the row (null is a
// value; absent is not): a Looker whose System Activity lacks a field would
// otherwise be read as empty values, and a copy would lose what tells it
// apart. A cell that cannot be read is an error.
func decodeJob(r looker.Row, fields []string, loc *time.Location) (job, error) {
	var (
		j   job
		ok  bool
		err error
	)
	for _, f := range fields {
		if _, present := r[f]; !present {
			return j, fmt.Errorf("%w: no %s in a row of the scheduled_plan explore: this Looker's System Activity does not have it "+
				"(looker-rerun needs Looker's System Activity with that field: check the Looker version)", errMissingField, f)
		}
	}
	if j.PlanID, ok, err = rowID(r, fPlanID); err != nil {
		return j, err
	} else if !ok {
		return j, errNoPlanID
	}
	strs := []struct {
		field string
		dst   *string
	}{
		{fPlanName, &j.Name}, {fPlanUserID, &j.OwnerID}, {fOwnerEmail, &j.OwnerEmail}, {fPlanContent, &j.Content},
		{fPlanDests, &j.Dests}, {fJobStatus, &j.Status}, {fJobDetail, &j.Detail},
	}
	for _, s := range strs {
		if *s.dst, _, err = rowString(r, s.field); err != nil {
			return j, err
		}
	}
	if j.JobID, _, err = rowID(r, fJobID); err != nil {
		return j, err
	}
	times := []struct {
		field string
		dst   *time.Time
	}{{fJobCreated, &j.Created}, {fPlanCreated, &j.PlanCreated}}
	for _, t := range times {
		var twice bool
		if *t.dst, twice, _, err = rowTime(r, t.field, loc); err != nil {
			return j, err
		}
		if twice {
			raw, _, _ := rowString(r, t.field)
			j.Ambiguous = raw + " " + loc.String()
		}
	}
	var runOnce, enabled string
	if runOnce, _, err = rowString(r, fPlanRunOnce); err != nil {
		return j, err
	}
	if enabled, _, err = rowString(r, fPlanEnabled); err != nil {
		return j, err
	}
	j.RunOnce = yes(runOnce)
	j.Disabled = enabled != "" && !yes(enabled)
	j.Status = strings.ToLower(strings.TrimSpace(j.Status))
	j.Dests = destSet(j.Dests)
	return j, nil
}

// destSet writes a destination_addresses cell as a set: Looker lists a
// copy's destinations in an order of its own.
func destSet(cell string) string {
	var addrs []string
	for _, a := range strings.Split(cell, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	return strings.Join(slices.Compact(addrs), ",")
}

// yes reads a yesno cell.
func yes(s string) bool { return strings.EqualFold(s, "yes") || s == "true" }
