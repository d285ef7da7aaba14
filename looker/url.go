package looker

// This file reads and shows base URLs: what a Looker address may hold and
// how it appears in logs and errors.

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Errors of NormalizeBaseURL that a caller may want to explain, with errors.Is.
var (
	// ErrURLCredentials: the URL holds an @, so perhaps a user and
	// password. The API key is given with WithCredentials instead.
	ErrURLCredentials = errors.New("must not carry credentials")
	// ErrURLQuery: the URL holds a ? or #, so perhaps an access token.
	ErrURLQuery = errors.New("must not have a query or fragment")
)

// NormalizeBaseURL parses a Looker base URL and returns it ending in
// /api/4.0/. It rejects URLs that carry credentials, a query or a fragment,
// and any other API version (ErrURLCredentials, ErrURLQuery). Its errors
// quote the URL as RedactURL shows it.
//
// Any @, ? or # is refused before the URL is parsed: a password holding a /
// or a # can make the parser read part of it as a path or a fragment (even
// parse without error: https://admin:1234/abcd@host is host "admin", port
// 1234), and its errors quote what they read. A Looker base URL needs none
// of the three, so what is left to parse has nothing to hide.
func NormalizeBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	shown := RedactURL(raw)
	switch at, query := strings.Contains(raw, "@"), strings.ContainsAny(raw, "?#"); {
	case at && query:
		return nil, fmt.Errorf("base url %q: %w, a query or a fragment", shown, ErrURLCredentials)
	case at:
		return nil, fmt.Errorf("base url %q: %w", shown, ErrURLCredentials)
	case query:
		return nil, fmt.Errorf("base url %q: %w", shown, ErrURLQuery)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The *url.Error repeats the URL; the reason is enough.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("base url %q: %w", shown, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("base url %q: scheme must be https or http", shown)
	case u.Host == "":
		return nil, fmt.Errorf("base url %q: no host", shown)
	}
	p := strings.TrimRight(u.Path, "/")
	if i := strings.LastIndex(p, "/api/"); i >= 0 {
		if v := p[i+len("/api/"):]; v != APIVersion {
			return nil, fmt.Errorf("base url %q: API version %q is not supported, only %s", shown, v, APIVersion)
		}
		p = p[:i]
	}
	u.Path = p + "/api/" + APIVersion + "/"
	u.RawPath = ""
	return u, nil
}

// RedactURL returns raw with anything that may be a secret cut out, for logs
// and errors: the user info (everything between "://" and the last "@",
// whatever characters a password holds), and the query and fragment (an
// access_token=... parameter). It works on text that does not parse as a URL.
//
// When a ? or # comes before the last @, either a password holds it or a
// query or fragment holds the @ (?next=a@b.example): both readings are
// honoured, and nothing after the scheme is shown. Text before "://" is shown
// only when it is a scheme's letters, digits, + - and ., so that a "://"
// inside a query or password does not make what precedes it a scheme.
func RedactURL(raw string) string {
	raw = strings.TrimSpace(raw)
	scheme, rest := "", raw
	if s, r, ok := strings.Cut(raw, "://"); ok && isScheme(s) {
		scheme, rest = s+"://", r
	}
	at := strings.LastIndex(rest, "@")
	query := strings.IndexAny(rest, "?#")
	switch {
	case query >= 0 && query < at:
		return scheme + "REDACTED"
	case query >= 0:
		rest = rest[:query] + "?REDACTED"
	}
	if at >= 0 {
		rest = "REDACTED@" + rest[at+1:]
	}
	return scheme + rest
}

// isScheme reports whether s is a URL scheme (RFC 3986): a letter, then
// letters, digits and the characters "+-.".
func isScheme(s string) bool {
	for i, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case i > 0 && ('0' <= r && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return s != ""
}
