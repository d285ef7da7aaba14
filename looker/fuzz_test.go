package looker_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/looker-rerun/looker-rerun/looker"
)

// FuzzNormalizeBaseURL builds a URL from a prefix (a scheme, usually), user
// info, the rest and a query, and checks that neither NormalizeBaseURL's
// error nor RedactURL shows anything of the user info or the query, whether
// the URL parses or not. The test does not know where the code finds them:
// it changes every letter, digit and non-ASCII character of the user info
// and the query (disguise) and wants the same text back.
func FuzzNormalizeBaseURL(f *testing.F) {
	for _, seed := range []struct{ prefix, userinfo, rest, query string }{
		{"https://", "", "example.looker.com", ""},
		{"https://", "", "example.looker.com:19999/api/4.0/", ""},
		{"http://", "", "[::1]:8080/api/4.0", ""},
		{"https://", "", "example.looker.com/api/3.1", ""},
		{"https://", "", "example.looker.com/a/api/4.0/api/4.0", ""},
		{"", "", "", ""}, {"", "", "%", ""},
		{"https://", "", "example.looker.com/%2F", ""},
		{"HTTPS://", "", "EXAMPLE.LOOKER.COM", ""},
		{"https://", "u:p", "example.looker.com", ""},
		{"https://", "looker-admin:pa/ss", "example.looker.com", ""},
		{"https://", "admin:1234/abcd", "example.looker.com", ""},
		{"https://", "admin:pa#ss", "example.looker.com", ""},
		{"https://", "admin:pa?ss", "example.looker.com", ""},
		{"https://", "admin:p@ss:w0rd", "example.looker.com", ""},
		{"https://", "id:s%zzsecret", "example.looker.com", ""},
		{"https://", "id:sec ret", "exa mple.looker.com/x", ""},
		{"https://", "", "example.looker.com/", "access_token=abc123"},
		{"https://", "", "example.looker.com", "next=a@b.example&token=xyz"},
		{"https://", "", "example.looker.com", "x=1#access_token=abc"},
		{"", "user:pass", "example.looker.com", "token=abc"},
		{"A://", "0000", "", ""},
	} {
		f.Add(seed.prefix, seed.userinfo, seed.rest, seed.query)
	}
	f.Fuzz(func(t *testing.T, prefix, userinfo, rest, query string) {
		build := func(userinfo, query string) string {
			raw := prefix
			if userinfo != "" {
				raw += userinfo + "@"
			}
			raw += rest
			if query != "" {
				raw += "?" + query
			}
			return raw
		}
		raw := build(userinfo, query)
		u, err := looker.NormalizeBaseURL(raw)
		if err == nil {
			if s := u.String(); !strings.HasSuffix(u.Path, "/api/4.0/") || u.User != nil || u.RawQuery != "" || u.Host == "" || strings.ContainsAny(s, "@?#") {
				t.Errorf("NormalizeBaseURL(%q) = %q", raw, s)
			}
			again, err := looker.NormalizeBaseURL(u.String())
			if err != nil || again.String() != u.String() {
				t.Errorf("not idempotent: %q -> %q -> %v, %v", raw, u, again, err)
			}
		}
		if userinfo == "" && query == "" {
			return
		}
		// A "://" that begins in the user info makes what comes before it
		// the scheme: then the user info is not tested, only the query.
		disguisedUser := disguise(userinfo)
		if i := strings.Index(raw, "://"); i >= 0 && i+len("://") > len(prefix) {
			disguisedUser = userinfo
		}
		other := build(disguisedUser, disguise(query))
		if got, want := looker.RedactURL(raw), looker.RedactURL(other); got != want {
			t.Errorf("RedactURL(%q) = %q, but RedactURL(%q) = %q: it shows part of the user info %q or the query %q", raw, got, other, want, userinfo, query)
		}
		_, otherErr := looker.NormalizeBaseURL(other)
		if (err == nil) != (otherErr == nil) {
			t.Fatalf("NormalizeBaseURL(%q) = %v but NormalizeBaseURL(%q) = %v", raw, err, other, otherErr)
		}
		if err != nil && err.Error() != otherErr.Error() {
			t.Errorf("NormalizeBaseURL(%q): %q, but NormalizeBaseURL(%q): %q: it shows part of the user info %q or the query %q", raw, err, other, otherErr, userinfo, query)
		}
	})
}

// disguise changes every letter and digit of s, and every character outside
// ASCII but spaces. It keeps ASCII punctuation and spaces, which a URL's
// structure depends on, and it keeps hex digits hex, so that a URL parses
// the same after as before.
func disguise(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'f':
			r = 'a' + (r-'a'+1)%6
		case r >= 'A' && r <= 'F':
			r = 'A' + (r-'A'+1)%6
		case r >= 'g' && r <= 'z':
			r = 'g' + (r-'g'+1)%20
		case r >= 'G' && r <= 'Z':
			r = 'G' + (r-'G'+1)%20
		case r >= '0' && r <= '9':
			r = '0' + (r-'0'+1)%10
		case r > unicode.MaxASCII && !unicode.IsSpace(r):
			if r == 'é' {
				r = 'ü'
			} else {
				r = 'é'
			}
		}
		b.WriteRune(r)
	}
	return b.String()
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
