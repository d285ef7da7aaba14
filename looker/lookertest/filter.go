package lookertest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// matcher tests a field value against a Looker filter expression.
type matcher func(v any) bool

// parseFilter understands the subset of Looker's filter expressions listed in
// the package doc, and refuses the rest.
func parseFilter(kind, expr string, loc *time.Location) (matcher, error) {
	e := strings.TrimSpace(expr)
	switch strings.ToUpper(e) {
	case "NULL":
		return func(v any) bool { return isNull(v) }, nil
	case "-NULL", "NOT NULL":
		return func(v any) bool { return !isNull(v) }, nil
	}
	switch kind {
	case "yesno":
		want := strings.ToLower(e)
		if want != "yes" && want != "no" {
			return nil, fmt.Errorf("yesno filter %q: want Yes or No", expr)
		}
		return func(v any) bool { return strings.EqualFold(fmt.Sprint(v), want) }, nil
	case "number", "string":
		if strings.ContainsAny(e, "%^_") && kind == "string" || strings.HasPrefix(e, "-") {
			return nil, fmt.Errorf("filter %q: patterns, escapes and negation are not supported by the fake", expr)
		}
		set := map[string]bool{}
		for _, part := range strings.Split(e, ",") {
			part = strings.TrimSpace(part)
			if kind == "number" {
				if _, err := strconv.ParseInt(part, 10, 64); err != nil {
					return nil, fmt.Errorf("number filter %q: %q is not a number", expr, part)
				}
			}
			set[part] = true
		}
		return func(v any) bool { return !isNull(v) && set[fmt.Sprint(v)] }, nil
	case "time":
		return parseTimeFilter(e, loc)
	}
	return nil, fmt.Errorf("filter %q on a %s field", expr, kind)
}

func isNull(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case time.Time:
		return x.IsZero()
	}
	return false
}

// parseTimeFilter understands "A to B" (A included, B not), "after A" (A
// included) and "before A" (A not included).
func parseTimeFilter(e string, loc *time.Location) (matcher, error) {
	var from, to time.Time
	var err error
	lower := strings.ToLower(e)
	switch {
	case strings.HasPrefix(lower, "after "):
		from, err = parseTime(e[len("after "):], loc)
	case strings.HasPrefix(lower, "before "):
		to, err = parseTime(e[len("before "):], loc)
	case strings.Contains(lower, " to "):
		i := strings.Index(lower, " to ")
		if from, err = parseTime(e[:i], loc); err == nil {
			to, err = parseTime(e[i+len(" to "):], loc)
		}
	default:
		err = fmt.Errorf("time filter %q: the fake understands only \"A to B\", \"after A\" and \"before A\"", e)
	}
	if err != nil {
		return nil, err
	}
	return func(v any) bool {
		t, ok := v.(time.Time)
		if !ok || t.IsZero() {
			return false
		}
		t = t.Truncate(time.Second)
		return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
	}, nil
}

func parseTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006/01/02 15:04:05", "2006-01-02 15:04:05", "2006/01/02 15:04", "2006/01/02", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want YYYY/MM/DD HH:MM:SS", s)
}
