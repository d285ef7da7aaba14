package looker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Error is a non-2xx answer from Looker. Use errors.As to read it.
type Error struct {
	StatusCode int
	Method     string
	// Path is the request path without the query; it never carries a secret.
	Path string
	// Message is Looker's own message, or the start of the body when the
	// answer was not Looker's JSON error.
	Message string
	// FromLooker reports that the answer was Looker's own JSON error
	// (application/json with a message and a documentation_url), not an
	// answer from a proxy, gateway or load balancer in front of it, which
	// may have forwarded the call first.
	FromLooker bool
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("%s %s: %d: %s", e.Method, e.Path, e.StatusCode, msg)
}

// newError reads at most maxErrorBody bytes of a failed answer into an *Error.
// Nothing it quotes holds the access token the request carried. Unless quote
// is set, the message keeps nothing of the body but its size, not even
// Looker's own message: the answer to a login may come from a sign-in page or
// firewall in front of Looker that echoes the form, client secret included.
func newError(req *http.Request, resp *http.Response, quote bool) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{StatusCode: resp.StatusCode, Method: req.Method, Path: req.URL.Path}
	le, fromLooker := lookerError(resp.Header, body)
	e.FromLooker = fromLooker
	switch {
	case len(bytes.TrimSpace(body)) == 0:
	case !quote:
		e.Message = strings.TrimSpace(http.StatusText(resp.StatusCode) + withheld(len(body), len(body) == maxErrorBody))
	case fromLooker:
		e.Message = le.Message
		for _, d := range le.Errors {
			e.Message += fmt.Sprintf("; %s: %s", d.Field, d.Message)
		}
		e.Message = hide(e.Message, sentToken(req))
	default:
		e.Message = quoted(req, body, 200)
	}
	return e
}

// lookerErrorBody is Looker's error answer: the spec's Error, or
// ValidationError with its details.
type lookerErrorBody struct {
	Message string `json:"message"`
	// DocumentationURL is nil when the key is missing or null.
	DocumentationURL *string `json:"documentation_url"`
	Errors           []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// lookerError reads body as Looker's own error: a JSON object, declared as
// JSON, with a non-empty message and a documentation_url string. The spec
// requires both keys in Error and ValidationError, and Looker always fills
// the URL; a URL that is empty still counts, one that is null or missing
// does not.
//
// A message alone is not enough: Envoy, Kong and most API gateways answer
// {"message":"..."} in application/json too, and their 503 may come after
// they forwarded the call to Looker. Taking Looker's error for a gateway's
// costs a check of System Activity; taking a gateway's for Looker's may
// deliver a report twice. So the doubtful case is the gateway's.
func lookerError(h http.Header, body []byte) (lookerErrorBody, bool) {
	var le lookerErrorBody
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return le, false
	}
	return le, json.Unmarshal(body, &le) == nil && le.Message != "" && le.DocumentationURL != nil
}
