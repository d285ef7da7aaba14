package looker_test

import (
	"strings"
	"testing"

	"github.com/looker-rerun/looker-rerun/looker"
)

func FuzzNormalizeBaseURL(f *testing.F) {
	for _, seed := range []string{
		"https://example.looker.com", "https://example.looker.com:19999/api/4.0/", "http://[::1]:8080/api/4.0",
		"https://u:p@example.looker.com", "https://example.looker.com/api/3.1", "https://example.looker.com/a/api/4.0/api/4.0",
		"", "%", "https://example.looker.com/%2F", "https://example.looker.com?x=1#y", "HTTPS://EXAMPLE.LOOKER.COM",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := looker.NormalizeBaseURL(raw)
		if err != nil {
			// No part of the user info, name or password, is ever quoted.
			if i := strings.Index(raw, "://"); i >= 0 {
				authority := raw[i+3:]
				if end := strings.IndexAny(authority, "/?#"); end >= 0 {
					authority = authority[:end]
				}
				if at := strings.LastIndex(authority, "@"); at > 3 {
					if userinfo := strings.TrimSpace(authority[:at]); len(userinfo) > 3 && strings.Contains(err.Error(), userinfo) {
						t.Errorf("error %q shows the user info %q", err, userinfo)
					}
				}
			}
			return
		}
		if !strings.HasSuffix(u.Path, "/api/4.0/") || u.User != nil || u.RawQuery != "" || u.Host == "" {
			t.Errorf("NormalizeBaseURL(%q) = %q", raw, u)
		}
		again, err := looker.NormalizeBaseURL(u.String())
		if err != nil || again.String() != u.String() {
			t.Errorf("not idempotent: %q -> %q -> %v, %v", raw, u, again, err)
		}
	})
}

func FuzzDecodeRows(f *testing.F) {
	for _, seed := range []string{
		`[]`, `[{"scheduled_plan.id":1,"scheduled_job.created_time":"2026-11-28 01:00:00"}]`, `{"looker_error":"x"}`,
		`[{"looker_error":"x"}]`, `null`, `[null]`, `<html>`, `[{"a":[1,{"b":null}]}]`, `"text"`, `[1]`, `[{}`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rows, err := looker.DecodeRows(raw)
		if err != nil {
			if rows != nil {
				t.Errorf("rows and an error")
			}
			return
		}
		for _, r := range rows {
			if r == nil {
				t.Fatal("a nil row without an error")
			}
			if _, ok := r["looker_error"]; ok {
				t.Fatal("a looker_error row without an error")
			}
		}
	})
}
