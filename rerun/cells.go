package rerun

// This file reads the cells of Looker's json results: ids, text and times,
// whichever JSON type the database gave them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
func rowID(r looker.Row, field string) (string, bool, error) {
	s, ok, err := rowString(r, field)
	if err != nil || !ok {
		return "", ok, err
	}
	s = strings.TrimSpace(s)
	// Numbers may come back as 42.0 from some dialects.
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) && f > 0 {
		return strconv.FormatInt(int64(f), 10), true, nil
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return "", false, fmt.Errorf("%s: %q is not an id", field, s)
	}
	return s, true, nil
}

// rowTime reads a time cell, shown in loc unless it says its zone.
func rowTime(r looker.Row, field string, loc *time.Location) (time.Time, bool, error) {
	s, ok, err := rowString(r, field)
	if err != nil || !ok {
		return time.Time{}, ok, err
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), loc); err == nil {
			return t.UTC(), true, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%s: %q is not a time", field, s)
}
