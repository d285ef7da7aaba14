package main

// This file is the last line of defence for the client secret. The code
// never logs it and never puts it in a URL, but text from elsewhere can
// carry it: a proxy's page echoing the login form, Looker's error quoting a
// request, a setting that quotes a value pasted into the wrong variable.
// Whatever path the text took, stdout, stderr and the result file show
// REDACTED in its place.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

const redacted = "REDACTED"

// minSecretLen is the shortest secret the output is filtered for. A shorter
// one would match ordinary text (a plan id, "true", a JSON key) and garble
// the output, the summary that machines parse included. Looker's client
// secrets are 24 characters; a shorter value is a placeholder, and the
// other defences still hold. run warns of it.
const minSecretLen = 8

// encodings are the ways text is rewritten on its way out: as zerolog and
// encoding/json write a string in JSON, as %q and zerolog's console writer
// quote it, as a form or query carries it, as a page shows it.
var encodings = []func(string) string{zerologString, jsonString, goQuoted, url.QueryEscape, htmlEscaper.Replace}

// htmlEscaper escapes as html.EscapeString does, without the 66 KB of the
// html package's entity table.
var htmlEscaper = strings.NewReplacer("&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;", `"`, "&#34;")

// maxEncodings is how many encodings deep the forms of the secret go: a
// proxy's page shows it HTML-escaped, Looker's error quotes the page with %q,
// zerolog writes that error in JSON. For a secret of letters and digits, as
// Looker's are, every form is the secret itself.
const maxEncodings = 3

// redactor replaces every form of one secret with REDACTED: the secret as it
// is and trimmed of spaces, and those rewritten by up to maxEncodings
// encodings.
type redactor struct {
	secret string
	forms  [][]byte // longest first, so a longer form is not cut by a shorter one
}

func newRedactor(secret string) *redactor {
	r := &redactor{secret: secret}
	if len(strings.TrimSpace(secret)) < minSecretLen {
		return r
	}
	seen := map[string]bool{}
	level := []string{secret, strings.TrimSpace(secret)}
	for depth := 0; depth <= maxEncodings; depth++ {
		var next []string
		for _, f := range level {
			if seen[f] {
				continue
			}
			seen[f] = true
			if depth < maxEncodings {
				for _, enc := range encodings {
					next = append(next, enc(f))
				}
			}
		}
		level = next
	}
	for f := range seen {
		r.forms = append(r.forms, []byte(f))
	}
	slices.SortFunc(r.forms, func(a, b []byte) int { return cmp.Or(len(b)-len(a), bytes.Compare(a, b)) })
	return r
}

// redact returns p with every form of the secret replaced; p itself, not a
// copy, when there is none.
func (r *redactor) redact(p []byte) []byte {
	for _, f := range r.forms {
		if bytes.Contains(p, f) {
			p = bytes.ReplaceAll(p, f, []byte(redacted))
		}
	}
	return p
}

// writer returns w with what is written to it redacted; w itself when it
// already redacts this secret.
//
// Each Write is redacted on its own, without holding anything back: a
// secret whole within one Write never passes, and everything this program
// writes is whole in one Write (zerolog writes each event, JSON or console,
// with one; fmt.Fprint* one per call; the summary one). A secret split
// across two Writes would pass: catching it would mean holding back the end
// of every Write until the next, which delays each log line and loses the
// last one when the process is killed. Not covered either: what the Go
// runtime writes to the file descriptors itself (a panic's trace), and a
// secret cut short (Looker's error messages are cut at 200 characters).
func (r *redactor) writer(w io.Writer) io.Writer {
	if rw, ok := w.(*redactingWriter); ok && rw.r.secret == r.secret {
		return w
	}
	return &redactingWriter{r: r, w: w}
}

// redactingWriter is redactor.writer's; it is safe for concurrent use when w
// is.
type redactingWriter struct {
	r *redactor
	w io.Writer
}

func (w *redactingWriter) Write(p []byte) (int, error) {
	if _, err := w.w.Write(w.r.redact(p)); err != nil {
		return 0, err
	}
	// All of p went out, in its redacted form.
	return len(p), nil
}

// zerologString is s as zerolog writes it inside a JSON string, asked of
// zerolog itself so that it follows the version in go.mod.
func zerologString(s string) string {
	var b bytes.Buffer
	l := zerolog.New(&b)
	l.Log().Str("s", s).Send()
	out := strings.TrimSuffix(b.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(out, `{"s":"`), `"}`)
}

// jsonString is s as encoding/json writes it inside a JSON string (<, > and
// & escaped, unlike zerolog).
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// goQuoted is s as %q writes it, without the quotes.
func goQuoted(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
